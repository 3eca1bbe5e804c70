//! The `regmon` command line.

mod cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "regmon",
    version,
    about = "Registry integrity monitor, a drop-in for NXLog's im_regmon"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect a hive file.
    Hive {
        #[command(subcommand)]
        command: HiveCommand,
    },
}

#[derive(Subcommand)]
enum HiveCommand {
    /// One JSON line per value: key, name, type, size, sha1.
    Dump { file: PathBuf },
    /// Keys, values, format version and state of a hive, as JSON.
    Stats { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Hive { command }) => match command {
            HiveCommand::Dump { file } => cmd::hive::dump(&file),
            HiveCommand::Stats { file } => cmd::hive::stats(&file),
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
