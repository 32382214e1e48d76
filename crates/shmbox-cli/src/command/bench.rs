//! `shmbox bench [--quick] [--output FILE]` (with the `bench` feature).

#[cfg(feature = "bench")]
use std::path::Path;
use std::process::ExitCode;

use super::Outcome;
#[cfg(not(feature = "bench"))]
use crate::error::CliError;

#[cfg(feature = "bench")]
pub fn run(
    quick: bool,
    remote: bool,
    rounds: usize,
    output: Option<std::path::PathBuf>,
) -> Outcome {
    if remote {
        let output = output.unwrap_or_else(|| "docs/BENCHMARKS-remote.md".into());
        let results = shmbox_bench::remote::run(quick, &output)?;
        let write = results.rows.iter().find(|r| r.name == "write 64 B");
        crate::note!(
            "wrote {} (write 64 B: {:.2}x a raw SETRANGE round trip)",
            output.display(),
            write.map_or(f64::NAN, |r| r.median_ratio())
        );
        return Ok(ExitCode::SUCCESS);
    }
    let output = output.unwrap_or_else(|| "docs/BENCHMARKS.md".into());
    let output = output.as_path();
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
        rounds: if quick { 1 } else { rounds },
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
pub fn run(
    _quick: bool,
    _remote: bool,
    _rounds: usize,
    _output: Option<std::path::PathBuf>,
) -> Outcome {
    Err(CliError::new(
        "this shmbox was built without benchmarks \
         (run `cargo run --release -p shmbox-cli --features bench -- bench`)",
    )
    .into())
}

#[cfg(not(feature = "bench"))]
pub fn child(args: &[String]) -> Outcome {
    run(false, false, 0, None).map(|_| {
        let _ = args;
        ExitCode::FAILURE
    })
}
