//! `regmon -c FILE [--once | --verify | --explain] [--strict]`: load the configuration, then monitor.

use nxconf::LogLevel;
use regmon::platform::perms::{create_dir_private, open_private};
use regmon::runtime::Runtime;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// How `-c FILE` runs.
pub struct Mode {
    /// `--once`: one scan of every input, deliver, exit.
    pub once: bool,
    /// `--verify`: print what regmon does with the configuration, exit.
    pub verify: bool,
    /// `--explain`: scan without writing anything, print what each
    /// pattern covers, exit.
    pub explain: bool,
    /// `--strict`: modules regmon would leave to NXLog are errors.
    pub strict: bool,
}

pub fn run(path: &Path, mode: &Mode) -> ExitCode {
    // --explain touches no file either: it logs to stderr, as --verify.
    let quiet = mode.verify || mode.explain;
    let (mut rt, report) = match start_with(path, quiet, mode.verify, mode.strict) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Some(report) = report {
        print!("{report}");
        return ExitCode::SUCCESS;
    }
    if mode.explain {
        return super::explain::run(&rt);
    }
    let result = if mode.once {
        // The edge: errors become text here.
        rt.run_once()
            .map_err(|e| e.to_string())
            .and_then(|()| undelivered(&mut rt))
    } else {
        let stop = Arc::new(AtomicBool::new(false));
        if let Err(e) = regmon::platform::stop::on_stop(stop.clone()) {
            eprintln!("regmon: {e}");
            return ExitCode::FAILURE;
        }
        tracing::info!("regmon started with {}", path.display());
        rt.run(stop).map_err(|e| e.to_string())
    };
    finish(result)
}

/// `--once` fails when events could not be delivered: they stay queued
/// and the next run retries them, but this run did not do its job.
fn undelivered(rt: &mut Runtime) -> Result<(), String> {
    match rt.undelivered().map_err(|e| e.to_string())? {
        0 => Ok(()),
        n => Err(format!(
            "{n} event(s) could not be delivered; they stay queued and are retried at the next run"
        )),
    }
}

/// The end of a run: its error, logged and printed, as the exit code.
pub fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("regmon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration, starts regmon's own log and builds the
/// runtime; every problem is printed (and logged once logging runs).
/// (The Windows service's entry; `-c` goes through [`run`].)
#[cfg(windows)]
pub fn start(path: &Path, verify: bool) -> Result<Runtime, ExitCode> {
    start_with(path, verify, verify, false).map(|(rt, _)| rt)
}

/// [`start`] with `--strict`; `quiet`: log to stderr only (no LogFile,
/// no im_internal); with `verify`, also the `--verify` report (made before
/// the runtime takes the configuration, printed only when the runtime
/// could be built).
fn start_with(
    path: &Path,
    quiet: bool,
    verify: bool,
    strict: bool,
) -> Result<(Runtime, Option<String>), ExitCode> {
    let config = match nxconf::load_with(path, &nxconf::Options { strict }) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "regmon: {}: {} error(s); not started",
                path.display(),
                errors.0.len()
            );
            return Err(ExitCode::FAILURE);
        }
    };
    if let Err(e) = init_logging(&config, quiet) {
        eprintln!("regmon: {e}");
        return Err(ExitCode::FAILURE);
    }
    for n in &config.notes {
        let msg = format!("{}: {}", n.location, n.message);
        match n.level {
            LogLevel::Debug => tracing::debug!("{msg}"),
            LogLevel::Info => tracing::info!("{msg}"),
            LogLevel::Warning => tracing::warn!("{msg}"),
            _ => tracing::error!("{msg}"),
        }
    }
    let report = verify.then(|| super::verify::report(&config));
    match Runtime::new(config) {
        Ok(rt) => Ok((rt, report)),
        Err(errors) => {
            // Logged too: a service has no console.
            for e in &errors {
                tracing::error!("{e}");
                eprintln!("{e}");
            }
            eprintln!(
                "regmon: {}: {} error(s); not started",
                path.display(),
                errors.len()
            );
            Err(ExitCode::FAILURE)
        }
    }
}

/// regmon's own log: LogFile or stderr, at LogLevel (default INFO).
/// `--verify` logs to stderr: checking a configuration must not touch its files.
fn init_logging(config: &nxconf::Config, verify: bool) -> Result<(), String> {
    let level = match config.globals.log_level.unwrap_or(LogLevel::Info) {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warning => tracing::Level::WARN,
        _ => tracing::Level::ERROR,
    };
    use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    // im_internal: records at or above LogLevel become events too.
    let internal = regmon::runtime::internal::layer(config, verify);
    match config.globals.log_file.as_ref().filter(|_| !verify) {
        Some(f) => {
            let base = Path::new(&config.path).parent().unwrap_or(Path::new("."));
            let p = base.join(f);
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_dir_private(dir).map_err(|e| format!("LogFile {}: {e}", p.display()))?;
            }
            let file = open_private(&p, std::fs::OpenOptions::new().append(true))
                .map_err(|e| format!("LogFile {}: {e}", p.display()))?;
            let _ = builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .finish()
                .with(internal)
                .try_init();
        }
        None => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let _ = builder
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .finish()
                .with(internal)
                .try_init();
        }
    }
    Ok(())
}
