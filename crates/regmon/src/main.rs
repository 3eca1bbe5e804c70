//! The `regmon` command line.

mod baseline;
mod cmd;
mod digest;
mod event;
mod hivefile;
#[cfg(windows)]
mod live;
mod outbox;
mod output;
mod pattern;
mod region;
mod runtime;
mod scan;
#[cfg(windows)]
mod service;
mod stop;
mod wow64;

use clap::{Parser, Subcommand};

/// A scan allocates and frees a path per value, on two threads (the scan
/// and the comparison): mimalloc handles that far better than glibc's malloc.
#[cfg(not(windows))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "regmon",
    version,
    about = "Registry integrity monitor, a drop-in for NXLog's im_regmon"
)]
struct Cli {
    /// The configuration file (NXLog syntax).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Scan every im_regmon input once, deliver the events, and exit.
    #[arg(long, requires = "config")]
    once: bool,
    /// Check the configuration and exit: 0 when valid, 1 with every error listed.
    #[arg(long, requires = "config", conflicts_with = "once")]
    verify: bool,
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
        /// Add the old and new data ($Value, $PrevValue), up to BYTES each.
        #[arg(long, value_name = "BYTES", num_args = 0..=1, default_missing_value = "4096")]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.config {
        if cli.command.is_some() {
            eprintln!("regmon: -c runs the monitor; give either -c or a subcommand");
            return ExitCode::from(2);
        }
        return cmd::run::run(path, cli.once, cli.verify);
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
            HiveCommand::Dump { file, no_logs } => cmd::hive::dump(&file, !no_logs),
            HiveCommand::Stats { file, no_logs } => cmd::hive::stats(&file, !no_logs),
            HiveCommand::Edit {
                file,
                set,
                delete_value,
                delete_key,
            } => {
                let mut edits = Vec::new();
                for c in set.chunks(4) {
                    edits.push(cmd::edit::Edit::Set {
                        key: c[0].clone(),
                        name: c[1].clone(),
                        ty: c[2].clone(),
                        data: c[3].clone(),
                    });
                }
                for c in delete_value.chunks(2) {
                    edits.push(cmd::edit::Edit::DeleteValue {
                        key: c[0].clone(),
                        name: c[1].clone(),
                    });
                }
                for k in delete_key {
                    edits.push(cmd::edit::Edit::DeleteKey { key: k });
                }
                cmd::edit::edit(&file, &edits)
            }
            HiveCommand::Sample { out } => cmd::edit::sample(&out),
        },
        Some(Command::Diff {
            old,
            new,
            root,
            digest,
            no_logs,
            data,
            schema,
        }) => digest::DigestAlgorithm::parse(&digest).and_then(|digest| {
            cmd::diff::run(&cmd::diff::Options {
                old,
                new,
                root,
                digest,
                use_logs: !no_logs,
                report_data: data,
                schema: event::Schema::parse(&schema)?,
            })
        }),
        #[cfg(windows)]
        Some(Command::Service { command }) => match command {
            ServiceCommand::Install { config, name } => service::install(&name, &config),
            ServiceCommand::Uninstall { name } => service::uninstall(&name),
            ServiceCommand::Run { config, name } => service::run(&name, &config),
        },
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

/// Warnings of the one-shot commands go to stderr.
fn logging_to_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .without_time()
        .with_target(false)
        .try_init();
}
