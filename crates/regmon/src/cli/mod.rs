//! The `regmon` command line: its options (clap), and one file per command.

mod diff;
mod edit;
mod explain;
mod generate;
mod hive;
mod run;
#[cfg(windows)]
mod service;
mod verify;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use std::path::PathBuf;
use std::process::ExitCode;

/// `regmon --version`: the version, the commit, the target and the build
/// date (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("REGMON_BUILD_COMMIT"),
    ", ",
    env!("REGMON_BUILD_TARGET"),
    ", built ",
    env!("REGMON_BUILD_DATE"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "regmon",
    version = VERSION,
    about = "Registry integrity monitor, a drop-in for NXLog's im_regmon"
)]
struct Cli {
    /// The configuration file (NXLog syntax).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Scan every im_regmon input once, deliver the events, and exit.
    #[arg(long, requires = "config")]
    once: bool,
    /// Check the configuration, print what regmon does with each module,
    /// route and im_regmon input, and exit: 0 when regmon runs the im_regmon
    /// part faithfully, 1 with every error listed.
    #[arg(long, requires = "config", conflicts_with = "once")]
    verify: bool,
    /// Scan each im_regmon input as a run would and print what each
    /// RegValue pattern covers (keys, values, bytes, a sample), what each
    /// Exclude pruned, the scan's cost, and the patterns that match
    /// nothing; write nothing. Exit 0 when every pattern matches something.
    #[arg(long, requires = "config", conflicts_with_all = ["once", "verify"])]
    explain: bool,
    /// Refuse modules regmon would leave to NXLog (other inputs, outputs
    /// only they reach) instead of warning about them.
    #[arg(long, requires = "config")]
    strict: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The NEW / CHANGE / DELETE events between two hive files, as JSON lines.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// The registry path the hives are mounted at, e.g. 'HKLM\SOFTWARE'
        /// (default: paths relative to the hive root).
        #[arg(long)]
        root: Option<String>,
        /// Digest algorithm.
        #[arg(long, default_value = "sha1")]
        digest: String,
        /// Do not replay transaction logs found beside dirty hives.
        #[arg(long)]
        no_logs: bool,
        /// Add the old and new data ($Value, $PrevValue): --data (4096 bytes
        /// each) or --data=BYTES.
        // require_equals: a bare `--data OLD NEW` must not take OLD as BYTES.
        #[arg(
            long,
            value_name = "BYTES",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "4096"
        )]
        data: Option<usize>,
        /// Event schema: nxlog, or ecs (adds Elastic Common Schema fields, nested).
        #[arg(long, default_value = "nxlog")]
        schema: String,
    },
    /// Inspect a hive file.
    Hive {
        #[command(subcommand)]
        command: HiveCommand,
    },
    /// Install, remove or run regmon as a Windows service.
    #[cfg(windows)]
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Write the man pages (`man`) or the shell completions (`completions`)
    /// generated from this command line into DIR (scripts/package.sh).
    #[command(hide = true)]
    Generate { what: generate::What, dir: PathBuf },
}

#[derive(Subcommand)]
enum HiveCommand {
    /// One JSON line per value: key, name, type, size, sha1.
    Dump {
        file: PathBuf,
        /// Do not replay transaction logs found beside a dirty hive.
        #[arg(long)]
        no_logs: bool,
    },
    /// Keys, values, format version and state of a hive, as JSON.
    Stats {
        file: PathBuf,
        /// Do not replay transaction logs found beside a dirty hive.
        #[arg(long)]
        no_logs: bool,
    },
    /// Change a hive file in place (rewritten by regmon's hive writer).
    ///
    /// Data: text for REG_SZ / REG_EXPAND_SZ, items separated by '|' for
    /// REG_MULTI_SZ, decimal or 0x-hex for REG_DWORD / REG_QWORD, hex for the
    /// others; 'hex:...' gives raw bytes for any type. Name '(Default)' or ''
    /// is the default value.
    Edit {
        file: PathBuf,
        /// Set a value: KEY NAME TYPE DATA (KEY relative to the hive root).
        #[arg(long, num_args = 4, value_names = ["KEY", "NAME", "TYPE", "DATA"], action = clap::ArgAction::Append)]
        set: Vec<String>,
        /// Delete a value: KEY NAME.
        #[arg(long, num_args = 2, value_names = ["KEY", "NAME"], action = clap::ArgAction::Append)]
        delete_value: Vec<String>,
        /// Delete a key and its subtree.
        #[arg(long, value_name = "KEY", action = clap::ArgAction::Append)]
        delete_key: Vec<String>,
    },
    /// Write the sample SOFTWARE hive used by the README and the examples.
    Sample { out: PathBuf },
}

/// regmon as a Windows service.
#[cfg(windows)]
#[derive(Subcommand)]
enum ServiceCommand {
    /// Register the service (automatic start, LocalSystem) running `-c FILE`.
    Install {
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: PathBuf,
        #[arg(long, default_value = service::DEFAULT_NAME)]
        name: String,
    },
    /// Stop and remove the service.
    Uninstall {
        #[arg(long, default_value = service::DEFAULT_NAME)]
        name: String,
    },
    /// Run as the service (what the service control manager starts).
    Run {
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: PathBuf,
        #[arg(long, default_value = service::DEFAULT_NAME)]
        name: String,
    },
}

/// Runs the command line; the process exits with the code returned.
pub fn main() -> ExitCode {
    // The matches are kept: `hive edit` needs the order of its options.
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(path) = &cli.config {
        if cli.command.is_some() {
            eprintln!("regmon: -c runs the monitor; give either -c or a subcommand");
            return ExitCode::from(2);
        }
        return run::run(
            path,
            &run::Mode {
                once: cli.once,
                verify: cli.verify,
                explain: cli.explain,
                strict: cli.strict,
            },
        );
    }
    // A service logs where its configuration says (LogFile), once loaded.
    #[cfg(windows)]
    let service_run = matches!(
        cli.command,
        Some(Command::Service {
            command: ServiceCommand::Run { .. }
        })
    );
    #[cfg(not(windows))]
    let service_run = false;
    if !service_run {
        logging_to_stderr();
    }
    let result = match cli.command {
        Some(Command::Hive { command }) => match command {
            HiveCommand::Dump { file, no_logs } => hive::dump(&file, !no_logs),
            HiveCommand::Stats { file, no_logs } => hive::stats(&file, !no_logs),
            HiveCommand::Edit {
                file,
                set,
                delete_value,
                delete_key,
            } => {
                let m = matches
                    .subcommand_matches("hive")
                    .and_then(|m| m.subcommand_matches("edit"));
                let edits = edits_in_order(m, &set, &delete_value, &delete_key);
                edit::edit(&file, &edits)
            }
            HiveCommand::Sample { out } => edit::sample(&out),
        },
        Some(Command::Diff {
            old,
            new,
            root,
            digest,
            no_logs,
            data,
            schema,
        }) => regmon::model::digest::DigestAlgorithm::parse(&digest).and_then(|digest| {
            diff::run(&diff::Options {
                old,
                new,
                root,
                digest,
                use_logs: !no_logs,
                report_data: data,
                schema: regmon::config::Schema::parse(&schema)?,
            })
        }),
        #[cfg(windows)]
        Some(Command::Service { command }) => match command {
            ServiceCommand::Install { config, name } => service::install(&name, &config),
            ServiceCommand::Uninstall { name } => service::uninstall(&name),
            ServiceCommand::Run { config, name } => service::run(&name, &config),
        },
        Some(Command::Generate { what, dir }) => generate::run(what, Cli::command(), &dir),
        None => {
            eprintln!("regmon: nothing to do (see regmon --help)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("regmon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The edits of `hive edit`, in the order the command line gives them
/// (clap collects each option apart; its indices restore the order).
fn edits_in_order(
    m: Option<&ArgMatches>,
    set: &[String],
    delete_value: &[String],
    delete_key: &[String],
) -> Vec<edit::Edit> {
    let indices = |id: &str| -> Vec<usize> {
        m.and_then(|m| m.indices_of(id))
            .map(|i| i.collect())
            .unwrap_or_default()
    };
    // Without indices (not expected), the option's own order still holds.
    let at = |ix: &[usize], i: usize| ix.get(i).copied().unwrap_or(usize::MAX);
    let mut edits = Vec::new();
    let ix = indices("set");
    for (n, c) in set.chunks_exact(4).enumerate() {
        let edit = edit::Edit::Set {
            key: c[0].clone(),
            name: c[1].clone(),
            ty: c[2].clone(),
            data: c[3].clone(),
        };
        edits.push((at(&ix, n * 4), edit));
    }
    let ix = indices("delete_value");
    for (n, c) in delete_value.chunks_exact(2).enumerate() {
        let edit = edit::Edit::DeleteValue {
            key: c[0].clone(),
            name: c[1].clone(),
        };
        edits.push((at(&ix, n * 2), edit));
    }
    let ix = indices("delete_key");
    for (n, k) in delete_key.iter().enumerate() {
        edits.push((at(&ix, n), edit::Edit::DeleteKey { key: k.clone() }));
    }
    // Stable: equal (missing) indices keep the order above.
    edits.sort_by_key(|(i, _)| *i);
    edits.into_iter().map(|(_, e)| e).collect()
}

/// Warnings of the one-shot commands go to stderr, coloured only on a terminal.
fn logging_to_stderr() {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .without_time()
        .with_target(false)
        .try_init();
}
