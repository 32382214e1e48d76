//! Interoperation with the FoxPro sample's processes, on Windows: a program
//! that makes exactly the sample's calls (`tests/windows/foxpro_sample.c`,
//! built with mingw) shares a block and its mutex `sync_NAME` with shmbox.
//!
//! The program's path comes from `SHMBOX_SAMPLE_EXE`; `.ci/windows` builds
//! it and runs these tests under Wine. Without the variable the tests say
//! so and pass, unless `SHMBOX_REQUIRE_SAMPLE` is set (as CI sets it), when
//! they fail.
#![cfg(windows)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use shmbox::{Error, LockState, Segment, SegmentOptions};

const SIZE: usize = 1024;

/// One running copy of the sample program.
struct Sample {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Sample {
    /// Starts the sample on `name`, or `None` when it is not built here.
    fn start(name: &str) -> Option<Sample> {
        let Ok(exe) = std::env::var("SHMBOX_SAMPLE_EXE") else {
            assert!(
                std::env::var_os("SHMBOX_REQUIRE_SAMPLE").is_none(),
                "SHMBOX_SAMPLE_EXE is not set, and SHMBOX_REQUIRE_SAMPLE says it must be"
            );
            eprintln!("skipped: set SHMBOX_SAMPLE_EXE to a build of tests/windows/foxpro_sample.c");
            return None;
        };
        let mut child = Command::new(exe)
            .args([name, &SIZE.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the sample program");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let sample = Sample {
            child,
            stdin,
            lines,
        };
        let ready = sample.line();
        assert!(ready.starts_with("ready "), "the sample said {ready:?}");
        Some(sample)
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the sample answers within 30 s")
    }

    /// Sends one command and returns the answer.
    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.line()
    }

    /// Ends it with `ExitProcess`, whatever it holds, and waits.
    fn exit(mut self) {
        writeln!(self.stdin, "exit").unwrap();
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the sample did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("SHMBOXTEST{tag}{}x{nanos}", std::process::id())
}

/// Text up to the first NUL, as the sample's form shows it.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Fails the test run if it hangs: a deadlock must fail CI, not stall it.
fn watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("watchdog: an interop test ran past 120 s");
        std::process::exit(101);
    });
}

#[test]
fn text_written_by_the_sample_is_read_by_shmbox() {
    watchdog();
    let name = unique("A");
    let Some(mut sample) = Sample::start(&name) else {
        return;
    };
    assert_eq!(sample.ask("write 0 written by FoxPro"), "wrote 17");
    // The sample's block, opened as the sample's peers do: by name and size.
    let seg = Segment::open_or_create(&name, SIZE).unwrap();
    assert_eq!(seg.size(), SIZE);
    assert_eq!(text(&seg.read(0, SIZE).unwrap()), "written by FoxPro");
    // An offset, clamped at the end, as WriteToSharedMemory(cBuffer, nOffset).
    assert_eq!(sample.ask("write 1020 tail-end"), "wrote 4");
    assert_eq!(seg.read(1020, 10).unwrap(), b"tail");
}

#[test]
fn text_written_by_shmbox_is_read_by_the_sample() {
    watchdog();
    let name = unique("B");
    let seg = Segment::open_or_create(&name, SIZE).unwrap();
    seg.write(0, "written by shmbox, 你好".as_bytes()).unwrap();
    let Some(mut sample) = Sample::start(&name) else {
        return;
    };
    let answer = sample.ask("read");
    assert_eq!(answer.as_bytes(), "read written by shmbox, 你好".as_bytes());
    // And both ways in turn, each under the other's lock.
    for round in 0..20 {
        assert_eq!(
            sample.ask(&format!("write 0 sample round {round:02}")),
            "wrote 15"
        );
        assert_eq!(
            text(&seg.read(0, 15).unwrap()),
            format!("sample round {round:02}")
        );
        seg.write(0, format!("shmbox round {round:02}\0").as_bytes())
            .unwrap();
        assert_eq!(sample.ask("read"), format!("read shmbox round {round:02}"));
    }
}

#[test]
fn the_sample_holding_the_mutex_makes_shmbox_wait_then_time_out() {
    watchdog();
    let name = unique("C");
    let Some(mut sample) = Sample::start(&name) else {
        return;
    };
    let seg = SegmentOptions::new()
        .timeout(Duration::from_millis(300))
        .open_or_create(&name, SIZE)
        .unwrap();
    assert_eq!(sample.ask("lock"), "locked");
    let started = Instant::now();
    assert!(matches!(
        seg.write(0, b"must wait"),
        Err(Error::Timeout { .. })
    ));
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert!(seg.try_lock().unwrap().is_none());
    assert_eq!(
        shmbox::info(&name).unwrap().lock,
        LockState::Held { pid: None },
        "a holder that is not shmbox shows as held, pid unknown"
    );
    assert_eq!(seg.info().unwrap().lock, LockState::Held { pid: None });
    // Released by the sample within the wait: shmbox gets it, cleanly.
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let guard = seg.lock_timeout(Duration::from_secs(20)).unwrap();
            let died = guard.owner_died();
            drop(guard);
            died
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(sample.ask("unlock"), "unlocked");
        assert!(waiter.join().unwrap().is_none());
    });
    assert_eq!(seg.write(0, b"after").unwrap(), 5);
    assert_eq!(sample.ask("read"), "read after");
}

#[test]
fn shmbox_holding_the_lock_makes_the_sample_wait_then_give_up() {
    watchdog();
    let name = unique("D");
    let seg = Segment::open_or_create(&name, SIZE).unwrap();
    let Some(mut sample) = Sample::start(&name) else {
        return;
    };
    let guard = seg.lock().unwrap();
    let started = Instant::now();
    // The sample's own 5-second wait runs out: WAIT_TIMEOUT is 258.
    assert_eq!(sample.ask("write 0 too late"), "busy 258");
    assert!(started.elapsed() >= Duration::from_millis(4900));
    drop(guard);
    assert_eq!(sample.ask("write 0 in time"), "wrote 7");
    assert_eq!(text(&seg.read(0, SIZE).unwrap()), "in time");
}

#[test]
fn the_sample_exiting_with_the_mutex_gives_shmbox_the_owner_died_report() {
    watchdog();
    let name = unique("E");
    let seg = Segment::open_or_create(&name, SIZE).unwrap();
    seg.write(0, b"before").unwrap();
    let Some(mut sample) = Sample::start(&name) else {
        return;
    };
    assert_eq!(sample.ask("lock"), "locked");
    sample.exit();
    let guard = seg.lock_timeout(Duration::from_secs(20)).unwrap();
    let died = guard.owner_died().expect("WAIT_ABANDONED is reported");
    assert_eq!(died.pid, None, "the dead owner was not a shmbox process");
    assert!(!died.mid_write, "shmbox's own writes were all committed");
    assert_eq!(text(&guard.data().to_vec().unwrap()), "before");
    drop(guard);
    assert!(seg.lock().unwrap().owner_died().is_none(), "reported once");
    assert_eq!(seg.info().unwrap().owner_deaths, 1);
}

#[test]
fn a_shmbox_holder_that_exits_leaves_the_sample_an_abandoned_mutex() {
    watchdog();
    let name = unique("F");
    let Some(mut sample) = Sample::start(&name) else {
        return;
    };
    // This process's own handle, locked from a thread that then ends: the
    // kernel abandons a mutex whose owning thread ends, as when a process dies.
    let seg = Segment::open_or_create(&name, SIZE).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(seg.lock().unwrap()));
    });
    // WAIT_ABANDONED is 128; the sample treats anything but 0 as a failure
    // (and, like the original, then owns the mutex without knowing it).
    assert_eq!(sample.ask("lock"), "busy 128");
    assert_eq!(sample.ask("unlock"), "unlocked");
}
