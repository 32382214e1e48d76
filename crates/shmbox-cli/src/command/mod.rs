//! One module per subcommand.

mod bench;
mod completions;
mod create;
mod gc;
mod info;
mod lock;
mod read;
mod rm;
mod watch;
mod write;

use std::io;
use std::process::ExitCode;

use shmbox::Location;

use crate::cli::Command;
use crate::error::CliError;

/// Why a command stopped early.
pub enum Failure {
    /// Report it and exit with 1.
    Error(CliError),
    /// Standard output was closed by its reader.
    BrokenPipe,
}

impl From<CliError> for Failure {
    fn from(e: CliError) -> Failure {
        Failure::Error(e)
    }
}

impl From<shmbox::Error> for Failure {
    fn from(e: shmbox::Error) -> Failure {
        Failure::Error(e.into())
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Error(e.into())
        }
    }
}

pub type Outcome = Result<ExitCode, Failure>;

pub fn run(command: Command, at: &Location) -> Outcome {
    match command {
        Command::Create { name, size, mode } => create::run(at, &name, size, mode),
        Command::Write {
            name,
            text,
            offset,
            create,
            timeout,
        } => write::run(at, &name, text, offset, create, timeout),
        Command::Read {
            name,
            offset,
            len,
            timeout,
            format,
        } => read::run(at, &name, offset, len, timeout, format.format),
        Command::Watch {
            name,
            count,
            timeout,
            format,
        } => watch::run(at, &name, count, timeout, format.format),
        Command::Info { name, json } => info::run_info(at, &name, json),
        Command::List { json } => info::run_list(at, json),
        Command::Rm { name } => rm::run(at, &name),
        Command::Gc { watch } => gc::run(at, watch),
        Command::Lock {
            name,
            timeout,
            command,
        } => lock::run(at, &name, timeout, &command),
        Command::Completions { shell } => completions::run(shell),
        Command::Bench {
            quick,
            remote,
            rounds,
            output,
        } => bench::run(quick, remote, rounds as usize, output),
        Command::BenchChild { args } => bench::child(&args),
        Command::Demo { name, size } => match shmbox_tui::run_at(at, &name, size) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(shmbox_tui::DemoError::Segment(e)) => Err(e.into()),
            Err(shmbox_tui::DemoError::Terminal(e)) => Err(CliError::new(format!(
                "the demo's terminal failed: {e} (run it in an interactive terminal)"
            ))
            .into()),
        },
    }
}
