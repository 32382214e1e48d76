//! The conformance suite: what every backend must do, through the public API
//! only. It runs on Linux in `cargo test`, and on Windows (under Wine in CI,
//! see `.ci/windows`), so both backends answer to the same tests.
//!
//! Helper processes are this binary again (see `common`); every test has a
//! watchdog and unique names, and closes what it opened.

mod common;

use std::time::{Duration, Instant};

use common::{Cleanup, Helper, unique_name, wait_until};
use libtest_mimic::Arguments;
use shmbox::{Error, Lifetime, LockState, Segment, SegmentOptions};

const SECOND: Duration = Duration::from_secs(1);

macro_rules! tests {
    ($($(#[$cfg:meta])* $test:ident),* $(,)?) => {
        &[$($(#[$cfg])* (stringify!($test), $test as fn())),*]
    };
}

fn main() {
    if let Ok(role) = std::env::var(common::ROLE_ENV) {
        common::helper_setup();
        let args: Vec<String> = std::env::args().skip(1).collect();
        run_role(&role, &args);
        std::process::exit(0);
    }
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert(1);
    let tests: &[(&str, fn())] = tests![
        names_are_checked_before_anything_is_made,
        create_open_and_open_or_create_agree_on_size,
        writes_and_reads_clamp_at_the_end_like_the_sample,
        two_processes_exchange_text,
        consistent_reads_carry_the_generation,
        the_lock_excludes_other_processes_until_the_timeout,
        a_second_lock_from_the_same_thread_times_out,
        a_holder_that_exits_without_unlocking_is_reported_dead,
        a_writer_that_exits_mid_write_leaves_the_data_marked_torn,
        four_processes_count_exactly_under_the_lock,
        wait_for_change_wakes_another_process,
        wait_for_change_wakes_every_waiting_thread,
        wait_for_change_honours_its_timeout,
        until_last_close_goes_with_the_last_handle,
        until_last_close_goes_when_its_only_holder_exits,
        persistent_is_kept_or_refused_clearly,
        info_describes_a_segment_and_its_lock,
        list_shows_the_segments_that_are_open,
        #[cfg(windows)]
        session_and_global_namespaces,
        #[cfg(windows)]
        namespace_prefixes_in_any_case_name_one_segment_and_one_lock,
        #[cfg(windows)]
        a_segment_made_again_as_its_last_handle_closes_never_finds_the_old_header,
        #[cfg(windows)]
        a_header_left_without_its_data_is_started_again,
    ];
    let trials = common::trials(tests, Duration::from_secs(120));
    libtest_mimic::run(&args, trials).exit();
}

// ----- helper roles -------------------------------------------------------------

fn run_role(role: &str, args: &[String]) {
    let arg = |i: usize| args[i].as_str();
    match role {
        "write" => {
            let seg = Segment::open(arg(0)).unwrap();
            seg.write(0, arg(1).as_bytes()).unwrap();
            println!("done");
        }
        "read" => {
            let seg = Segment::open(arg(0)).unwrap();
            let bytes = seg.read(0, seg.size()).unwrap();
            println!("{}", String::from_utf8_lossy(&bytes).trim_end_matches('\0'));
        }
        "hold-lock" => {
            let seg = Segment::open(arg(0)).unwrap();
            let guard = seg.lock().unwrap();
            println!("locked");
            wait_for_stdin_to_close();
            drop(guard);
        }
        "exit-holding" => {
            let seg = Segment::open(arg(0)).unwrap();
            let guard = seg.lock().unwrap();
            // Ends the process with the lock held: no destructor runs.
            std::mem::forget(guard);
            std::process::exit(0);
        }
        "exit-mid-write" => {
            let seg = Segment::open(arg(0)).unwrap();
            let mut guard = seg.lock().unwrap();
            guard.data_mut().copy_from_slice(0, b"half").unwrap();
            std::mem::forget(guard);
            std::process::exit(0);
        }
        "write-after" => {
            let seg = Segment::open(arg(0)).unwrap();
            println!("ready");
            std::thread::sleep(Duration::from_millis(arg(1).parse().unwrap()));
            seg.write(0, arg(2).as_bytes()).unwrap();
            println!("done");
        }
        "count" => {
            let seg = Segment::open(arg(0)).unwrap();
            let times: u64 = arg(1).parse().unwrap();
            for _ in 0..times {
                let mut guard = seg.lock().unwrap();
                let n: u64 = guard.read_pod(0).unwrap();
                guard.write_pod(0, &(n + 1)).unwrap();
            }
            println!("done");
        }
        "create-and-exit" => {
            let seg = Segment::create(arg(0), 64).unwrap();
            seg.write(0, b"made by a process that is gone").unwrap();
            println!("ready");
            std::mem::forget(seg);
            std::process::exit(0);
        }
        other => panic!("unknown role {other}"),
    }
}

/// Helpers that hold something do so until the test closes their stdin (or
/// their lifetime runs out).
fn wait_for_stdin_to_close() {
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

/// A helper whose stdin stays open until it is dropped.
fn spawn_holding(role: &str, args: &[&str]) -> Helper {
    Helper::spawn_with(role, args, |c| {
        c.stdin(std::process::Stdio::piped());
    })
}

fn expect_timeout(result: shmbox::Result<impl std::fmt::Debug>) {
    match result {
        Err(Error::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
}

// ----- tests --------------------------------------------------------------------

fn names_are_checked_before_anything_is_made() {
    for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
        assert!(
            matches!(Segment::create(bad, 8), Err(Error::InvalidName { .. })),
            "{bad:?} was accepted"
        );
    }
    let name = unique_name("conf-size");
    let _cleanup = Cleanup(name.clone());
    assert!(matches!(
        Segment::create(&name, 0),
        Err(Error::InvalidSize { .. })
    ));
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
}

fn create_open_and_open_or_create_agree_on_size() {
    let name = unique_name("conf-open");
    let _cleanup = Cleanup(name.clone());
    let first = Segment::create(&name, 1000).unwrap();
    assert_eq!(first.size(), 1000, "exactly the size asked for, not a page");
    assert!(matches!(
        Segment::create(&name, 1000),
        Err(Error::AlreadyExists { .. })
    ));
    let opened = Segment::open(&name).unwrap();
    assert_eq!(opened.size(), 1000, "open discovers the size");
    let same = Segment::open_or_create(&name, 1000).unwrap();
    assert_eq!(same.size(), 1000);
    match Segment::open_or_create(&name, 2000) {
        Err(Error::SizeMismatch {
            existing,
            requested,
            ..
        }) => assert_eq!((existing, requested), (1000, 2000)),
        other => panic!("expected a size mismatch, got {other:?}"),
    }
}

fn writes_and_reads_clamp_at_the_end_like_the_sample() {
    let name = unique_name("conf-clamp");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 16).unwrap();
    assert_eq!(seg.write(10, b"0123456789").unwrap(), 6);
    assert_eq!(seg.read(10, 100).unwrap(), b"012345");
    assert_eq!(seg.read(16, 4).unwrap(), b"");
    assert!(matches!(
        seg.write(17, b"x"),
        Err(Error::OutOfRange {
            offset: 17,
            size: 16
        })
    ));
    assert!(matches!(seg.read(17, 1), Err(Error::OutOfRange { .. })));
    assert_eq!(
        seg.read(0, 10).unwrap(),
        vec![0; 10],
        "new memory is zeroed"
    );
}

fn two_processes_exchange_text() {
    let name = unique_name("conf-exchange");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 1024).unwrap();
    let mut writer = Helper::spawn("write", &[&name, "你好 from the child"]);
    writer.expect("done");
    writer.finish(10 * SECOND);
    let text = seg.read(0, 1024).unwrap();
    assert!(text.starts_with("你好 from the child".as_bytes()));
    seg.write(0, b"and back from the parent\0\0\0\0\0").unwrap();
    let reader = Helper::spawn("read", &[&name]);
    reader.expect("and back from the parent");
}

fn consistent_reads_carry_the_generation() {
    let name = unique_name("conf-consistent");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    assert_eq!(seg.generation(), 0);
    seg.write(0, b"abcd").unwrap();
    seg.write(4, b"efgh").unwrap();
    let snapshot = seg.read_consistent(2, 4).unwrap();
    assert_eq!(snapshot.data, b"cdef");
    assert_eq!(snapshot.generation, 2);
    assert_eq!(seg.generation(), 2);
}

fn the_lock_excludes_other_processes_until_the_timeout() {
    let name = unique_name("conf-exclude");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    let holder = spawn_holding("hold-lock", &[&name]);
    holder.expect("locked");
    let started = Instant::now();
    expect_timeout(seg.lock_timeout(Duration::from_millis(200)));
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert!(seg.try_lock().unwrap().is_none());
    expect_timeout(seg.write(0, b"no"));
    assert_eq!(
        shmbox::info(&name).unwrap().lock,
        LockState::Held {
            pid: Some(holder.pid())
        }
    );
    drop(holder); // closes its stdin: it unlocks and exits, or is killed
    let guard = seg.lock_timeout(10 * SECOND).unwrap();
    drop(guard);
}

fn a_second_lock_from_the_same_thread_times_out() {
    let name = unique_name("conf-relock");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    let other = Segment::open(&name).unwrap();
    let guard = seg.lock().unwrap();
    expect_timeout(other.lock_timeout(Duration::from_millis(50)));
    assert!(other.try_lock().unwrap().is_none());
    assert!(seg.try_lock().unwrap().is_none());
    drop(guard);
    // Released once, it is free: the failed attempts took nothing.
    let again = other.try_lock().unwrap().expect("free after one unlock");
    drop(again);
    std::thread::scope(|s| {
        let guard = seg.lock().unwrap();
        s.spawn(|| expect_timeout(other.lock_timeout(Duration::from_millis(50))))
            .join()
            .unwrap();
        drop(guard);
    });
}

fn a_holder_that_exits_without_unlocking_is_reported_dead() {
    let name = unique_name("conf-owner-died");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    seg.write(0, b"intact").unwrap();
    let mut holder = Helper::spawn("exit-holding", &[&name]);
    holder.finish(20 * SECOND);
    let guard = seg.lock_timeout(10 * SECOND).unwrap();
    let died = guard.owner_died().expect("the holder's death is reported");
    assert!(!died.mid_write);
    assert!(guard.is_consistent());
    assert_eq!(guard.data().to_vec().unwrap(), b"intact\0\0");
    drop(guard);
    let next = seg.lock().unwrap();
    assert!(next.owner_died().is_none(), "reported once");
    drop(next);
    assert_eq!(shmbox::info(&name).unwrap().owner_deaths, 1);
}

fn a_writer_that_exits_mid_write_leaves_the_data_marked_torn() {
    let name = unique_name("conf-torn");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    seg.write(0, b"whole!!!").unwrap();
    let mut writer = Helper::spawn("exit-mid-write", &[&name]);
    writer.finish(20 * SECOND);
    // The lock-free reader is told, not handed half a write.
    let deadline = Instant::now() + 10 * SECOND;
    loop {
        match seg.read_consistent(0, 8) {
            Err(Error::Inconsistent { .. }) => break,
            Ok(s) => panic!("a torn write was returned as whole: {:?}", s.data),
            Err(Error::Timeout { .. }) if Instant::now() < deadline => continue,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let mut guard = seg.lock_timeout(10 * SECOND).unwrap();
    let died = guard.owner_died().expect("reported");
    assert!(died.mid_write);
    assert!(!guard.is_consistent());
    assert_eq!(guard.data().to_vec().unwrap(), b"halfe!!!");
    guard.mark_consistent();
    drop(guard);
    assert_eq!(seg.read_consistent(0, 8).unwrap().data, b"halfe!!!");
}

fn four_processes_count_exactly_under_the_lock() {
    let name = unique_name("conf-count");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    let mut counters: Vec<Helper> = (0..4)
        .map(|_| Helper::spawn("count", &[&name, "2000"]))
        .collect();
    for c in &mut counters {
        c.expect("done");
        c.finish(60 * SECOND);
    }
    let total = u64::from_le_bytes(seg.read(0, 8).unwrap().try_into().unwrap());
    assert_eq!(total, 8000, "no increment lost");
    assert_eq!(seg.generation(), 8000);
}

fn wait_for_change_wakes_another_process() {
    let name = unique_name("conf-wake");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 32).unwrap();
    let seen = seg.generation();
    let writer = Helper::spawn("write-after", &[&name, "100", "wake up"]);
    writer.expect("ready");
    let now = seg.wait_for_change(seen, 20 * SECOND).unwrap();
    assert_eq!(now, seen + 1);
    assert!(seg.read(0, 7).unwrap() == b"wake up");
    writer.expect("done");
}

fn wait_for_change_wakes_every_waiting_thread() {
    let name = unique_name("conf-wake-all");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    for round in 0..20u64 {
        let seen = seg.generation();
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let own = Segment::open(&name).unwrap();
                        own.wait_for_change(seen, 20 * SECOND)
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(5));
            seg.write(0, &round.to_le_bytes()).unwrap();
            for w in waiters {
                assert_eq!(w.join().unwrap().unwrap(), seen + 1, "round {round}");
            }
        });
    }
}

fn wait_for_change_honours_its_timeout() {
    let name = unique_name("conf-wait-timeout");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    let started = Instant::now();
    expect_timeout(seg.wait_for_change(seg.generation(), Duration::from_millis(150)));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(140), "{waited:?}");
    // Returns at once when the generation already moved on.
    seg.write(0, b"x").unwrap();
    assert_eq!(seg.wait_for_change(0, Duration::ZERO).unwrap(), 1);
    // Timed-out waits leave nothing behind that would wake the next one early.
    for _ in 0..5 {
        expect_timeout(seg.wait_for_change(1, Duration::from_millis(10)));
    }
    let started = Instant::now();
    expect_timeout(seg.wait_for_change(1, Duration::from_millis(100)));
    assert!(started.elapsed() >= Duration::from_millis(90));
}

fn until_last_close_goes_with_the_last_handle() {
    let name = unique_name("conf-last-close");
    let _cleanup = Cleanup(name.clone());
    let a = Segment::create(&name, 8).unwrap();
    assert_eq!(a.lifetime(), Lifetime::UntilLastClose);
    let b = Segment::open(&name).unwrap();
    drop(a);
    b.write(0, b"kept").unwrap();
    assert_eq!(Segment::open(&name).unwrap().read(0, 4).unwrap(), b"kept");
    drop(b);
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
}

fn until_last_close_goes_when_its_only_holder_exits() {
    let name = unique_name("conf-holder-exits");
    let _cleanup = Cleanup(name.clone());
    let mut maker = Helper::spawn("create-and-exit", &[&name]);
    maker.expect("ready");
    maker.finish(20 * SECOND);
    wait_until("the segment to go", 10 * SECOND, || {
        matches!(Segment::open(&name), Err(Error::NotFound { .. }))
    });
}

fn persistent_is_kept_or_refused_clearly() {
    // Which backends keep persistent segments: Linux does; a Windows object
    // cannot outlive every handle to it.
    let persistence = !cfg!(windows);
    let name = unique_name("conf-persistent");
    let _cleanup = Cleanup(name.clone());
    let options = SegmentOptions::new().lifetime(Lifetime::Persistent);
    match options.create(&name, 8) {
        Ok(seg) => {
            assert!(persistence, "a backend without persistence made one");
            drop(seg);
            assert_eq!(Segment::open(&name).unwrap().size(), 8);
            shmbox::remove(&name).unwrap();
        }
        Err(Error::Unsupported { what }) => {
            assert!(!persistence, "refused on a backend that has it: {what}");
            assert!(what.contains("persistent"), "{what}");
            assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
        }
        Err(e) => panic!("neither made nor clearly refused: {e}"),
    }
}

fn info_describes_a_segment_and_its_lock() {
    let name = unique_name("conf-info");
    let _cleanup = Cleanup(name.clone());
    let seg = Segment::create(&name, 100).unwrap();
    seg.write(0, b"x").unwrap();
    let info = shmbox::info(&name).unwrap();
    assert_eq!(info.size, 100);
    assert_eq!(info.generation, 1);
    assert_eq!(info.lifetime, Lifetime::UntilLastClose);
    assert_eq!(info.last_writer_pid, Some(std::process::id()));
    assert_eq!(info.creator_pid, Some(std::process::id()));
    assert!(info.consistent);
    assert_eq!(info.lock, LockState::Free);
    let guard = seg.lock().unwrap();
    assert_eq!(
        shmbox::info(&name).unwrap().lock,
        LockState::Held {
            pid: Some(std::process::id())
        }
    );
    assert_eq!(
        seg.info().unwrap().lock_owner_pid(),
        Some(std::process::id())
    );
    drop(guard);
    assert!(matches!(
        shmbox::info(unique_name("conf-info-none")),
        Err(Error::NotFound { .. })
    ));
}

fn list_shows_the_segments_that_are_open() {
    let name = unique_name("conf-list");
    let _cleanup = Cleanup(name.clone());
    let listed = |name: &str| {
        shmbox::list()
            .unwrap()
            .into_iter()
            .find(|i| i.name.as_str() == name)
    };
    assert!(listed(&name).is_none());
    let seg = Segment::create(&name, 48).unwrap();
    seg.write(0, b"listed").unwrap();
    let info = listed(&name).expect("an open segment is listed");
    assert_eq!((info.size, info.generation), (48, 1));
    let all = shmbox::list().unwrap();
    assert!(
        all.windows(2).all(|w| w[0].name <= w[1].name),
        "sorted by name"
    );
    drop(seg);
    assert!(listed(&name).is_none(), "gone with its last handle");
}

/// Names are session-local unless they say `Global\`; `Local\` is the
/// default spelled out.
#[cfg(windows)]
fn session_and_global_namespaces() {
    let base = unique_name("conf-ns");
    let local = Segment::create(&base, 8).unwrap();
    local.write(0, b"local").unwrap();
    let spelled_out = Segment::open(format!("Local\\{base}")).unwrap();
    assert_eq!(spelled_out.read(0, 5).unwrap(), b"local");
    assert!(matches!(
        Segment::open(format!("Global\\{base}")),
        Err(Error::NotFound { .. })
    ));
    let global = Segment::create(format!("Global\\{base}"), 16).unwrap();
    assert_eq!(global.size(), 16);
    assert_eq!(Segment::open(format!("Global\\{base}")).unwrap().size(), 16);
    assert_eq!(
        Segment::open(&base).unwrap().size(),
        8,
        "still the local one"
    );
    // Each namespace has its own lock.
    let held = local.lock().unwrap();
    assert!(global.try_lock().unwrap().is_some());
    drop(held);
}

/// The kernel matches `Global\` and `Local\` in any case, so `global\X` is
/// `Global\X`: the same segment, and the same mutex. A second lock from the
/// same thread through the other spelling must time out, not nest.
/// (Regression: the held-lock check compared the spelling of the name.)
#[cfg(windows)]
fn namespace_prefixes_in_any_case_name_one_segment_and_one_lock() {
    let base = unique_name("conf-ns-case");
    let upper = Segment::create(format!("Global\\{base}"), 8).unwrap();
    upper.write(0, b"one").unwrap();
    let lower = Segment::open(format!("global\\{base}")).unwrap();
    assert_eq!(lower.read(0, 3).unwrap(), b"one");
    let local = Segment::create(format!("LOCAL\\{base}"), 4).unwrap();
    assert_eq!(
        Segment::open(&base).unwrap().size(),
        4,
        "LOCAL\\ is Local\\"
    );
    drop(local);
    let held = upper.lock().unwrap();
    expect_timeout(lower.lock_timeout(Duration::from_millis(50)));
    assert!(lower.try_lock().unwrap().is_none());
    drop(held);
    let again = lower.try_lock().unwrap().expect("free after one unlock");
    drop(again);
}

/// When the last handle closes, the header object must go before the data:
/// a process that makes the data object anew must never find the old
/// header beside it, which describes another size. (Regression: the data
/// went first, and such an opener failed with Corrupt.)
#[cfg(windows)]
#[allow(clippy::disallowed_types)] // the test's own flag, not shared memory
fn a_segment_made_again_as_its_last_handle_closes_never_finds_the_old_header() {
    let name = unique_name("conf-drop-order");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let closer = s.spawn(|| {
            for _ in 0..300 {
                if let Ok(seg) = Segment::create(&name, 4096) {
                    seg.write(0, b"small").unwrap();
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let mut made = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match SegmentOptions::new()
                .init_timeout(Duration::from_millis(200))
                .open_or_create(&name, 8192)
            {
                Ok(seg) => {
                    assert_eq!(seg.size(), 8192);
                    made += 1;
                }
                Err(Error::SizeMismatch { existing: 4096, .. } | Error::Busy { .. }) => {}
                Err(e) => panic!("after {made} clean creations: {e}"),
            }
        }
        closer.join().unwrap();
    });
}

/// The state the wrong drop order left for a moment, made to last: the data
/// object is gone, its header object is not (a raw handle keeps it). A new
/// segment of another size under the name must start a new header, not
/// fail on the old one. (Regression: it was Corrupt.)
#[cfg(windows)]
#[allow(unsafe_code)] // the raw Win32 handle that keeps the header
fn a_header_left_without_its_data_is_started_again() {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Memory::{FILE_MAP_READ, OpenFileMappingW};
    let name = unique_name("conf-stale-header");
    let seg = Segment::create(&name, 4096).unwrap();
    seg.write(0, b"old").unwrap();
    let header_name: Vec<u16> = format!("shmbox/{name}")
        .encode_utf16()
        .chain(Some(0))
        .collect();
    // SAFETY: a NUL-terminated name; the handle is closed below.
    let header = unsafe { OpenFileMappingW(FILE_MAP_READ, 0, header_name.as_ptr()) };
    assert!(
        !header.is_null(),
        "the header object exists while the segment does"
    );
    drop(seg);
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
    let again = Segment::open_or_create(&name, 8192).unwrap();
    assert_eq!(again.size(), 8192);
    assert_eq!(again.generation(), 0);
    assert_eq!(again.read(0, 3).unwrap(), [0, 0, 0]);
    assert_eq!(shmbox::info(&name).unwrap().size, 8192);
    drop(again);
    // SAFETY: the handle opened above, closed once.
    unsafe { CloseHandle(header) };
}
