//! Benchmarks of shmbox against its peers and the hardware's limit, all in
//! one run on one machine.
//!
//! The scenarios live here once. The criterion benches in `benches/` and
//! the `shmbox bench` command both run them; `shmbox bench` also writes
//! `docs/BENCHMARKS.md` with tables, ratios and plots (see [`report`]).
//!
//! 1. [`uncontended`]: lock + write 64 B + unlock, against a bare futex
//!    lock (the floor), a glibc robust pthread mutex, raw_sync and OFD locks.
//! 2. [`copy`]: copies into and out of a segment, against memcpy.
//! 3. [`notify`]: change-notification latency between two processes.
//! 4. [`contention`]: 2 and 4 processes contending for the lock.
//! 5. [`footprint`]: open and close, memory per segment, peak memory.
//!
//! Multi-process scenarios start child processes through a [`Spawn`]
//! function, which returns a command that ends up in [`child_main`].

// A measuring tool: its types are not printed anywhere.
#![allow(missing_debug_implementations)]

pub mod contention;
pub mod copy;
pub mod footprint;
pub mod machine;
pub mod mapping;
pub mod notify;
pub mod peers;
pub mod remote;
pub mod report;
pub mod stats;
pub mod uncontended;

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::contention::{Contention, LockKind, Loop};
use crate::copy::{Copies, CopyKind, SIZES};
use crate::footprint::Footprint;
use crate::machine::Machine;
use crate::notify::{Mechanism, Placement};
use crate::stats::{calibrate, median, sample};

/// Makes the command for a child process with these arguments; the child
/// must call [`child_main`] with them.
pub type Spawn<'a> = &'a dyn Fn(&[String]) -> Command;

/// A name no other run or process uses, for segments and files.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shmbox-bench-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Marks a process that [`spawn_self`] started as a benchmark child.
const CHILD_ENV: &str = "SHMBOX_BENCH_CHILD";

/// For a test or bench binary whose scenarios start processes: this
/// executable again, as a child with `args`, which [`exit_if_child`] then
/// recognises. A [`Spawn`].
pub fn spawn_self(args: &[String]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the path of this executable"));
    command.env(CHILD_ENV, "1").args(args);
    command
}

/// Called first in `main` of a binary that uses [`spawn_self`]: in a child
/// it started, runs the child's part ([`child_main`]) and exits; otherwise
/// returns.
pub fn exit_if_child() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        std::process::exit(child_main(&args));
    }
}

/// The entry point of child processes. Returns the exit status.
pub fn child_main(args: &[String]) -> i32 {
    let result = match args.split_first() {
        Some((role, rest)) if role == "pong" => notify::pong(rest),
        Some((role, rest)) if role == "contend" => contention::child(rest),
        _ => Err(io::Error::other(format!(
            "unknown benchmark child {args:?}"
        ))),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("benchmark child failed: {e}");
            1
        }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// A few seconds in all, to check that everything works.
    pub quick: bool,
    /// Where the Markdown report goes; the plots go beside it.
    pub output: PathBuf,
    /// The `shmbox` executable, for its peak memory (optional).
    pub shmbox_exe: Option<PathBuf>,
    /// How many full rounds of every scenario; the report gives each
    /// headline ratio's median over them.
    pub rounds: usize,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Results {
    pub machine: Machine,
    pub quick: bool,
    /// How many interleaved rounds scenario 1 took its median over.
    pub uncontended_rounds: usize,
    /// (scenario, median ns per operation); the floor first.
    pub uncontended: Vec<(String, f64)>,
    /// (kind, size, median ns per copy).
    pub copies: Vec<(CopyKind, usize, f64)>,
    pub latency: Vec<Latency>,
    pub contention: Vec<Contention>,
    pub footprint: Footprint,
    /// The headline ratios of each full round (empty: just this one).
    pub round_targets: Vec<Vec<report::Target>>,
}

/// One-way latencies of one mechanism, sorted.
#[derive(Debug, Clone)]
pub struct Latency {
    pub mechanism: Mechanism,
    pub placement: Placement,
    pub sorted_ns: Vec<u64>,
}

impl Latency {
    pub fn percentile(&self, p: f64) -> u64 {
        stats::percentile(&self.sorted_ns, p)
    }
}

fn bar(progress: &MultiProgress, len: u64, what: &str) -> ProgressBar {
    let bar = progress.add(ProgressBar::new(len));
    bar.set_style(
        ProgressStyle::with_template("{prefix:<28} [{bar:30}] {pos}/{len} {msg}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Runs every scenario in `config.rounds` full rounds, showing progress,
/// and writes the report: tables of the medians over the rounds, and each
/// headline ratio's median and spread.
pub fn run(config: &Config, spawn: Spawn<'_>) -> io::Result<Results> {
    let total = config.rounds.max(1);
    let mut rounds = Vec::with_capacity(total);
    for round in 1..=total {
        if total > 1 {
            eprintln!("round {round} of {total}");
        }
        rounds.push(run_round(config, spawn)?);
    }
    let results = merge(rounds);
    report::write(&results, &config.output)?;
    Ok(results)
}

/// One full round's results as one: each table cell the median over the
/// rounds (latencies pooled; contention the run of median throughput), with
/// every round's headline ratios kept for the report.
fn merge(rounds: Vec<Results>) -> Results {
    let round_targets: Vec<Vec<report::Target>> = rounds.iter().map(report::targets).collect();
    let mut merged = rounds[0].clone();
    let med = |f: &dyn Fn(&Results) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    for i in 0..merged.uncontended.len() {
        merged.uncontended[i].1 = med(&|r| r.uncontended[i].1);
    }
    for i in 0..merged.copies.len() {
        merged.copies[i].2 = med(&|r| r.copies[i].2);
    }
    for i in 0..merged.latency.len() {
        let mut pooled: Vec<u64> = rounds
            .iter()
            .flat_map(|r| r.latency[i].sorted_ns.iter().copied())
            .collect();
        pooled.sort_unstable();
        merged.latency[i].sorted_ns = pooled;
    }
    for i in 0..merged.contention.len() {
        let mut runs: Vec<&Contention> = rounds.iter().map(|r| &r.contention[i]).collect();
        runs.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
        merged.contention[i] = runs[runs.len() / 2].clone();
    }
    merged.footprint.open_close_ns = med(&|r| r.footprint.open_close_ns);
    merged.footprint.raw_open_close_ns = med(&|r| r.footprint.raw_open_close_ns);
    merged.round_targets = round_targets;
    merged
}

/// Every scenario, once.
fn run_round(config: &Config, spawn: Spawn<'_>) -> io::Result<Results> {
    let quick = config.quick;
    let progress = MultiProgress::new();
    let rounds = if quick { 3 } else { 21 };
    let sample_time = if quick {
        Duration::from_millis(2)
    } else {
        Duration::from_millis(20)
    };

    // 1. Uncontended lock + write + unlock, interleaved round by round so
    // that noise falls on every scenario alike.
    let mut scenarios = uncontended::all().map_err(io_err)?;
    let b = bar(
        &progress,
        (rounds * scenarios.len()) as u64,
        "1 uncontended lock+write",
    );
    let counts: Vec<u64> = scenarios
        .iter_mut()
        .map(|s| calibrate(&mut |n| s.run(n), sample_time))
        .collect();
    let mut samples = vec![Vec::new(); scenarios.len()];
    for _ in 0..rounds {
        for (i, s) in scenarios.iter_mut().enumerate() {
            samples[i].push(sample(&mut |n| s.run(n), counts[i]));
            b.inc(1);
        }
    }
    let uncontended: Vec<(String, f64)> = scenarios
        .iter()
        .zip(&samples)
        .map(|(s, v)| (s.name().to_owned(), median(v)))
        .collect();
    drop(scenarios);
    b.finish_with_message("done");

    // 2. Copies.
    let mut copier = Copies::new().map_err(io_err)?;
    let copy_rounds = if quick { 3 } else { 9 };
    let b = bar(
        &progress,
        (SIZES.len() * copy_rounds) as u64,
        "2 copies vs memcpy",
    );
    let mut copies = Vec::new();
    for size in SIZES {
        let target = sample_time.max(if size >= 1 << 20 {
            Duration::from_millis(if quick { 10 } else { 60 })
        } else {
            Duration::ZERO
        });
        let counts: Vec<u64> = CopyKind::ALL
            .iter()
            .map(|&k| calibrate(&mut |n| copier.run(k, size, n), target))
            .collect();
        let mut samples = vec![Vec::new(); CopyKind::ALL.len()];
        for _ in 0..copy_rounds {
            for (i, &kind) in CopyKind::ALL.iter().enumerate() {
                samples[i].push(sample(&mut |n| copier.run(kind, size, n), counts[i]));
            }
            b.inc(1);
        }
        for (i, &kind) in CopyKind::ALL.iter().enumerate() {
            copies.push((kind, size, median(&samples[i])));
        }
    }
    drop(copier);
    b.finish_with_message("done");

    // 3. Notification latency, on two CPUs, then with both processes on one.
    let trips = if quick { 2_000 } else { 100_000 };
    let runs: Vec<(Mechanism, Placement)> = Mechanism::ALL
        .iter()
        .map(|&m| (m, Placement::TwoCpus))
        .chain(
            Mechanism::ALL
                .iter()
                .filter(|m| m.sleeps())
                .map(|&m| (m, Placement::OneCpu)),
        )
        .collect();
    // In slices, taking turns, so that a slow spell of the VM falls on every
    // mechanism alike rather than on whichever ran during it.
    let slices: u64 = if quick { 1 } else { 10 };
    let b = bar(
        &progress,
        runs.len() as u64 * slices,
        "3 notification latency",
    );
    let mut gathered: Vec<Vec<u64>> = vec![Vec::with_capacity(trips as usize); runs.len()];
    for _ in 0..slices {
        for (i, &(mechanism, placement)) in runs.iter().enumerate() {
            let one_cpu = placement == Placement::OneCpu;
            b.set_message(format!(
                "{}{}",
                mechanism.label(),
                if one_cpu { ", one CPU" } else { "" }
            ));
            let slice = notify::pingpong(mechanism, trips / slices, placement, spawn)?;
            gathered[i].extend(slice);
            b.inc(1);
        }
    }
    let latency: Vec<Latency> = runs
        .iter()
        .zip(gathered)
        .map(|(&(mechanism, placement), mut sorted_ns)| {
            sorted_ns.sort_unstable();
            Latency {
                mechanism,
                placement,
                sorted_ns,
            }
        })
        .collect();
    b.finish_with_message("done");

    // 4. Contention.
    let duration = if quick {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(3)
    };
    let b = bar(
        &progress,
        (2 * LockKind::ALL.len() * Loop::ALL.len()) as u64,
        "4 contention",
    );
    let mut contention = Vec::new();
    for looping in Loop::ALL {
        for processes in [2, 4] {
            for lock in LockKind::ALL {
                b.set_message(format!("{} processes, {}", processes, lock.label()));
                contention.push(contention::contend(
                    lock, looping, processes, duration, spawn,
                )?);
                b.inc(1);
            }
        }
    }
    b.finish_with_message("done");

    // 5. Footprint.
    let b = bar(&progress, 1, "5 footprint");
    let footprint = footprint::measure(quick, config.shmbox_exe.as_deref())?;
    b.inc(1);
    b.finish_with_message("done");

    let results = Results {
        machine: Machine::describe(),
        quick,
        uncontended_rounds: rounds,
        uncontended,
        copies,
        latency,
        contention,
        footprint,
        round_targets: Vec::new(),
    };
    Ok(results)
}
