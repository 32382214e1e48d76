//! Scenario 3: change-notification latency between two processes.
//!
//! A ping-pong: this process stamps the time (CLOCK_MONOTONIC, shared by all
//! processes), publishes, and waits for the reply; the child waits, records
//! "now minus the stamp" as one one-way latency, and replies. The child
//! writes its latencies to a file at the end.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shmbox::{Segment, SegmentOptions};

use crate::Spawn;
use crate::mapping::{SharedMap, futex_wait_for, futex_wake, now_ns, pin_to_cpu, unpin};

/// How long the shmbox spin-then-sleep mode spins before sleeping.
pub const SPIN: Duration = Duration::from_micros(200);

/// A way for one process to tell another "something changed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `Segment::wait_for_change`, sleeping at once.
    Shmbox,
    /// `Segment::wait_for_change`, spinning up to [`SPIN`] first.
    ShmboxSpin,
    /// A bare futex wait/wake pair: the kernel's floor.
    Futex,
    /// A pipe each way.
    Pipe,
    /// A Unix domain stream socket.
    UnixSocket,
    /// Both sides spin on an atomic: the hardware's floor.
    Spin,
    /// iceoryx2 publish-subscribe, both sides busy-polling.
    Iceoryx2,
}

impl Mechanism {
    pub const ALL: [Mechanism; 7] = [
        Mechanism::Spin,
        Mechanism::ShmboxSpin,
        Mechanism::Iceoryx2,
        Mechanism::Futex,
        Mechanism::Shmbox,
        Mechanism::Pipe,
        Mechanism::UnixSocket,
    ];

    /// Whether it sleeps (and so makes sense with both processes on one CPU).
    pub fn sleeps(self) -> bool {
        !matches!(self, Mechanism::Spin | Mechanism::Iceoryx2)
    }

    pub fn label(self) -> &'static str {
        match self {
            Mechanism::Shmbox => "shmbox wait_for_change (sleep)",
            Mechanism::ShmboxSpin => "shmbox wait_for_change (spin, then sleep)",
            Mechanism::Futex => "raw futex ping-pong (kernel floor)",
            Mechanism::Pipe => "pipe",
            Mechanism::UnixSocket => "Unix domain socket",
            Mechanism::Spin => "pure spinning on an atomic (hardware floor)",
            Mechanism::Iceoryx2 => "iceoryx2 publish-subscribe, busy polling",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Mechanism::Shmbox => "shmbox",
            Mechanism::ShmboxSpin => "shmbox-spin",
            Mechanism::Futex => "futex",
            Mechanism::Pipe => "pipe",
            Mechanism::UnixSocket => "uds",
            Mechanism::Spin => "spin",
            Mechanism::Iceoryx2 => "iceoryx2",
        }
    }

    fn from_id(id: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.id() == id)
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps a waiting loop from waiting for ever: a peer that died or hangs
/// fails the run after [`TIMEOUT`]. It reads the clock only every 1024
/// turns, and not at all when the answer comes first, so it costs the
/// measured loops nothing.
#[derive(Default)]
struct Patience {
    turns: u32,
    since: Option<Instant>,
}

impl Patience {
    fn check(&mut self) -> io::Result<()> {
        self.turns = self.turns.wrapping_add(1);
        if self.turns % 1024 == 0 {
            let since = *self.since.get_or_insert_with(Instant::now);
            if since.elapsed() > TIMEOUT {
                return Err(other(format!(
                    "the other process did not answer within {TIMEOUT:?}"
                )));
            }
        }
        Ok(())
    }

    /// For loops that sleep: every turn is a wait of up to a second.
    fn check_each(&mut self) -> io::Result<()> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > TIMEOUT {
            return Err(other(format!(
                "the other process did not answer within {TIMEOUT:?}"
            )));
        }
        Ok(())
    }
}

/// How long one futex wait of the raw ping-pong lasts before it checks
/// that the other side is still there.
const FUTEX_SLICE: Duration = Duration::from_secs(1);

/// Where the two processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// This process on CPU 0, the child on CPU 1: every wake-up crosses CPUs.
    TwoCpus,
    /// Both on CPU 0.
    OneCpu,
}

impl Placement {
    fn cpus(self) -> (usize, usize) {
        match self {
            Placement::TwoCpus => (0, 1),
            Placement::OneCpu => (0, 0),
        }
    }
}

/// Runs `rounds` round trips with a child process; returns the one-way
/// latencies (ns) the child saw.
pub fn pingpong(
    mechanism: Mechanism,
    rounds: u64,
    placement: Placement,
    spawn: Spawn<'_>,
) -> io::Result<Vec<u64>> {
    let (my_cpu, child_cpu) = placement.cpus();
    let results = std::env::temp_dir().join(format!("{}.lat", crate::unique_name("notify")));
    let channel = crate::unique_name(mechanism.id());
    // What iceoryx2 leaves behind is named after the channel.
    let iox2_channel = channel.clone();
    let mut args: Vec<String> = vec![
        "pong".into(),
        mechanism.id().into(),
        String::new(), // the channel, filled in below
        rounds.to_string(),
        child_cpu.to_string(),
        results.display().to_string(),
    ];
    let outcome = match mechanism {
        Mechanism::Shmbox | Mechanism::ShmboxSpin => {
            let spin = if mechanism == Mechanism::ShmboxSpin {
                SPIN
            } else {
                Duration::ZERO
            };
            // One segment each way, as a publisher and a subscriber would
            // have (and as the iceoryx2 scenario has): each segment has a
            // single writer, so its lines are only read by the other side.
            let options = SegmentOptions::new().spin_before_sleep(spin);
            let ping = options.create(&channel, 64).map_err(other)?;
            let pong = options.create(pong_name(&channel), 64).map_err(other)?;
            args[2] = channel;
            let mut child = start(spawn, &args, false)?;
            run_pinned(my_cpu, || {
                let mut answered = pong.generation();
                for _ in 0..rounds {
                    // The stamp is taken with the lock held, just before the
                    // commit, so that taking the lock is not timed.
                    let mut guard = ping.lock().map_err(other)?;
                    guard.write(0, &now_ns().to_le_bytes()).map_err(other)?;
                    guard.unlock().map_err(other)?;
                    answered = pong.wait_for_change(answered, TIMEOUT).map_err(other)?;
                }
                Ok(())
            })
            .and_then(|()| finish(&mut child))
            .or_else(|e| abandon(&mut child, e))
        }
        Mechanism::Futex | Mechanism::Spin => {
            let map = SharedMap::create("pingpong", 4096)?;
            args[2] = map.path().display().to_string();
            let mut child = start(spawn, &args, false)?;
            let (ping, pong, stamp) = (map.u32_at(0), map.u32_at(64), map.u64_at(128));
            let spin = mechanism == Mechanism::Spin;
            run_pinned(my_cpu, || {
                for round in 0..rounds as u32 {
                    stamp.store(now_ns(), Ordering::Relaxed);
                    ping.store(round + 1, Ordering::Release);
                    if !spin {
                        futex_wake(ping, 1);
                    }
                    let mut patience = Patience::default();
                    loop {
                        let seen = pong.load(Ordering::Acquire);
                        if seen == round + 1 {
                            break;
                        }
                        if spin {
                            std::hint::spin_loop();
                            patience.check()?;
                        } else {
                            futex_wait_for(pong, seen, FUTEX_SLICE);
                            patience.check_each()?;
                        }
                    }
                }
                Ok(())
            })
            .and_then(|()| finish(&mut child))
            .or_else(|e| abandon(&mut child, e))
        }
        Mechanism::Pipe => {
            let mut child = start(spawn, &args, true)?;
            let mut to_child = child.stdin.take().unwrap();
            let mut from_child = child.stdout.take().unwrap();
            run_pinned(my_cpu, || {
                let mut reply = [0u8; 1];
                for _ in 0..rounds {
                    to_child.write_all(&now_ns().to_le_bytes())?;
                    from_child.read_exact(&mut reply)?;
                }
                Ok(())
            })
            .and_then(|()| {
                drop(to_child); // the child's cue to leave
                finish(&mut child)
            })
            .or_else(|e| abandon(&mut child, e))
        }
        Mechanism::UnixSocket => {
            let path = std::env::temp_dir().join(format!("{channel}.sock"));
            let listener = UnixListener::bind(&path)?;
            args[2] = path.display().to_string();
            let mut child = start(spawn, &args, false)?;
            let (mut stream, _) = listener.accept()?;
            let _ = std::fs::remove_file(&path);
            run_pinned(my_cpu, || {
                let mut reply = [0u8; 1];
                for _ in 0..rounds {
                    stream.write_all(&now_ns().to_le_bytes())?;
                    stream.read_exact(&mut reply)?;
                }
                Ok(())
            })
            .and_then(|()| finish(&mut child))
            .or_else(|e| abandon(&mut child, e))
        }
        Mechanism::Iceoryx2 => {
            use iceoryx2::prelude::*;
            // It warns, on stderr, that it runs without a config file.
            set_log_level(LogLevel::Error);
            let config = iox2_config(&channel)?;
            let node = NodeBuilder::new()
                .config(&config)
                .create::<ipc::Service>()
                .map_err(other)?;
            let ping_name = format!("shmbox-bench/{channel}/ping");
            let pong_name = format!("shmbox-bench/{channel}/pong");
            let ping = node
                .service_builder(&ping_name.as_str().try_into().map_err(other)?)
                .publish_subscribe::<u64>()
                .open_or_create()
                .map_err(other)?;
            let pong = node
                .service_builder(&pong_name.as_str().try_into().map_err(other)?)
                .publish_subscribe::<u64>()
                .open_or_create()
                .map_err(other)?;
            // Each publisher before its subscriber: a subscriber that was
            // there first can miss a new publisher's samples (iceoryx2 issues
            // #923 and #1697), so the pong subscriber waits for the child.
            let publisher = ping.publisher_builder().create().map_err(other)?;
            args[2] = channel;
            let mut child = start(spawn, &args, false)?;
            let subscriber = pong.subscriber_builder().create().map_err(other)?;
            run_pinned(my_cpu, || {
                for _ in 0..rounds {
                    publisher
                        .loan_uninit()
                        .map_err(other)?
                        .write_payload(now_ns())
                        .send()
                        .map_err(other)?;
                    let mut patience = Patience::default();
                    while subscriber.receive().map_err(other)?.is_none() {
                        std::hint::spin_loop();
                        patience.check()?;
                    }
                }
                Ok(())
            })
            .and_then(|()| finish(&mut child))
            .or_else(|e| abandon(&mut child, e))
        }
    };
    let read = outcome.and_then(|()| read_latencies(&results));
    let _ = std::fs::remove_file(&results);
    if mechanism == Mechanism::Iceoryx2 {
        iox2_cleanup(&iox2_channel);
    }
    read
}

/// iceoryx2's settings for `channel`: its files get a prefix of the
/// channel's own, under a directory of its own, so that the run can remove
/// them all afterwards. (With the defaults it leaves
/// `/dev/shm/iox2_…global_mgmt`, writable by every user, behind.)
fn iox2_config(channel: &str) -> io::Result<iceoryx2::config::Config> {
    use iceoryx2::prelude::{FileName, Path};
    let mut config = iceoryx2::config::Config::default();
    config.global.prefix = FileName::try_from(format!("{channel}_").as_str()).map_err(other)?;
    let root = format!("{}/", iox2_root(channel).display());
    config
        .global
        .set_root_path(&Path::try_from(root.as_str()).map_err(other)?);
    Ok(config)
}

fn iox2_root(channel: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{channel}-iox2"))
}

/// Removes what iceoryx2 made for `channel`: its shared memory and its
/// directory.
fn iox2_cleanup(channel: &str) {
    let prefix = format!("{channel}_");
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(iox2_root(channel));
}

/// Starts the child and waits until it says it is ready.
fn start(spawn: Spawn<'_>, args: &[String], pipes: bool) -> io::Result<Child> {
    let mut command = spawn(args);
    // Standard input always: its end tells the child that the parent is done.
    command.stderr(Stdio::piped()).stdin(Stdio::piped());
    if pipes {
        command.stdout(Stdio::piped());
    }
    let mut child = command.spawn()?;
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line)? == 0 {
            let _ = child.kill();
            return Err(other(format!(
                "the benchmark's child process ended, saying {said:?}"
            )));
        }
        if line.trim() == "ready" {
            break;
        }
        said.push_str(&line);
    }
    // Keep reading, so that a chatty child never blocks on a full pipe.
    std::thread::spawn(move || io::copy(&mut stderr, &mut io::sink()));
    Ok(child)
}

fn finish(child: &mut Child) -> io::Result<()> {
    drop(child.stdin.take());
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(other(format!("the child process failed: {status}")))
    }
}

/// After a failure: the child is of no more use, and must not linger.
fn abandon(child: &mut Child, error: io::Error) -> io::Result<()> {
    let _ = child.kill();
    let _ = child.wait();
    Err(error)
}

fn run_pinned(cpu: usize, body: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    pin_to_cpu(cpu)?;
    let result = body();
    unpin()?;
    result
}

fn read_latencies(path: &Path) -> io::Result<Vec<u64>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

/// The segment that carries the answers back.
fn pong_name(channel: &str) -> String {
    format!("{channel}-pong")
}

/// The child's side: `pong MECHANISM CHANNEL ROUNDS CPU RESULTS`.
pub fn pong(args: &[String]) -> io::Result<()> {
    let [mechanism, channel, rounds, cpu, results] = args else {
        return Err(other(format!("pong takes 5 arguments, not {args:?}")));
    };
    let mechanism =
        Mechanism::from_id(mechanism).ok_or_else(|| other(format!("no mechanism {mechanism}")))?;
    let rounds: u64 = rounds.parse().map_err(other)?;
    pin_to_cpu(cpu.parse().map_err(other)?)?;
    let mut latencies = Vec::with_capacity(rounds as usize);
    let ready = || {
        eprintln!("ready");
    };
    match mechanism {
        Mechanism::Shmbox | Mechanism::ShmboxSpin => {
            let spin = if mechanism == Mechanism::ShmboxSpin {
                SPIN
            } else {
                Duration::ZERO
            };
            let options = SegmentOptions::new().spin_before_sleep(spin);
            let ping: Segment = options.open(channel).map_err(other)?;
            let pong: Segment = options.open(pong_name(channel)).map_err(other)?;
            let mut seen = ping.generation();
            let mut stamp = [0u8; 8];
            ready();
            for _ in 0..rounds {
                seen = ping.wait_for_change(seen, TIMEOUT).map_err(other)?;
                let now = now_ns();
                ping.read_consistent_into(0, &mut stamp).map_err(other)?;
                latencies.push(now.saturating_sub(u64::from_le_bytes(stamp)));
                pong.write(0, &stamp).map_err(other)?;
            }
        }
        Mechanism::Futex | Mechanism::Spin => {
            let map = SharedMap::open(&PathBuf::from(channel))?;
            let (ping, pong, stamp) = (map.u32_at(0), map.u32_at(64), map.u64_at(128));
            let spin = mechanism == Mechanism::Spin;
            ready();
            for round in 0..rounds as u32 {
                let mut patience = Patience::default();
                loop {
                    let seen = ping.load(Ordering::Acquire);
                    if seen == round + 1 {
                        break;
                    }
                    if spin {
                        std::hint::spin_loop();
                        patience.check()?;
                    } else {
                        futex_wait_for(ping, seen, FUTEX_SLICE);
                        patience.check_each()?;
                    }
                }
                let now = now_ns();
                latencies.push(now.saturating_sub(stamp.load(Ordering::Relaxed)));
                pong.store(round + 1, Ordering::Release);
                if !spin {
                    futex_wake(pong, 1);
                }
            }
        }
        Mechanism::Pipe => {
            let mut input = io::stdin().lock();
            let mut output = io::stdout().lock();
            let mut stamp = [0u8; 8];
            ready();
            for _ in 0..rounds {
                input.read_exact(&mut stamp)?;
                let now = now_ns();
                latencies.push(now.saturating_sub(u64::from_le_bytes(stamp)));
                output.write_all(&[1])?;
                output.flush()?;
            }
        }
        Mechanism::UnixSocket => {
            let mut stream = UnixStream::connect(channel)?;
            let mut stamp = [0u8; 8];
            ready();
            for _ in 0..rounds {
                stream.read_exact(&mut stamp)?;
                let now = now_ns();
                latencies.push(now.saturating_sub(u64::from_le_bytes(stamp)));
                stream.write_all(&[1])?;
            }
        }
        Mechanism::Iceoryx2 => {
            use iceoryx2::prelude::*;
            // It warns, on stderr, that it runs without a config file.
            set_log_level(LogLevel::Error);
            let config = iox2_config(channel)?;
            let node = NodeBuilder::new()
                .config(&config)
                .create::<ipc::Service>()
                .map_err(other)?;
            let ping_name = format!("shmbox-bench/{channel}/ping");
            let pong_name = format!("shmbox-bench/{channel}/pong");
            let ping = node
                .service_builder(&ping_name.as_str().try_into().map_err(other)?)
                .publish_subscribe::<u64>()
                .open_or_create()
                .map_err(other)?;
            let pong = node
                .service_builder(&pong_name.as_str().try_into().map_err(other)?)
                .publish_subscribe::<u64>()
                .open_or_create()
                .map_err(other)?;
            let subscriber = ping.subscriber_builder().create().map_err(other)?;
            let publisher = pong.publisher_builder().create().map_err(other)?;
            ready();
            for _ in 0..rounds {
                let mut patience = Patience::default();
                let stamp = loop {
                    if let Some(sample) = subscriber.receive().map_err(other)? {
                        break *sample;
                    }
                    std::hint::spin_loop();
                    patience.check()?;
                };
                let now = now_ns();
                latencies.push(now.saturating_sub(stamp));
                publisher
                    .loan_uninit()
                    .map_err(other)?
                    .write_payload(stamp)
                    .send()
                    .map_err(other)?;
            }
        }
    }
    let bytes: Vec<u8> = latencies.iter().flat_map(|l| l.to_le_bytes()).collect();
    std::fs::write(results, bytes)?;
    // Stay until the parent is done: a process that leaves takes its side
    // of some channels with it (an iceoryx2 publisher's last sample, not yet
    // received). The parent closes our standard input when it has finished.
    io::copy(&mut io::stdin().lock(), &mut io::sink())?;
    Ok(())
}
