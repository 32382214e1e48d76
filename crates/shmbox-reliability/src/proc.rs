//! Child processes of the suite: spawned from this same executable, talked
//! to through lines on their standard input and output, and never left
//! running: a child that does not answer in time is killed, and dropping a
//! [`Kid`] kills it too.
#![allow(unsafe_code)] // clock_gettime, for one clock across processes

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Spawn;

/// A running child.
pub struct Kid {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    role: String,
}

impl Kid {
    /// Starts `args` (the first is the role) through `spawn`.
    pub fn spawn(spawn: Spawn<'_>, args: &[String]) -> io::Result<Kid> {
        let mut child = spawn(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                if s.len() < 4096 {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Kid {
            child,
            stdin,
            lines,
            stderr,
            role: args.first().cloned().unwrap_or_default(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the child printed, waiting up to `timeout`.
    pub fn line(&self, timeout: Duration) -> io::Result<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} said nothing for {timeout:?}{}", self.role, self.said()),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(io::Error::other(format!(
                "{} ended without saying more{}",
                self.role,
                self.said()
            ))),
        }
    }

    /// Lines already printed, without waiting.
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Waits for the line `expected`, skipping others (which are returned).
    pub fn expect(&self, expected: &str, timeout: Duration) -> io::Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut others = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.line(left)?;
            if line == expected {
                return Ok(others);
            }
            others.push(line);
        }
    }

    /// Sends one line to the child's standard input.
    pub fn say(&mut self, line: &str) -> io::Result<()> {
        match &mut self.stdin {
            Some(stdin) => writeln!(stdin, "{line}"),
            None => Err(io::Error::other("standard input already closed")),
        }
    }

    /// Closes the child's standard input: its cue to leave.
    pub fn close(&mut self) {
        self.stdin = None;
    }

    /// SIGKILL: the child dies wherever it is.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits for the child to end, killing it after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                let status = self.child.wait()?;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} was still running after {timeout:?}; killed ({status}){}",
                        self.role,
                        self.said()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn said(&self) -> String {
        let s = self.stderr.lock().unwrap();
        if s.is_empty() {
            String::new()
        } else {
            format!("; its stderr: {}", s.trim())
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Reads lines from standard input on a thread, so that a busy child can
/// look for them without blocking.
pub struct Inbox(Receiver<Option<String>>);

impl Inbox {
    pub fn start() -> Inbox {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None); // end of input
        });
        Inbox(rx)
    }

    /// A line if one came: `Some(None)` at the end of input.
    pub fn poll(&self) -> Option<Option<String>> {
        self.0.try_recv().ok()
    }

    /// Blocks for the next line; `None` at the end of input.
    pub fn next(&self) -> Option<String> {
        self.0.recv().ok().flatten()
    }
}
