//! The model checker, miri and the fuzzers, run through cargo as a developer
//! would run them, with what they said kept for the report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// How a tool's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Not run, and why (a missing toolchain, say).
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct ToolRun {
    pub name: String,
    /// The command, to rerun it by hand.
    pub command: String,
    pub outcome: Outcome,
    pub seconds: f64,
    /// What it reported: tests passed, executions, coverage.
    pub detail: String,
}

/// The repository's root (this crate is crates/shmbox-reliability).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the tools build: away from the main target directory, since their
/// flags rebuild everything.
fn target_dir(root: &Path, tool: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(tool)
}

/// Whether `cargo +nightly SUBCOMMAND --version` works.
fn nightly_has(subcommand: &str) -> bool {
    Command::new("cargo")
        .args(["+nightly", subcommand, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Makes `cargo +nightly SUBCOMMAND` work if it can: installs what is missing
/// with `install` (a command and its arguments). `Err` says why not.
fn ensure(subcommand: &str, install: &[&str]) -> Result<(), String> {
    if nightly_has(subcommand) {
        return Ok(());
    }
    let shown = install.join(" ");
    match Command::new(install[0]).args(&install[1..]).output() {
        Ok(out) if out.status.success() && nightly_has(subcommand) => Ok(()),
        Ok(out) => Err(format!(
            "`{shown}` did not make it work: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
                .trim()
        )),
        Err(e) => Err(format!("could not run `{shown}`: {e}")),
    }
}

fn run(name: &str, shown: &str, mut command: Command, summarise: fn(&str) -> String) -> ToolRun {
    let started = Instant::now();
    let output = command.output();
    let seconds = started.elapsed().as_secs_f64();
    match output {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ToolRun {
                name: name.to_owned(),
                command: shown.to_owned(),
                outcome: if out.status.success() {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                },
                seconds,
                detail: summarise(&text),
            }
        }
        Err(e) => ToolRun {
            name: name.to_owned(),
            command: shown.to_owned(),
            outcome: Outcome::Skipped(format!("could not start cargo: {e}")),
            seconds,
            detail: String::new(),
        },
    }
}

/// The last `test result:` line of a test run.
fn test_result(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| l.starts_with("test result:"))
        .map(|l| l.trim_start_matches("test result: ").to_owned())
        .unwrap_or_else(|| "no test result printed".into())
}

/// The loom models of the lock, the seqlock and notification.
pub fn loom(root: &Path) -> ToolRun {
    let shown = "RUSTFLAGS=\"--cfg loom\" cargo test -p shmbox --lib --release loom";
    let mut c = Command::new("cargo");
    c.current_dir(root)
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", target_dir(root, "loom"))
        .args(["test", "-p", "shmbox", "--lib", "--release", "loom"]);
    run("loom", shown, c, test_result)
}

/// Miri on the library's unit tests (those that need no operating system).
pub fn miri(root: &Path) -> ToolRun {
    let shown = "cargo +nightly miri test -p shmbox --lib";
    if let Err(why) = ensure("miri", &["rustup", "+nightly", "component", "add", "miri"]) {
        return ToolRun {
            name: "miri".into(),
            command: shown.into(),
            outcome: Outcome::Skipped(format!("no nightly toolchain with miri: {why}")),
            seconds: 0.0,
            detail: String::new(),
        };
    }
    let mut c = Command::new("cargo");
    c.current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir(root, "miri"))
        .args(["+nightly", "miri", "test", "-p", "shmbox", "--lib"]);
    run("miri", shown, c, test_result)
}

/// One fuzz target for `seconds`, from the committed corpus, which it grows.
pub fn fuzz(root: &Path, target: &str, seconds: u64) -> ToolRun {
    let shown = format!("cargo +nightly fuzz run {target} -- -max_total_time={seconds}");
    let name = format!("fuzz {target}");
    if let Err(why) = ensure("fuzz", &["cargo", "install", "--locked", "cargo-fuzz"]) {
        return ToolRun {
            name,
            command: shown,
            outcome: Outcome::Skipped(format!(
                "cargo-fuzz or a nightly toolchain is missing: {why}"
            )),
            seconds: 0.0,
            detail: String::new(),
        };
    }
    let mut c = Command::new("cargo");
    c.current_dir(root.join("fuzz")).args([
        "+nightly",
        "fuzz",
        "run",
        target,
        "--",
        &format!("-max_total_time={seconds}"),
        "-print_final_stats=1",
    ]);
    run(&name, &shown, c, fuzz_summary)
}

/// Executions, coverage and corpus size from libFuzzer's final words.
fn fuzz_summary(text: &str) -> String {
    let stat = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{key}:")))
            .map(|v| v.trim().to_owned())
    };
    let done = text
        .lines()
        .rev()
        .find(|l| l.contains(" DONE ") || l.contains("\tDONE"))
        .or_else(|| text.lines().rev().find(|l| l.starts_with('#')))
        .unwrap_or("")
        .to_owned();
    let cov = done
        .split_whitespace()
        .skip_while(|w| *w != "cov:")
        .nth(1)
        .unwrap_or("?")
        .to_owned();
    let crash = text
        .lines()
        .find(|l| l.contains("Test unit written to"))
        .map(|l| format!("; {}", l.trim()))
        .unwrap_or_default();
    format!(
        "{} executions, {} per second, coverage {cov} edges, peak memory {} MB{crash}",
        stat("number_of_executed_units").unwrap_or_else(|| "?".into()),
        stat("average_exec_per_sec").unwrap_or_else(|| "?".into()),
        stat("peak_rss_mb").unwrap_or_else(|| "?".into()),
    )
}
