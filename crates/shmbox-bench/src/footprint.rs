//! Scenario 5: the cost of opening and closing a segment, the memory a
//! segment takes beyond its capacity, and the peak memory of `shmbox read`
//! and `shmbox demo`.
//!
//! # Safety
//!
//! `wait4` and `mmap` are called directly, on a child this process owns
//! and a file it just opened.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmbox::{Lifetime, Segment, SegmentOptions};

use crate::stats::{calibrate, median, sample};

/// The capacities whose real cost is measured.
pub const CAPACITIES: [usize; 6] = [1, 100, 1024, 4096, 65536, 1 << 20];

#[derive(Debug, Clone, Default)]
pub struct Footprint {
    /// `Segment::open` of an existing segment, then drop, in ns.
    pub open_close_ns: f64,
    /// `open` + `mmap` + `munmap` + `close` of the same file, in ns.
    pub raw_open_close_ns: f64,
    /// (capacity, bytes the file really takes in the tmpfs).
    pub allocated: Vec<(usize, u64)>,
    /// Processes that creating and opening an until-last-close segment
    /// started (this process's children before and after).
    pub helper_processes: Option<usize>,
    /// Peak resident memory of `shmbox read`, KiB.
    pub read_peak_kib: Option<u64>,
    /// Peak resident memory of `shmbox demo` (needs tmux), KiB.
    pub demo_peak_kib: Option<u64>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

pub fn measure(quick: bool, shmbox: Option<&Path>) -> io::Result<Footprint> {
    let mut f = Footprint::default();
    let name = crate::unique_name("footprint");
    let children_before = children();
    let seg = Segment::create(&name, 1024).map_err(other)?;
    drop(Segment::open(&name).map_err(other)?);
    // A forked helper would show at once; give a late one a moment.
    std::thread::sleep(Duration::from_millis(100));
    f.helper_processes = children_before
        .zip(children())
        .map(|(before, after)| after.saturating_sub(before));
    let path = PathBuf::from(format!("/dev/shm/shmbox.{name}"));
    let target = if quick {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(200)
    };
    let rounds = if quick { 3 } else { 15 };

    let mut open_close = |n: u64| {
        for _ in 0..n {
            drop(Segment::open(&name).unwrap());
        }
    };
    let mut raw = |n: u64| {
        for _ in 0..n {
            raw_open_map_close(&path).unwrap();
        }
    };
    let n_open = calibrate(&mut open_close, target);
    let n_raw = calibrate(&mut raw, target);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(sample(&mut open_close, n_open));
        b.push(sample(&mut raw, n_raw));
    }
    f.open_close_ns = median(&a);
    f.raw_open_close_ns = median(&b);

    for capacity in CAPACITIES {
        let cap_name = crate::unique_name("capacity");
        let s = SegmentOptions::new()
            .lifetime(Lifetime::Persistent)
            .create(&cap_name, capacity)
            .map_err(other)?;
        let meta = std::fs::metadata(format!("/dev/shm/shmbox.{cap_name}"))?;
        f.allocated.push((capacity, meta.blocks() * 512));
        drop(s);
        shmbox::remove(&cap_name).map_err(other)?;
    }

    if let Some(exe) = shmbox {
        f.read_peak_kib = read_peak_rss(exe).ok();
        f.demo_peak_kib = demo_peak_rss(exe);
    }
    drop(seg);
    Ok(f)
}

/// The baseline for opening a segment: `open`, `fstat` (for the length),
/// `mmap` of the whole file, `munmap`, `close`.
pub fn raw_open_map_close(path: &Path) -> io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = file.metadata()?.len() as usize;
    // SAFETY: a fresh shared mapping of the whole file, unmapped at once.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        libc::munmap(p, len);
    }
    Ok(())
}

/// Peak resident memory, in KiB, of `shmbox read` printing a 1 MiB segment.
///
/// Measured as the child's own high-water mark while it is blocked writing
/// to a pipe that is not yet read: `wait4`'s figure would count this large
/// process's pages too, which the child shares until it executes.
fn read_peak_rss(exe: &Path) -> io::Result<u64> {
    use std::io::Read;
    let name = crate::unique_name("read-rss");
    let seg = Segment::create(&name, 1 << 20).map_err(other)?;
    seg.write(0, &vec![b'x'; 1 << 20]).map_err(other)?;
    let mut child = Command::new(exe)
        .args(["read", &name, "--format", "raw"])
        .stdout(Stdio::piped())
        .spawn()?;
    // Wait until it has filled the pipe, that is, read the whole segment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut peak = 0;
    while Instant::now() < deadline {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/wchan", child.id())).unwrap_or_default();
        peak = peak.max(status_kib(child.id(), "VmHWM:").unwrap_or(0));
        if stat.contains("pipe_write") || stat.contains("wait_woken") {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    peak = peak.max(status_kib(child.id(), "VmHWM:").unwrap_or(0));
    let mut sink = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut sink)?;
    child.wait()?;
    if sink.len() != 1 << 20 {
        return Err(other("shmbox read printed the wrong number of bytes"));
    }
    Ok(peak)
}

/// How many children this process has, from every thread's list.
fn children() -> Option<usize> {
    let mut count = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).ok()?;
        count += list.split_whitespace().count();
    }
    Some(count)
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `shmbox demo` in a tmux pane: its peak resident memory once drawn.
fn demo_peak_rss(exe: &Path) -> Option<u64> {
    let socket = crate::unique_name("tmux");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
    };
    let name = crate::unique_name("demo");
    let command = format!("{} demo {name}", exe.display());
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "demo",
        "-x",
        "80",
        "-y",
        "24",
        &command,
    ])
    .ok()?
    .status
    .success()
    .then_some(())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut peak = None;
    while Instant::now() < deadline {
        let screen = tmux(&["capture-pane", "-p", "-t", "demo"]).ok()?;
        if String::from_utf8_lossy(&screen.stdout).contains("Write to shared memory") {
            let pid = tmux(&["display-message", "-p", "-t", "demo", "#{pane_pid}"]).ok()?;
            let pid: u32 = String::from_utf8_lossy(&pid.stdout).trim().parse().ok()?;
            peak = status_kib(pid, "VmHWM:");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Quit as a user would, so that the demo closes (and so removes) its
    // segment; then make sure of both.
    let _ = tmux(&["send-keys", "-t", "demo", "C-q"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && std::fs::metadata(format!("/dev/shm/shmbox.{name}")).is_ok()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = tmux(&["kill-server"]);
    // A demo that could not close it leaves a segment nobody holds: looking
    // at it removes it.
    let _ = shmbox::info(&name);
    peak
}
