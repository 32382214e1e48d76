//! `shmbox completions bash|zsh|fish`

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::shells;

use super::Outcome;
use crate::cli::{Cli, Shell};

pub fn run(shell: Shell) -> Outcome {
    let mut command = Cli::command();
    let mut out = Vec::new();
    match shell {
        Shell::Bash => clap_complete::generate(shells::Bash, &mut command, "shmbox", &mut out),
        Shell::Zsh => clap_complete::generate(shells::Zsh, &mut command, "shmbox", &mut out),
        Shell::Fish => clap_complete::generate(shells::Fish, &mut command, "shmbox", &mut out),
    }
    use std::io::Write as _;
    std::io::stdout().lock().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}
