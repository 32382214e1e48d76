//! A segment's file cut short (truncated) while it is mapped: every access to
//! a missing page would raise SIGBUS and kill the process. shmbox catches it,
//! and every later operation on the handle fails with `Error::Truncated`.
//! A SIGBUS that has nothing to do with a segment still kills the process.
#![allow(unsafe_code)]
// mapping an ordinary file, and faulting on it
// Linux-specific: files in /dev/shm, signals, uids. The backend-neutral
// behaviour is in conformance.rs, which every platform runs.
#![cfg(target_os = "linux")]

mod common;

use std::fs::OpenOptions;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{segment_path, unique_name};
use shmbox::{Error, Segment};

/// Cuts the segment's file to `len` bytes, as a careless or hostile process
/// of the same user could.
fn cut(name: &str, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(segment_path(name))
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn expect_truncated<T: std::fmt::Debug>(what: &str, result: shmbox::Result<T>) {
    match result {
        Err(e @ Error::Truncated { .. }) => {
            assert!(
                e.to_string().contains("was cut short while it was open"),
                "{e}"
            );
            assert_eq!(e.io_kind(), std::io::ErrorKind::InvalidData);
        }
        other => panic!("{what}: expected Error::Truncated, got {other:?}"),
    }
}

#[test]
fn data_pages_cut_away_fail_every_operation_from_the_first_fault() {
    let name = unique_name("cut-data");
    let seg = Segment::create(&name, 64 << 10).unwrap();
    seg.write(0, b"before").unwrap();
    // The header and the first 3840 bytes of data remain.
    cut(&name, 4096);
    // Bytes that are still there read as they are: nothing faulted.
    assert_eq!(seg.read(0, 6).unwrap(), b"before");
    // Touching a missing page is the first fault.
    expect_truncated("write past the cut", seg.write(32 << 10, b"lost"));
    // From then on, every operation says so, even where the bytes remain.
    expect_truncated("read", seg.read(0, 6));
    expect_truncated("read_consistent", seg.read_consistent(0, 6));
    expect_truncated("write", seg.write(0, b"x"));
    expect_truncated("lock", seg.lock());
    expect_truncated("try_lock", seg.try_lock());
    expect_truncated(
        "wait_for_change",
        seg.wait_for_change(u64::MAX, Duration::from_secs(5)),
    );
    expect_truncated("info", seg.info());
    // A new opener is refused: the file no longer has the size its header says.
    let e = Segment::open(&name).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
}

#[test]
fn a_file_cut_to_nothing_fails_the_lock_itself() {
    let name = unique_name("cut-all");
    let seg = Segment::create(&name, 64).unwrap();
    cut(&name, 0);
    // The lock word itself is gone.
    expect_truncated("lock", seg.lock());
    expect_truncated("write", seg.write(0, b"x"));
    expect_truncated("read_consistent", seg.read_consistent(0, 8));
    // Infallible accessors answer without crashing.
    assert_eq!(seg.size(), 64);
    let _ = seg.generation();
    drop(seg);
    assert!(
        !segment_path(&name).exists(),
        "the last close still removes it"
    );
}

#[test]
fn a_guard_held_while_the_file_is_cut_reports_it_at_unlock() {
    let name = unique_name("cut-guard");
    let seg = Segment::create(&name, 64 << 10).unwrap();
    let mut guard = seg.lock().unwrap();
    cut(&name, 4096);
    guard.data_mut()[40 << 10] = 1; // a missing page
    expect_truncated("unlock", guard.unlock());
    expect_truncated("lock after", seg.lock());
}

#[test]
fn a_sleeping_waiter_learns_of_the_cut() {
    let name = unique_name("cut-waiter");
    let seg = Segment::create(&name, 64).unwrap();
    let since = seg.generation();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let asked = Instant::now();
            (
                seg.wait_for_change(since, Duration::from_secs(60)),
                asked.elapsed(),
            )
        });
        std::thread::sleep(Duration::from_millis(100));
        cut(&name, 0);
        let (outcome, waited) = waiter.join().unwrap();
        expect_truncated("wait_for_change", outcome);
        // Woken by its own periodic check (every second), not the timeout.
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    });
}

/// The variable that makes this test binary fault outside any segment.
const FOREIGN_SIGBUS: &str = "SHMBOX_TEST_FOREIGN_SIGBUS";

#[test]
fn a_sigbus_outside_any_segment_still_kills_the_process() {
    if std::env::var_os(FOREIGN_SIGBUS).is_some() {
        // In the child: install shmbox's handler by opening a segment, then
        // fault on a mapping of an ordinary file cut short.
        let name = unique_name("foreign-sigbus");
        let _seg = Segment::create(&name, 64).unwrap();
        let path = std::env::temp_dir().join(format!("{name}.bin"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(8192).unwrap();
        let map = map_shared(&file, 8192);
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid rlimit; the child should not leave a core file.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
        file.set_len(0).unwrap();
        let _ = std::fs::remove_file(&path);
        // SAFETY: `map` is a live 8192-byte mapping; the read faults, which
        // is the point.
        let byte = unsafe { std::ptr::read_volatile(map.add(4096)) };
        eprintln!("read {byte}: the fault was swallowed");
        std::process::exit(3);
    }
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_sigbus_outside_any_segment_still_kills_the_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FOREIGN_SIGBUS, "1")
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

/// Maps `len` bytes of `file` shared, read-write.
fn map_shared(file: &std::fs::File, len: usize) -> *mut u8 {
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh mapping at an address the kernel picks.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p.cast()
}
