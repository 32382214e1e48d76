//! A segment's file cut short (truncated) while it is mapped: every access to
//! a missing page raises SIGBUS, which kills the process. With the opt-in
//! handler (`shmbox::install_sigbus_handler`), shmbox catches it, and every
//! later operation on the handle fails with `Error::Truncated`. Without it,
//! shmbox touches no signal. Any SIGBUS that is not a segment's goes to the
//! handler that was there before, as the kernel would have run it.
#![allow(unsafe_code)]
// mapping an ordinary file, and faulting on it
// Linux-specific: files in /dev/shm, signals, uids. The backend-neutral
// behaviour is in conformance.rs, which every platform runs.
#![cfg(target_os = "linux")]

mod common;

use std::fs::OpenOptions;
use std::process::{Command, ExitStatus};
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

/// Opts in; every test of a survived cut calls it.
fn protect() {
    shmbox::install_sigbus_handler().unwrap();
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
    protect();
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
    protect();
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
    protect();
    let name = unique_name("cut-guard");
    let seg = Segment::create(&name, 64 << 10).unwrap();
    let mut guard = seg.lock().unwrap();
    cut(&name, 4096);
    // A missing page: the copy faults, and says so.
    expect_truncated("write to the view", guard.data_mut().set(40 << 10, 1));
    expect_truncated("unlock", guard.unlock());
    expect_truncated("lock after", seg.lock());
}

#[test]
fn a_sleeping_waiter_learns_of_the_cut() {
    protect();
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

/// The variable that runs one of the child scenarios below.
const CHILD: &str = "SHMBOX_TEST_SIGBUS_CHILD";

/// Runs this test binary again as `test`, in scenario `scenario`.
fn run_child(test: &str, scenario: &str) -> ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, scenario)
        .status()
        .unwrap()
}

fn no_core_files() {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit; the child should not leave a core file.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
}

/// An ordinary file mapped and then cut short: a read of the returned
/// address faults with `BUS_ADRERR` outside any segment.
fn foreign_fault_address(tag: &str) -> *mut u8 {
    let path = std::env::temp_dir().join(format!("{}.bin", unique_name(tag)));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(8192).unwrap();
    let map = map_shared(&file, 8192);
    file.set_len(0).unwrap();
    let _ = std::fs::remove_file(&path);
    // SAFETY: inside the 8192-byte mapping.
    unsafe { map.add(4096) }
}

#[test]
fn without_the_opt_in_a_cut_segment_kills_with_sigbus() {
    if std::env::var(CHILD).as_deref() == Ok("no-opt-in") {
        no_core_files();
        let name = unique_name("no-opt-in");
        let seg = Segment::create(&name, 64 << 10).unwrap();
        cut(&name, 4096);
        let _ = std::fs::remove_file(segment_path(&name));
        let _ = seg.write(32 << 10, b"faults");
        eprintln!("the fault was swallowed without a handler");
        std::process::exit(3);
    }
    let status = run_child(
        "without_the_opt_in_a_cut_segment_kills_with_sigbus",
        "no-opt-in",
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

/// What the handler installed before shmbox's saw.
mod previous {
    #![allow(clippy::disallowed_types)] // test bookkeeping, not shared memory
    use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

    pub static CALLS: AtomicU32 = AtomicU32::new(0);
    pub static CODE: AtomicI32 = AtomicI32::new(i32::MIN);
    pub static USR1_BLOCKED: AtomicBool = AtomicBool::new(false);

    /// Records the call; a real fault (which returning would repeat) ends
    /// the process with status 42.
    pub extern "C" fn handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the kernel (or shmbox, passing it on) gives a valid siginfo.
        let code = unsafe { (*info).si_code };
        CODE.store(code, Ordering::SeqCst);
        // SAFETY: reads this thread's mask into a zeroed set.
        let blocked = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
            libc::sigismember(&set, libc::SIGUSR1) == 1
        };
        USR1_BLOCKED.store(blocked, Ordering::SeqCst);
        if code == libc::BUS_ADRERR {
            // SAFETY: ends the process at once.
            unsafe { libc::_exit(42) };
        }
    }
}

#[test]
fn a_sigbus_that_is_not_a_segment_fault_reaches_the_previous_handler() {
    use std::sync::atomic::Ordering::SeqCst;
    if std::env::var(CHILD).as_deref() == Ok("chain") {
        no_core_files();
        // The application's own handler, with SIGUSR1 in its mask.
        // SAFETY: a zeroed sigaction, then a valid handler and mask.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = previous::handler as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaddset(&mut action.sa_mask, libc::SIGUSR1);
            assert_eq!(
                libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()),
                0
            );
        }
        protect();
        let name = unique_name("chain");
        let seg = Segment::create(&name, 64).unwrap();
        // Sent by a process (here, itself): not a fault, not shmbox's.
        // SAFETY: raise only sends a signal to this thread.
        unsafe { libc::raise(libc::SIGBUS) };
        if previous::CALLS.load(SeqCst) != 1 {
            std::process::exit(10);
        }
        if previous::CODE.load(SeqCst) > 0 {
            std::process::exit(11);
        }
        if !previous::USR1_BLOCKED.load(SeqCst) {
            std::process::exit(12);
        }
        // A real fault on a mapping that is not a segment's: passed on too.
        let address = foreign_fault_address("chain");
        drop(seg);
        // SAFETY: the read faults (BUS_ADRERR), and the handler exits.
        let byte = unsafe { std::ptr::read_volatile(address) };
        eprintln!("read {byte}: the fault was swallowed");
        std::process::exit(13);
    }
    let status = run_child(
        "a_sigbus_that_is_not_a_segment_fault_reaches_the_previous_handler",
        "chain",
    );
    assert_eq!(status.code(), Some(42), "{status}");
}

#[test]
fn a_sigbus_sent_by_a_process_still_kills_it_when_nothing_else_handles_it() {
    if std::env::var(CHILD).as_deref() == Ok("sent") {
        no_core_files();
        // No handler before shmbox's (Rust's own one is removed).
        // SAFETY: restores the default action.
        unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        protect();
        let name = unique_name("sent");
        let _seg = Segment::create(&name, 64).unwrap();
        // This process dies holding it: its name goes now.
        std::fs::remove_file(segment_path(&name)).unwrap();
        // SAFETY: sends a signal to this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGBUS) };
        std::thread::sleep(Duration::from_millis(200));
        eprintln!("a SIGBUS from kill was swallowed");
        std::process::exit(3);
    }
    let status = run_child(
        "a_sigbus_sent_by_a_process_still_kills_it_when_nothing_else_handles_it",
        "sent",
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

#[test]
fn a_sigbus_outside_any_segment_still_kills_the_process() {
    if std::env::var(CHILD).as_deref() == Ok("foreign") {
        // In the child: install shmbox's handler, open a segment, then fault
        // on a mapping of an ordinary file cut short.
        protect();
        let name = unique_name("foreign-sigbus");
        let _seg = Segment::create(&name, 64).unwrap();
        // This process dies holding it: its name goes now.
        std::fs::remove_file(segment_path(&name)).unwrap();
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
    let status = run_child(
        "a_sigbus_outside_any_segment_still_kills_the_process",
        "foreign",
    );
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
