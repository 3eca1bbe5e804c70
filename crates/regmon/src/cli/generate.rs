//! `regmon generate man|completions DIR` (hidden): the man pages and the
//! shell completions made from the clap definition itself, so that they
//! never disagree with `--help`. scripts/package.sh puts them in the .deb.

use std::path::Path;
use std::process::ExitCode;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum What {
    /// regmon.1 and one page per subcommand (regmon-diff.1, ...).
    Man,
    /// bash, zsh and fish completions.
    Completions,
}

pub fn run(what: What, mut cmd: clap::Command, dir: &Path) -> Result<ExitCode, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let err = |e: std::io::Error| format!("{}: {e}", dir.display());
    match what {
        What::Man => clap_mangen::generate_to(cmd, dir).map_err(err)?,
        What::Completions => {
            use clap_complete::Shell;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path =
                    clap_complete::generate_to(shell, &mut cmd, "regmon", dir).map_err(err)?;
                println!("{}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
