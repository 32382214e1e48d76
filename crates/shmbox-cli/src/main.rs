//! `shmbox`: use and inspect shared-memory segments from a shell.
//!
//! Errors are one line on standard error, `shmbox: error: <what> (<hint>)`,
//! with exit status 1; usage errors are clap's, with status 2.

mod cli;
mod command;
mod error;
mod output;

use shmbox_cli::size;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        note!(
            "shmbox: error: internal error{at}: {} (please report it)",
            what.replace('\n', " ")
        );
    }));
    // A tool, not a library: it may take SIGBUS over, so that a segment cut
    // short under it is an error message, not a crash.
    if let Err(e) = shmbox::install_sigbus_handler() {
        note!("shmbox: warning: {e}; a segment cut short by another process would crash this one");
    }
    let cli = cli::Cli::parse();
    match command::run(cli.command, &cli.url) {
        Ok(code) => code,
        Err(command::Failure::Error(e)) => {
            note!("shmbox: error: {e}");
            ExitCode::from(1)
        }
        // The reader went away (`shmbox read x | head`): stop quietly, with
        // the status a process killed by SIGPIPE has.
        Err(command::Failure::BrokenPipe) => ExitCode::from(141),
    }
}
