//! shmbox's reliability suite, with figures.
//!
//! - [`torture`]: lock holders and writers killed with SIGKILL at random.
//! - [`stress`]: processes doing random reads, writes, locked updates and
//!   waits on checksummed records.
//! - [`races`]: a storm of create, open, close, remove and crash.
//! - [`tools`]: the loom models, miri, and the fuzz targets, run through
//!   cargo (full runs only).
//!
//! [`run`] runs them and [`report`] writes docs/RELIABILITY.md. Child
//! processes are this same executable, started through a [`Spawn`] function
//! and dispatched by [`child_main`].

// A test tool: its types are not printed anywhere.
#![allow(missing_debug_implementations)]

pub mod proc;
pub mod races;
pub mod record;
pub mod report;
pub mod stress;
pub mod tools;
pub mod torture;

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Makes the command for a child process with these arguments; the child
/// must call [`child_main`] with them.
pub type Spawn<'a> = &'a dyn Fn(&[String]) -> Command;

/// A segment name no other run or process uses.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shmbox-rel-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether the segment `name` has left /dev/shm within `limit`.
pub fn gone_within(name: &str, limit: Duration) -> bool {
    let path = segment_path(name);
    let started = Instant::now();
    while std::path::Path::new(&path).exists() {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Where segment `name` lives (docs/FORMAT.md).
pub fn segment_path(name: &str) -> String {
    format!("/dev/shm/shmbox.{name}")
}

/// `key=value` pairs of a report line, the values as numbers.
pub fn fields(line: &str) -> Vec<(String, u64)> {
    line.split_whitespace()
        .filter_map(|f| {
            let (k, v) = f.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The entry point of every child process.
pub fn child_main(args: &[String]) -> i32 {
    let result = match args.split_first() {
        Some((role, rest)) => match role.as_str() {
            "torture-victim" => torture::victim(rest),
            "torture-locker" => torture::locker(rest),
            "torture-reader" => torture::reader(rest),
            "stress-worker" => stress::worker(rest),
            "races-worker" => races::worker(rest),
            _ => Err(io::Error::other(format!("unknown role {role:?}"))),
        },
        None => Err(io::Error::other("no role given")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("reliability child {args:?} failed: {e}");
            1
        }
    }
}

/// How big a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The short version, for CI: fewer rounds, seconds instead of half a
    /// minute, no loom, miri or fuzzing (CI runs loom and the corpus
    /// replay itself).
    pub short: bool,
    /// Run loom, miri and the fuzzers (full version only).
    pub tools: bool,
    /// Seconds each fuzz target runs for.
    pub fuzz_seconds: u64,
    /// Where the report goes.
    pub output: PathBuf,
    /// Seed for every random choice, so a run can be repeated.
    pub seed: u64,
}

/// Everything a run found.
#[derive(Debug, Clone)]
pub struct Results {
    pub config: Config,
    pub started: String,
    pub machine: String,
    pub seconds: f64,
    pub torture: torture::Torture,
    pub stress: stress::Stress,
    pub races: races::Races,
    pub tools: Vec<tools::ToolRun>,
}

/// What became of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It ran, and what it checks held.
    Held,
    /// It ran, and found a fault.
    Failed,
    /// It did not run (a tool was missing): it says nothing either way.
    Skipped,
}

impl Verdict {
    fn of(held: bool) -> Verdict {
        if held { Verdict::Held } else { Verdict::Failed }
    }
}

impl Results {
    /// Every requirement the suite checks, with what it found.
    pub fn verdicts(&self) -> Vec<(String, String, Verdict)> {
        let t = &self.torture;
        let s = &self.stress;
        let r = &self.races;
        let mut v = vec![
            (
                "crash torture: deadlocks".to_owned(),
                t.deadlocks.to_string(),
                Verdict::of(t.deadlocks == 0),
            ),
            (
                "crash torture: torn values returned to readers".to_owned(),
                t.torn_returned.to_string(),
                Verdict::of(t.torn_returned == 0 && t.corrupt_under_lock == 0),
            ),
            (
                "crash torture: until-last-close segments left after the next reclaim".to_owned(),
                t.leaked.to_string(),
                Verdict::of(t.leaked == 0),
            ),
            (
                "crash torture: every kill recovered".to_owned(),
                format!("{} of {}", t.recovery_ns.len(), t.rounds),
                Verdict::of(t.recovery_ns.len() as u64 == t.rounds),
            ),
            (
                "stress: torn reads".to_owned(),
                s.torn_reads.to_string(),
                Verdict::of(s.torn_reads == 0),
            ),
            (
                "stress: lost updates".to_owned(),
                s.lost_updates().to_string(),
                Verdict::of(s.lost_updates() == 0),
            ),
            (
                "stress: every process progressed".to_owned(),
                format!("fewest operations: {}", s.ops.iter().min().unwrap_or(&0)),
                Verdict::of(!s.ops.is_empty() && s.ops.iter().all(|&o| o > 0)),
            ),
            (
                "lifetime races: violations".to_owned(),
                r.violations.len().to_string(),
                Verdict::of(r.violations.is_empty()),
            ),
            (
                "lifetime races: names left after the next reclaim".to_owned(),
                r.leaked.to_string(),
                Verdict::of(r.leaked == 0),
            ),
        ];
        for tool in &self.tools {
            let (found, verdict) = match &tool.outcome {
                tools::Outcome::Passed => ("passed".to_owned(), Verdict::Held),
                tools::Outcome::Failed => ("failed".to_owned(), Verdict::Failed),
                // Not run says nothing about shmbox; the report says why.
                tools::Outcome::Skipped(why) => (format!("not run: {why}"), Verdict::Skipped),
            };
            v.push((tool.name.clone(), found, verdict));
        }
        v
    }

    /// No check failed (skipped ones do not count either way).
    pub fn all_held(&self) -> bool {
        self.verdicts()
            .iter()
            .all(|(_, _, verdict)| *verdict != Verdict::Failed)
    }
}

/// Runs the suite and writes the report. `progress` hears what runs now.
pub fn run(config: &Config, spawn: Spawn<'_>, progress: &dyn Fn(&str)) -> io::Result<Results> {
    let started_at = Instant::now();
    let started = report::utc_now();
    let (rounds, seconds) = if config.short {
        (30, Duration::from_secs(3))
    } else {
        (500, Duration::from_secs(30))
    };
    let every = (rounds / 10).max(1);
    let torture = torture::run(rounds, config.seed, spawn, &|done| {
        if done % every == 0 {
            progress(&format!("crash torture: {done} of {rounds} rounds"));
        }
    })?;
    progress(&format!("stress: 4 processes for {seconds:?}"));
    let stress = stress::run(4, seconds, config.seed ^ 1, spawn)?;
    progress(&format!("lifetime races: 4 processes for {seconds:?}"));
    let races = races::run(4, seconds, config.seed ^ 2, spawn)?;
    let mut tool_runs = Vec::new();
    if config.tools {
        let root = tools::workspace_root();
        progress("loom models");
        tool_runs.push(tools::loom(&root));
        progress("miri");
        tool_runs.push(tools::miri(&root));
        for target in ["segment_file", "cli_sizes"] {
            progress(&format!("fuzzing {target} for {} s", config.fuzz_seconds));
            tool_runs.push(tools::fuzz(&root, target, config.fuzz_seconds));
        }
    }
    let results = Results {
        config: config.clone(),
        started,
        machine: report::machine(),
        seconds: started_at.elapsed().as_secs_f64(),
        torture,
        stress,
        races,
        tools: tool_runs,
    };
    report::write(&results)?;
    Ok(results)
}
