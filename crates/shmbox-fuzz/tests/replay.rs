//! Replays the committed fuzz corpus (fuzz/corpus/TARGET) and the inputs of
//! past findings (fuzz/regressions/TARGET) through the targets' bodies, on
//! stable Rust, as CI does on every run. A panic fails the test, naming the
//! file; a watchdog fails it if the replay hangs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

fn replay(target: &str, body: fn(&[u8]), at_least: usize) {
    let files = inputs(target);
    assert!(
        files.len() >= at_least,
        "fuzz/corpus/{target} holds {} inputs; the committed corpus has at least {at_least}",
        files.len()
    );
    let started = Instant::now();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{} fails: {}", target, file.display());
    }
    eprintln!(
        "    {target}: {} inputs replayed in {:.2} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Fails the test process if the replay takes far longer than it should.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("the corpus replay still ran after {limit:?}: something hangs");
        std::process::exit(101);
    });
}

#[test]
fn segment_file_corpus_replays_cleanly() {
    watchdog(Duration::from_secs(240));
    replay("segment_file", shmbox_fuzz::segment_file, 50);
    let leftovers: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("shmbox.fuzz-{}-", std::process::id())))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn cli_sizes_corpus_replays_cleanly() {
    watchdog(Duration::from_secs(240));
    replay("cli_sizes", shmbox_fuzz::cli_sizes, 20);
}

#[test]
fn files_left_by_a_killed_fuzzing_run_are_removed_by_the_next() {
    watchdog(Duration::from_secs(60));
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let dead = format!("/dev/shm/shmbox.fuzz-{dead_pid}-0");
    // Process 1 is always alive; this test's own pid would upset the check
    // for leftovers that runs beside it.
    let alive = format!("/dev/shm/shmbox.fuzz-1-{dead_pid}");
    std::fs::write(&dead, b"left by a killed run").unwrap();
    std::fs::write(&alive, b"a live run's case").unwrap();
    shmbox_fuzz::remove_files_of_dead_runs();
    let dead_gone = !Path::new(&dead).exists();
    let alive_kept = Path::new(&alive).exists();
    let _ = std::fs::remove_file(&dead);
    let _ = std::fs::remove_file(&alive);
    assert!(dead_gone, "{dead} was not removed");
    assert!(alive_kept, "{alive} of a live process was removed");
}
