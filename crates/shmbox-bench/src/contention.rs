//! Scenario 4: 2 and 4 processes, each doing lock + write 64 B + unlock for
//! a fixed time. Total throughput, the share of hand-offs (acquisitions
//! that follow another process's), and the worst single wait.
//!
//! Two loops: [`Loop::Timed`] reads the clock before and after each lock
//! (for the worst wait), [`Loop::Throughput`] reads no clock but once per
//! 1024 operations. The clock reads change what is measured: a process
//! holds the lock a little longer, and the others queue more.

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use shmbox::Segment;

use crate::Spawn;
use crate::mapping::{SharedMap, now_ns};
use crate::peers::{FutexLock, RobustMutex};

/// The locks compared under contention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Futex,
    Shmbox,
    Pthread,
}

impl LockKind {
    pub const ALL: [LockKind; 3] = [LockKind::Futex, LockKind::Shmbox, LockKind::Pthread];

    pub fn label(self) -> &'static str {
        match self {
            LockKind::Futex => "minimal futex lock (floor)",
            LockKind::Shmbox => "shmbox",
            LockKind::Pthread => "glibc robust pthread mutex",
        }
    }

    fn id(self) -> &'static str {
        match self {
            LockKind::Futex => "futex",
            LockKind::Shmbox => "shmbox",
            LockKind::Pthread => "pthread",
        }
    }
}

/// How the contending processes loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    /// The clock read before and after each lock: the worst wait is known.
    Timed,
    /// No clock read but once per 1024 operations: throughput only.
    Throughput,
}

impl Loop {
    pub const ALL: [Loop; 2] = [Loop::Timed, Loop::Throughput];

    pub fn label(self) -> &'static str {
        match self {
            Loop::Timed => "clock read around each lock",
            Loop::Throughput => "no clock reads",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Loop::Timed => "timed",
            Loop::Throughput => "throughput",
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Contention {
    pub lock: LockKind,
    pub looping: Loop,
    pub processes: usize,
    pub seconds: f64,
    /// Acquisitions per process.
    pub ops: Vec<u64>,
    /// Acquisitions that followed another process's.
    pub handoffs: u64,
    /// The longest any process waited for the lock, in ns (0 without
    /// clock reads).
    pub worst_wait_ns: u64,
}

impl Contention {
    pub fn total(&self) -> u64 {
        self.ops.iter().sum()
    }

    pub fn per_second(&self) -> f64 {
        self.total() as f64 / self.seconds
    }

    pub fn handoff_share(&self) -> f64 {
        self.handoffs as f64 / self.total().max(1) as f64
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Runs `processes` children contending for `duration`.
pub fn contend(
    lock: LockKind,
    looping: Loop,
    processes: usize,
    duration: Duration,
    spawn: Spawn<'_>,
) -> io::Result<Contention> {
    // Keep what the children share alive while they run.
    let (channel, _segment, _map) = match lock {
        LockKind::Shmbox => {
            let name = crate::unique_name("contend");
            let seg = Segment::create(&name, 4096).map_err(other)?;
            (name, Some(seg), None)
        }
        LockKind::Futex => {
            let map = SharedMap::create("contend-futex", 4096)?;
            (map.path().display().to_string(), None, Some(map))
        }
        LockKind::Pthread => {
            let map = SharedMap::create("contend-pthread", 4096)?;
            RobustMutex::init(&map)?;
            (map.path().display().to_string(), None, Some(map))
        }
    };
    // Everyone starts at the same moment, once all are running.
    let start = now_ns() + 300_000_000 + processes as u64 * 50_000_000;
    let mut children: Vec<Child> = (0..processes)
        .map(|index| {
            let args: Vec<String> = vec![
                "contend".into(),
                lock.id().into(),
                looping.id().into(),
                channel.clone(),
                index.to_string(),
                start.to_string(),
                duration.as_nanos().to_string(),
            ];
            spawn(&args).stdout(Stdio::piped()).spawn()
        })
        .collect::<io::Result<_>>()?;
    let outputs: Vec<_> = children
        .iter_mut()
        .map(|child| child.stdout.take().unwrap())
        .collect();

    // A watchdog: children that are still running well after their time is
    // up are killed, so that a deadlock fails the run instead of hanging it.
    // None is waited for before the watchdog is done with them.
    let limit = Duration::from_nanos(start.saturating_sub(now_ns())) + duration + WATCHDOG_SLACK;
    let children = Arc::new(Mutex::new(children));
    let (finished, finished_rx) = mpsc::channel::<()>();
    let watchdog = {
        let children = Arc::clone(&children);
        std::thread::spawn(move || {
            let fired = matches!(
                finished_rx.recv_timeout(limit),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            if fired {
                for child in children.lock().unwrap().iter_mut() {
                    let _ = child.kill();
                }
            }
            fired
        })
    };
    let lines: Vec<String> = outputs
        .into_iter()
        .map(|output| {
            let mut line = String::new();
            // A child that died says nothing; its status tells why, below.
            let _ = BufReader::new(output).read_line(&mut line);
            line
        })
        .collect();
    let _ = finished.send(());
    let fired = watchdog.join().unwrap_or(true);
    let statuses = children
        .lock()
        .unwrap()
        .iter_mut()
        .map(Child::wait)
        .collect::<io::Result<Vec<_>>>()?;
    if fired {
        return Err(other(format!(
            "{} contending processes of {} were still running {limit:?} after they were started; \
             the watchdog killed them",
            processes,
            lock.label()
        )));
    }

    let mut result = Contention {
        lock,
        looping,
        processes,
        seconds: duration.as_secs_f64(),
        ops: Vec::new(),
        handoffs: 0,
        worst_wait_ns: 0,
    };
    for (line, status) in lines.iter().zip(statuses) {
        let fields: Vec<u64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let [ops, handoffs, worst] = fields[..] else {
            return Err(other(format!(
                "a contending child said {line:?} and ended with {status}"
            )));
        };
        result.ops.push(ops);
        result.handoffs += handoffs;
        result.worst_wait_ns = result.worst_wait_ns.max(worst);
    }
    Ok(result)
}

/// How long after its end a contention run may go on before the watchdog
/// kills it.
const WATCHDOG_SLACK: Duration = Duration::from_secs(30);

/// The child's side: `contend LOCK LOOP CHANNEL INDEX START_NS DURATION_NS`;
/// prints `OPS HANDOFFS WORST_WAIT_NS`.
pub fn child(args: &[String]) -> io::Result<()> {
    let [lock, looping, channel, index, start, duration] = args else {
        return Err(other(format!("contend takes 6 arguments, not {args:?}")));
    };
    let timed = looping == "timed";
    let me: u32 = index.parse::<u32>().map_err(other)? + 1;
    let start: u64 = start.parse().map_err(other)?;
    let end = start + duration.parse::<u64>().map_err(other)?;
    let mut record = [0u8; 64];
    record[..4].copy_from_slice(&me.to_le_bytes());

    let mut tally = Tally::default();
    let wait_for_start = || {
        let now = now_ns();
        if start > now {
            std::thread::sleep(Duration::from_nanos(start - now));
        }
    };
    match lock.as_str() {
        "shmbox" => {
            let seg = Segment::open(channel).map_err(other)?;
            wait_for_start();
            if timed {
                loop {
                    let asked = now_ns();
                    let mut guard = seg.lock().map_err(other)?;
                    let got = now_ns();
                    let previous: u32 = guard.read_pod(0).map_err(other)?;
                    guard.write(0, &record).map_err(other)?;
                    drop(guard);
                    tally.add(me, previous, asked, got);
                    if got >= end {
                        break;
                    }
                }
            } else {
                loop {
                    let mut guard = seg.lock().map_err(other)?;
                    let previous: u32 = guard.read_pod(0).map_err(other)?;
                    guard.write(0, &record).map_err(other)?;
                    drop(guard);
                    tally.add(me, previous, 0, 0);
                    if tally.ops % 1024 == 0 && now_ns() >= end {
                        break;
                    }
                }
            }
        }
        "futex" | "pthread" => {
            let map = SharedMap::open(&PathBuf::from(channel))?;
            let futex = FutexLock(map.u32_at(0));
            let mutex = RobustMutex::attach(&map);
            let pthread = lock == "pthread";
            let data = map.u32_at(RobustMutex::SIZE);
            wait_for_start();
            loop {
                let asked = if timed { now_ns() } else { 0 };
                if pthread {
                    mutex.lock()
                } else {
                    futex.lock()
                }
                let got = if timed { now_ns() } else { 0 };
                let previous = data.load(std::sync::atomic::Ordering::Relaxed);
                crate::peers::write_64(&map, RobustMutex::SIZE, &record);
                if pthread {
                    mutex.unlock()
                } else {
                    futex.unlock()
                }
                tally.add(me, previous, asked, got);
                if if timed {
                    got >= end
                } else {
                    tally.ops % 1024 == 0 && now_ns() >= end
                } {
                    break;
                }
            }
        }
        other_lock => return Err(other(format!("no lock {other_lock}"))),
    }
    println!("{} {} {}", tally.ops, tally.handoffs, tally.worst);
    Ok(())
}

/// A child's counts.
#[derive(Default)]
struct Tally {
    ops: u64,
    handoffs: u64,
    worst: u64,
}

impl Tally {
    /// One acquisition by `me`, which found `previous` as the last holder,
    /// asked at `asked` and got the lock at `got` (ns; both 0 untimed).
    #[inline]
    fn add(&mut self, me: u32, previous: u32, asked: u64, got: u64) {
        self.worst = self.worst.max(got - asked);
        if previous != 0 && previous != me {
            self.handoffs += 1;
        }
        self.ops += 1;
    }
}
