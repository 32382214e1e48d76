//! `shmbox-reliability`: runs the reliability suite and writes
//! docs/RELIABILITY.md.
//!
//! ```text
//! cargo run --release -p shmbox-reliability             # everything, ~25 minutes
//! cargo run --release -p shmbox-reliability -- --short  # seconds, as in CI
//! ```

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;

/// Set in the environment of the suite's own child processes.
const CHILD: &str = "SHMBOX_RELIABILITY_CHILD";

/// shmbox's reliability suite: crash torture, stress, lifetime races, and
/// the loom models, miri and fuzzers; writes a report with the figures.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The short version run by CI: seconds instead of minutes, no loom,
    /// miri or fuzzing.
    #[arg(long)]
    short: bool,
    /// Skip loom, miri and the fuzzers even in the full version.
    #[arg(long)]
    no_tools: bool,
    /// How long each fuzz target runs, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    fuzz_seconds: u64,
    /// Where the report goes.
    #[arg(long, default_value = "docs/RELIABILITY.md", value_name = "FILE")]
    output: PathBuf,
    /// Seed for the random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        return ExitCode::from(shmbox_reliability::child_main(&args) as u8);
    }
    let args = Args::parse();
    let config = shmbox_reliability::Config {
        short: args.short,
        tools: !args.short && !args.no_tools,
        fuzz_seconds: args.fuzz_seconds,
        output: args.output,
        seed: args.seed,
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("shmbox-reliability: error: cannot find this executable: {e}");
            return ExitCode::from(1);
        }
    };
    let spawn = |child_args: &[String]| {
        let mut c = Command::new(&exe);
        c.env(CHILD, "1").args(child_args);
        c
    };
    let progress = |what: &str| eprintln!("shmbox-reliability: {what}");
    match shmbox_reliability::run(&config, &spawn, &progress) {
        Ok(results) => {
            for (what, found, verdict) in results.verdicts() {
                let shown = match verdict {
                    shmbox_reliability::Verdict::Held => "  held ",
                    shmbox_reliability::Verdict::Failed => "FAILED ",
                    shmbox_reliability::Verdict::Skipped => "skipped",
                };
                eprintln!("{shown} {what}: {found}");
            }
            eprintln!(
                "wrote {} ({:.0} s)",
                config.output.display(),
                results.seconds
            );
            if results.all_held() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("shmbox-reliability: error: {e}");
            ExitCode::from(1)
        }
    }
}
