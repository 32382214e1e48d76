//! `shmbox bench [--quick] [--output FILE]` (with the `bench` feature).

use std::path::Path;
use std::process::ExitCode;

use super::Outcome;
#[cfg(not(feature = "bench"))]
use crate::error::CliError;

#[cfg(feature = "bench")]
pub fn run(quick: bool, output: &Path) -> Outcome {
    let exe = std::env::current_exe()?;
    let spawn = |args: &[String]| {
        let mut command = std::process::Command::new(&exe);
        command.arg("bench-child").args(args);
        command
    };
    let config = shmbox_bench::Config {
        quick,
        output: output.to_owned(),
        shmbox_exe: Some(exe.clone()),
    };
    let results = shmbox_bench::run(&config, &spawn)?;
    crate::note!(
        "wrote {} ({} scenarios on {}); plots in {}",
        output.display(),
        results.uncontended.len()
            + results.copies.len()
            + results.latency.len()
            + results.contention.len()
            + 1,
        results.machine.cpu,
        output
            .parent()
            .unwrap_or(Path::new("."))
            .join("bench")
            .display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "bench")]
pub fn child(args: &[String]) -> Outcome {
    Ok(ExitCode::from(shmbox_bench::child_main(args) as u8))
}

#[cfg(not(feature = "bench"))]
pub fn run(_quick: bool, _output: &Path) -> Outcome {
    Err(CliError::new(
        "this shmbox was built without benchmarks \
         (run `cargo run --release -p shmbox-cli --features bench -- bench`)",
    )
    .into())
}

#[cfg(not(feature = "bench"))]
pub fn child(args: &[String]) -> Outcome {
    run(false, Path::new("")).map(|_| {
        let _ = args;
        ExitCode::FAILURE
    })
}
