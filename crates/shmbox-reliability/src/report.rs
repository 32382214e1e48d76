//! docs/RELIABILITY.md: what was run, how to run it again, and what it found.

use std::fmt::Write as _;
use std::io;

use crate::tools::Outcome;
use crate::{Results, Verdict};

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// CPU model, cores and kernel, in one line.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    format!("{cpu}, {cores} cores, Linux {kernel}")
}

/// Percentile `p` (0–100) of sorted `v`.
fn percentile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

/// The report, as Markdown.
pub fn markdown(r: &Results) -> String {
    let mut m = String::new();
    let c = &r.config;
    let _ = writeln!(m, "# shmbox reliability\n");
    let _ = writeln!(
        m,
        "One run of the reliability suite{}, started {} on {}; it took {:.0} s. \
         Seed {}: a run with the same seed makes the same random choices (the \
         operating system's timing still differs).\n",
        if c.short { " (short version)" } else { "" },
        r.started,
        r.machine,
        r.seconds,
        c.seed
    );
    let _ = writeln!(m, "Run it again:\n");
    let _ = writeln!(
        m,
        "```sh\n\
         cargo run --release -p shmbox-reliability             # everything: about 25 minutes\n\
         cargo run --release -p shmbox-reliability -- --short  # the CI version: seconds, no tools\n\
         ```\n"
    );
    let _ = writeln!(
        m,
        "The full version runs the fuzzers and miri when a nightly toolchain with \
         cargo-fuzz and miri is installed, and says so when not. CI runs the short \
         version inside `cargo test --workspace`, the loom models, and a replay of \
         the committed fuzz corpus (`cargo test -p shmbox-fuzz`).\n"
    );

    let _ = writeln!(m, "## Summary\n");
    let _ = writeln!(m, "| check | found | |\n|---|---|---|");
    for (what, found, verdict) in r.verdicts() {
        let _ = writeln!(
            m,
            "| {what} | {found} | {} |",
            match verdict {
                Verdict::Held => "held",
                Verdict::Failed => "**failed**",
                Verdict::Skipped => "skipped",
            }
        );
    }
    let _ = writeln!(m);

    let t = &r.torture;
    let mut rec = t.recovery_ns.clone();
    rec.sort_unstable();
    let mut reclaim = t.reclaim_ns.clone();
    reclaim.sort_unstable();
    let _ = writeln!(m, "## Crash torture\n");
    let _ = writeln!(
        m,
        "Each round, a victim process writes checksummed 64-byte records under \
         the lock, in two halves with a 20 µs pause between (so it is mid-write \
         most of the time it holds the lock), while a locker takes the lock, checks \
         the record and writes its own, and a reader reads without the lock. After \
         a random 2–15 ms the victim gets SIGKILL. Then the locker and the reader \
         either leave or are killed too (at random). The segment is an \
         until-last-close one that the parent let go of: when they leave, the last \
         one's close must remove it (within 2 s); when they are killed, nobody is \
         left to remove it, since shmbox starts no helper process, so it stays until \
         the next shmbox call looks, and the parent's `shmbox::reclaim()` must \
         remove it.\n"
    );
    let _ = writeln!(m, "| | |\n|---|---:|");
    let rows: Vec<(&str, String)> = vec![
        ("rounds (SIGKILLs)", t.rounds.to_string()),
        (
            "kills that caught the victim holding the lock",
            t.kills_holding_lock.to_string(),
        ),
        (
            "… in the middle of a write (data left torn)",
            t.kills_mid_write.to_string(),
        ),
        (
            "recovery, kill to the next lock acquisition: p50",
            ms(percentile(&rec, 50.0)),
        ),
        ("recovery: p99", ms(percentile(&rec, 99.0))),
        ("recovery: max", ms(rec.last().copied().unwrap_or(0))),
        (
            "deadlocks (a lock wait of 10 s, or a silent child)",
            t.deadlocks.to_string(),
        ),
        ("lock-free reads returned whole", t.reads_whole.to_string()),
        (
            "lock-free reads that reported torn data (Error::Inconsistent)",
            t.reads_reported_torn.to_string(),
        ),
        (
            "torn records returned as whole",
            t.torn_returned.to_string(),
        ),
        (
            "lock-free reads that gave up after 1 s of a busy writer",
            t.read_timeouts.to_string(),
        ),
        (
            "corrupt records found under the lock",
            t.corrupt_under_lock.to_string(),
        ),
        (
            "rounds whose survivors were killed too",
            t.survivors_killed.to_string(),
        ),
        (
            "rounds whose holders all died, leaving the name for the next call",
            t.left_for_reclaim.to_string(),
        ),
        (
            "… removed by the next `reclaim()`",
            format!(
                "{} (the call took p50 {}, max {})",
                t.reclaim_ns.len(),
                ms(percentile(&reclaim, 50.0)),
                ms(reclaim.last().copied().unwrap_or(0))
            ),
        ),
        (
            "leaked /dev/shm entries (after a close, or after that reclaim)",
            t.leaked.to_string(),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    let _ = writeln!(m);

    let s = &r.stress;
    let _ = writeln!(m, "## Stress\n");
    let _ = writeln!(
        m,
        "{} processes for {:.0} s on one segment of a counter record and 16 data \
         records, each choosing at random: a lock-free read (30%), a read under the \
         lock (10%), a write (30%), a locked increment of the counter (20%), or a \
         wait for a change of at most 1 ms (10%). Every record read is checked.\n",
        s.processes, s.seconds
    );
    let _ = writeln!(m, "| | |\n|---|---:|");
    let ops: Vec<String> = s.ops.iter().map(|o| o.to_string()).collect();
    let rows: Vec<(&str, String)> = vec![
        ("operations, all processes", s.total_ops().to_string()),
        ("operations per process", ops.join(" / ")),
        ("increments made", s.increments.to_string()),
        ("final counter", s.counter.to_string()),
        ("lost updates", s.lost_updates().to_string()),
        ("torn reads", s.torn_reads.to_string()),
        (
            "waits / changes seen",
            format!("{} / {}", s.waits, s.changes_seen),
        ),
        (
            "lock-free reads that gave up (writers kept the data busy for 10 s)",
            s.read_timeouts.to_string(),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    let _ = writeln!(m);

    let q = &r.races;
    let _ = writeln!(m, "## Lifetime races\n");
    let _ = writeln!(
        m,
        "{} processes for {:.0} s storm 3 until-last-close names: open-or-create, \
         hold for up to 3 ms while reopening the name to check that it is the same \
         segment (a random token in its first bytes), close, pause holding nothing, \
         or remove (refused while anyone holds it). Every 5–25 ms the parent kills one of them with \
         SIGKILL and starts another.\n",
        q.processes, q.seconds
    );
    let _ = writeln!(m, "| | |\n|---|---:|");
    let rows: Vec<(&str, String)> = vec![
        (
            "opens (counted up to each process's last report)",
            q.opens.to_string(),
        ),
        ("segments created", q.creates.to_string()),
        ("same-segment checks while held", q.checks.to_string()),
        (
            "removes refused (in use) / done (an until-last-close segment nobody holds is already gone, so done is rare)",
            format!("{} / {}", q.removes_refused, q.removes_done),
        ),
        ("processes killed", q.crashes.to_string()),
        (
            "violations: removed while held, or two segments under one name",
            q.violations.len().to_string(),
        ),
        (
            "names whose last holder was killed, reclaimed at the end",
            q.reclaimed_at_end.to_string(),
        ),
        (
            "names left behind after all processes ended and that reclaim",
            q.leaked.to_string(),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    for v in q.violations.iter().take(10) {
        let _ = writeln!(m, "\n- violation: {v}");
    }
    let _ = writeln!(m);

    let _ = writeln!(m, "## Model checking, miri and fuzzing\n");
    if r.tools.is_empty() {
        let _ = writeln!(
            m,
            "Not run in this version of the suite (the full version runs them).\n"
        );
    } else {
        let _ = writeln!(
            m,
            "| tool | command | outcome | time | what it said |\n|---|---|---|---:|---|"
        );
        for tool in &r.tools {
            let outcome = match &tool.outcome {
                Outcome::Passed => "passed".to_owned(),
                Outcome::Failed => "**failed**".to_owned(),
                Outcome::Skipped(why) => format!("skipped: {why}"),
            };
            let _ = writeln!(
                m,
                "| {} | `{}` | {outcome} | {:.0} s | {} |",
                tool.name,
                tool.command,
                tool.seconds,
                tool.detail.replace('|', "/")
            );
        }
        let _ = writeln!(m);
    }
    let _ = writeln!(
        m,
        "The loom models (crates/shmbox/src/loom_models.rs) check the lock \
         (exclusion, starvation hand-offs, takeover from a dead holder, and a \
         takeover that never replaces a new holder given the dead id), the seqlock \
         (no torn read, a writer dying mid-write reported) and notification (no lost \
         wake-up, spin then sleep) against a futex model in which a lost wake-up is \
         a deadlock that loom reports; two more run the Windows backend's write path \
         (a mutex, then the lock word) and its futex made of a semaphore \
         (src/sem_futex.rs), including a waiter that times out. Miri runs the library's \
         unit tests over an in-process backend (src/sys/memory.rs), a guard writing \
         while a lock-free reader in another thread copies among them. The fuzz targets (fuzz/, bodies in \
         crates/shmbox-fuzz) plant files of arbitrary bytes and sizes under a \
         segment name and run arbitrary operations on them, cutting the file short \
         while mapped among them; and parse arbitrary sizes and offsets as the \
         command does.\n"
    );
    m
}

/// Writes the report where the configuration says.
pub fn write(r: &Results) -> io::Result<()> {
    if let Some(dir) = r.config.output.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(&r.config.output, markdown(r))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::tools::{Outcome, ToolRun};
    use crate::{Config, Results, Verdict};

    fn results_with(tools: Vec<ToolRun>) -> Results {
        Results {
            config: Config {
                short: false,
                tools: true,
                fuzz_seconds: 600,
                output: PathBuf::from("RELIABILITY.md"),
                seed: 1,
            },
            started: "2026-12-02T00:00:00Z".into(),
            machine: "a test".into(),
            seconds: 1.0,
            torture: Default::default(),
            stress: Default::default(),
            races: Default::default(),
            tools,
        }
    }

    fn tool(name: &str, outcome: Outcome) -> ToolRun {
        ToolRun {
            name: name.into(),
            command: format!("cargo {name}"),
            outcome,
            seconds: 0.0,
            detail: String::new(),
        }
    }

    /// Regression: a tool that did not run (no nightly toolchain) was
    /// reported as "held" in the summary. It must read "skipped".
    #[test]
    fn a_tool_that_did_not_run_reads_skipped_never_held() {
        let r = results_with(vec![
            tool("miri", Outcome::Skipped("no nightly toolchain".into())),
            tool("loom", Outcome::Passed),
            tool("fuzz segment_file", Outcome::Failed),
        ]);
        let verdicts = r.verdicts();
        let of = |name: &str| verdicts.iter().find(|v| v.0 == name).unwrap().2;
        assert_eq!(of("miri"), Verdict::Skipped);
        assert_eq!(of("loom"), Verdict::Held);
        assert_eq!(of("fuzz segment_file"), Verdict::Failed);
        let report = super::markdown(&r);
        let row = report.lines().find(|l| l.starts_with("| miri |")).unwrap();
        assert!(row.ends_with("| skipped |"), "{row}");
        assert!(!row.contains("held"), "{row}");
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("| loom | passed | held |"))
        );
        assert!(!r.all_held(), "a failed tool fails the run");
        // A skipped one neither fails nor passes anything.
        assert_eq!(
            results_with(vec![tool("miri", Outcome::Skipped("x".into()))]).all_held(),
            results_with(Vec::new()).all_held()
        );
    }
}
