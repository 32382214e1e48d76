//! Helpers for multi-process tests: unique names, helper processes, clean-up
//! and a watchdog.
//!
//! A helper process is this test binary run again with `SHMBOX_TEST_ROLE`
//! set; its `main` dispatches to the role before the test harness starts.
#![allow(dead_code)] // each test binary uses a different part
#![allow(unsafe_code)] // signals and prctl for helper processes
#![allow(clippy::disallowed_types)] // the ban on std atomics is for the library's loom-checked code

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The variable that turns this binary into a helper.
pub const ROLE_ENV: &str = "SHMBOX_TEST_ROLE";

/// How long a helper lives at most, in case its parent hangs.
const HELPER_LIFETIME_SECS: u32 = 120;

/// A name no other test, run or process uses.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "test-{tag}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where the segment's file lives, per docs/FORMAT.md.
pub fn segment_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/shmbox.{name}"))
}

/// Removes the segment's file when dropped, whatever happened.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(segment_path(&self.0));
    }
}

/// Pids of running helpers, killed by the watchdog.
static HELPERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A helper process with its standard output as a stream of lines.
pub struct Helper {
    pub child: Child,
    lines: Receiver<String>,
}

impl Helper {
    /// Starts this binary as helper `role` with `args`.
    pub fn spawn(role: &str, args: &[&str]) -> Helper {
        Helper::spawn_with(role, args, |_| {})
    }

    /// As `spawn`, after `adjust` changes the command (to set a uid, say).
    pub fn spawn_with(role: &str, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Helper {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env(ROLE_ENV, role)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        adjust(&mut command);
        let mut child = command.spawn().expect("start helper process");
        HELPERS.lock().unwrap().push(child.id());
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Helper { child, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the helper prints; panics after `timeout`.
    pub fn line(&self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("helper {} printed nothing for {timeout:?}", self.pid())
            }
            Err(RecvTimeoutError::Disconnected) => panic!("helper {} exited early", self.pid()),
        }
    }

    /// Waits for a line equal to `expected`.
    pub fn expect(&self, expected: &str) {
        let line = self.line(Duration::from_secs(20));
        assert_eq!(line, expected, "helper {} said something else", self.pid());
    }

    /// SIGKILL, then wait until it is gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill helper");
        self.child.wait().expect("reap helper");
    }

    /// Waits for a successful exit, within `timeout`.
    pub fn finish(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "helper {} failed: {status}", self.pid());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "helper {} still running after {timeout:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the whole run, killing every helper, if the guarded test runs past
/// `limit`: a deadlock must fail CI, not hang it.
pub struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    pub fn new(test: &str, limit: Duration) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let test = test.to_owned();
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("watchdog: test {test} ran past {limit:?}; killing helpers and failing");
            #[cfg(unix)]
            for pid in HELPERS.lock().unwrap().iter() {
                // SAFETY: kill only sends a signal.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
            // Elsewhere helpers end themselves (see `helper_setup`).
            std::process::exit(101);
        });
        Watchdog(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Prepares a helper process: it dies with its parent, and on its own after
/// a while, so no helper outlives a failed run.
pub fn helper_setup() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl and alarm take plain integers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::alarm(HELPER_LIFETIME_SECS);
    }
    #[cfg(not(target_os = "linux"))]
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(HELPER_LIFETIME_SECS.into()));
        std::process::exit(102);
    });
}

/// Waits until `cond` holds, polling, or panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < timeout, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    started.elapsed()
}

/// Pids of processes named `comm` that have the file at `path` open. Files
/// are compared by inode: a segment's descriptor may show another path.
#[cfg(unix)]
pub fn processes_with_open(comm: &str, path: &std::path::Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    let Ok(target) = std::fs::metadata(path) else {
        return found;
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if name.trim() != comm {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let same = |fd: std::fs::DirEntry| {
            std::fs::metadata(fd.path())
                .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        };
        if fds.flatten().any(same) {
            found.push(pid);
        }
    }
    found
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// The tests as libtest-mimic trials, each under a [`Watchdog`] of
/// `limit`, a panic failing it with the panic's message.
pub fn trials(tests: &[(&'static str, fn())], limit: Duration) -> Vec<libtest_mimic::Trial> {
    tests
        .iter()
        .map(|&(name, test)| {
            libtest_mimic::Trial::test(name, move || {
                let _watchdog = Watchdog::new(name, limit);
                std::panic::catch_unwind(test).map_err(|e| {
                    libtest_mimic::Failed::from(
                        e.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default(),
                    )
                })
            })
        })
        .collect()
}
