//! The short version of the reliability suite, as CI runs it: crash torture,
//! stress and lifetime races, each for seconds, must find nothing wrong, and
//! the report must say so. A watchdog fails the test if anything hangs.

use std::process::Command;
use std::time::Duration;

/// Set in the environment of this binary's child processes.
const CHILD: &str = "SHMBOX_RELIABILITY_CHILD";

/// The short version takes about 20 s in a debug build on two cores.
const WATCHDOG: Duration = Duration::from_secs(300);

fn main() {
    if std::env::var_os(CHILD).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        std::process::exit(shmbox_reliability::child_main(&args));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = "short_reliability_suite_finds_nothing_wrong";
    if args.iter().any(|a| a == "--list") {
        println!("{name}: test");
        return;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-')) {
        if !name.contains(filter.as_str()) {
            println!("test result: ok. 0 passed; 0 failed; 1 filtered out");
            return;
        }
    }
    std::thread::spawn(move || {
        std::thread::sleep(WATCHDOG);
        eprintln!("{name}: still running after {WATCHDOG:?}");
        std::process::exit(101);
    });

    let dir = std::env::temp_dir().join(shmbox_reliability::unique_name("report"));
    let config = shmbox_reliability::Config {
        short: true,
        tools: false,
        fuzz_seconds: 0,
        output: dir.join("RELIABILITY.md"),
        seed: 7,
    };
    let spawn = |args: &[String]| {
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.env(CHILD, "1").args(args);
        c
    };
    let results = shmbox_reliability::run(&config, &spawn, &|what| eprintln!("    {what}"))
        .expect("the suite runs");
    for (what, found, verdict) in results.verdicts() {
        assert_eq!(
            verdict,
            shmbox_reliability::Verdict::Held,
            "{what}: {found}"
        );
    }
    // It did real work, not nothing.
    assert_eq!(results.torture.rounds, 30);
    assert!(
        results.torture.kills_holding_lock > 0,
        "no kill caught a holder"
    );
    assert!(results.stress.increments > 0 && results.stress.total_ops() > 1000);
    assert!(results.races.opens > 0 && results.races.crashes > 0);
    let report = std::fs::read_to_string(&config.output).unwrap();
    for heading in [
        "# shmbox reliability",
        "## Summary",
        "## Crash torture",
        "## Stress",
        "## Lifetime races",
        "## Model checking, miri and fuzzing",
    ] {
        assert!(report.contains(heading), "no {heading:?} in the report");
    }
    assert!(!report.contains("**failed**"), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
    println!("test {name} ... ok");
    println!("test result: ok. 1 passed; 0 failed");
}
