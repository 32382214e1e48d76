//! The benchmark harness in quick mode: every scenario runs, and the report
//! it writes is well-formed (every heading, every peer, consistent tables,
//! finite numbers, real SVG plots). A check that the harness works; the
//! numbers of a quick run mean little.

/// How long the quick run may take before the test fails.
const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(300);

fn main() {
    shmbox_bench::exit_if_child();
    // Honour `cargo test -- --list` and filters that exclude this check.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("quick_benchmark_writes_a_well_formed_report: test");
        return;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-')) {
        if !"quick_benchmark_writes_a_well_formed_report".contains(filter.as_str()) {
            println!("test result: ok. 0 passed; 0 failed; 1 filtered out");
            return;
        }
    }

    // The watchdog: a harness that hangs fails the test instead of CI. (A
    // quick run takes about 20 s in a debug build on two cores.)
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("quick_benchmark_writes_a_well_formed_report: still running after {WATCHDOG:?}");
        std::process::exit(101);
    });

    let dir = std::env::temp_dir().join(shmbox_bench::unique_name("report"));
    let output = dir.join("BENCHMARKS.md");
    let config = shmbox_bench::Config {
        quick: true,
        output: output.clone(),
        shmbox_exe: None,
        rounds: 2,
    };
    let results =
        shmbox_bench::run(&config, &shmbox_bench::spawn_self).expect("the quick benchmark runs");

    let report = std::fs::read_to_string(&output).expect("the report was written");
    check_report(&report, &results);
    for plot in ["latency.svg", "latency-one-cpu.svg", "throughput.svg"] {
        let svg =
            std::fs::read_to_string(dir.join("bench").join(plot)).expect("the plot was written");
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{plot} is not an SVG"
        );
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "{plot} draws nothing"
        );
    }
    // The remote section, against a redis-server it starts (if there is
    // one; SHMBOX_REQUIRE_REDIS makes its absence a failure).
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok()
    {
        let remote = dir.join("BENCHMARKS-remote.md");
        let results = shmbox_bench::remote::run(true, &remote).expect("the remote benchmark runs");
        let report = std::fs::read_to_string(&remote).expect("the remote report was written");
        for row in [
            "raw SETRANGE 64 B (floor)",
            "write 64 B",
            "raw GETRANGE 64 B (floor)",
            "read_consistent 64 B",
            "lock + unlock",
            "lock + guard.write 64 B + unlock",
        ] {
            assert!(report.contains(&format!("| {row} |")), "no row for {row}");
        }
        assert!(report.contains("**Target:** an uncontended write within 1.3×"));
        assert!(
            !report.contains("NaN") && !report.contains("inf"),
            "{report}"
        );
        assert!(results.rows.iter().all(|r| r.median_us() > 0.0));
    } else {
        assert!(
            std::env::var_os("SHMBOX_REQUIRE_REDIS").is_none(),
            "redis-server is not installed, and SHMBOX_REQUIRE_REDIS says it must be"
        );
        println!("SKIPPED: the remote section (no redis-server)");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    println!("test quick_benchmark_writes_a_well_formed_report ... ok");
    println!("test result: ok. 1 passed; 0 failed");
}

fn check_report(report: &str, results: &shmbox_bench::Results) {
    for heading in [
        "# shmbox benchmarks",
        "## Machine",
        "## Targets",
        "## 1. Uncontended lock + write 64 B + unlock",
        "## 2. Copies against memcpy into the same mapping",
        "## 3. Change-notification latency between two processes",
        "## 4. Contention",
        "## 5. Footprint",
    ] {
        assert!(report.contains(heading), "no {heading:?} in the report");
    }
    for peer in [
        "minimal futex lock (floor)",
        "glibc robust pthread mutex",
        "raw_sync Mutex",
        "fcntl OFD lock",
        "raw futex ping-pong (kernel floor)",
        "pure spinning on an atomic (hardware floor)",
        "iceoryx2 publish-subscribe, busy polling",
        "pipe",
        "Unix domain socket",
    ] {
        assert!(report.contains(&format!("| {peer} |")), "no row for {peer}");
    }
    for bad in ["NaN", "inf", "nan"] {
        assert!(!report.contains(bad), "the report holds {bad}:\n{report}");
    }
    // Every table row has as many cells as its header.
    let mut columns = None;
    for line in report.lines().map(str::trim) {
        if !line.starts_with('|') {
            columns = None;
            continue;
        }
        let cells = line.matches('|').count();
        match columns {
            None => columns = Some(cells),
            Some(n) => assert_eq!(cells, n, "a malformed table row: {line}"),
        }
    }
    assert!(results.uncontended.iter().all(|(_, ns)| *ns > 0.0));
    assert!(results.copies.iter().all(|(_, _, ns)| *ns > 0.0));
    // Two rounds of 2,000 each, pooled.
    assert!(results.latency.iter().all(|l| l.sorted_ns.len() == 4_000));
    assert_eq!(results.round_targets.len(), 2);
    assert!(report.contains("in 2 rounds; a target is met when the median"));
    assert!(
        results
            .contention
            .iter()
            .all(|c| c.ops.iter().all(|&o| o > 0)),
        "a process made no progress"
    );
}
