//! Crash torture: in each round a process that holds the lock most of the
//! time, and is in the middle of a write most of that time, is killed with
//! SIGKILL at a random moment, while a locker and a reader go on.
//!
//! Each round:
//!
//! 1. The parent creates an until-last-close segment, starts the victim, the
//!    locker and the reader, waits until all three have it open, and lets
//!    go of it: from then on only the children hold it.
//! 2. After a random 2–15 ms it kills the victim and tells the others when.
//! 3. The locker reports its first lock acquisition after the kill (the
//!    recovery time), the takeovers it saw and whether it ever waited 10 s
//!    for the lock (a deadlock). The reader reports the records it read:
//!    whole, torn but reported as such, or torn and returned (never).
//! 4. The parent then either lets the two leave, or kills them too. If they
//!    leave, the last one's close removes the segment: its name must be gone
//!    within 2 s. If they are killed, nobody is left to remove it (shmbox
//!    starts no helper process): the name stays until the next shmbox call
//!    looks, and the parent's `shmbox::reclaim()` must remove it. Anything
//!    left after that is a leak.

use std::io;
use std::time::Duration;

use shmbox::{Error, Segment, SegmentOptions};

use crate::Spawn;
use crate::proc::{Inbox, Kid, now_ns};
use crate::record::{self, Rng};

/// What the rounds added up to.
#[derive(Debug, Clone, Default)]
pub struct Torture {
    pub rounds: u64,
    /// Kills that caught the victim holding the lock (a takeover followed).
    pub kills_holding_lock: u64,
    /// Of those, kills in the middle of a write (the data was torn).
    pub kills_mid_write: u64,
    /// Kill to the locker's first acquisition after it, per round, in ns.
    pub recovery_ns: Vec<u64>,
    /// Lock waits that reached 10 s, and rounds whose children stopped
    /// answering.
    pub deadlocks: u64,
    pub reads_whole: u64,
    /// Reads that said "torn" (Error::Inconsistent) instead of returning.
    pub reads_reported_torn: u64,
    /// Torn records handed to a reader as if whole: must stay 0.
    pub torn_returned: u64,
    /// Lock-free reads that gave up after 1 s of a busy writer.
    pub read_timeouts: u64,
    /// Records the locker found corrupt under the lock: must stay 0.
    pub corrupt_under_lock: u64,
    /// Rounds that ended with the survivors killed rather than leaving.
    pub survivors_killed: u64,
    /// Rounds whose last holders all died: the name stayed for the next
    /// shmbox call to reclaim.
    pub left_for_reclaim: u64,
    /// How long each of those reclaims took (the `shmbox::reclaim()` call
    /// that removed the name), in ns.
    pub reclaim_ns: Vec<u64>,
    /// Names still in /dev/shm after every holder had closed it, or after
    /// the reclaim that followed their deaths: must stay 0.
    pub leaked: u64,
}

const READY: Duration = Duration::from_secs(10);
/// A lock wait this long means a deadlock: a dead holder is taken over in
/// milliseconds, and the live ones hold the lock for microseconds.
const DEADLOCK: Duration = Duration::from_secs(10);

pub fn run(
    rounds: u64,
    seed: u64,
    spawn: Spawn<'_>,
    progress: &dyn Fn(u64),
) -> io::Result<Torture> {
    let mut t = Torture::default();
    let mut rng = Rng::new(seed);
    for round in 0..rounds {
        one_round(&mut t, &mut rng, spawn)?;
        t.rounds += 1;
        progress(round + 1);
    }
    Ok(t)
}

fn one_round(t: &mut Torture, rng: &mut Rng, spawn: Spawn<'_>) -> io::Result<()> {
    let name = crate::unique_name("torture");
    let creator = Segment::create(&name, 4096).map_err(io::Error::other)?;
    let mut role = |r: &str| vec![r.to_owned(), name.clone(), rng.next_u64().to_string()];
    let mut victim = Kid::spawn(spawn, &role("torture-victim"))?;
    let mut locker = Kid::spawn(spawn, &role("torture-locker"))?;
    let mut reader = Kid::spawn(spawn, &role("torture-reader"))?;
    for kid in [&victim, &locker, &reader] {
        kid.expect("ready", READY)?;
    }
    drop(creator);

    std::thread::sleep(Duration::from_micros(2_000 + rng.below(13_000)));
    victim.kill();
    let killed_at = now_ns();
    victim.wait(READY)?;
    for kid in [&mut locker, &mut reader] {
        kid.say(&format!("killed {killed_at}"))?;
    }
    // Time for recovery and for some work after it.
    std::thread::sleep(Duration::from_millis(20));
    for kid in [&mut locker, &mut reader] {
        kid.say("stop")?;
    }
    let report = |kid: &Kid| -> io::Result<Vec<(String, u64)>> {
        let line = kid.line(DEADLOCK + READY)?;
        Ok(crate::fields(&line))
    };
    match (report(&locker), report(&reader)) {
        (Ok(l), Ok(r)) => {
            let get = |f: &[(String, u64)], k: &str| {
                f.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v)
            };
            let first = get(&l, "first_after_kill");
            if first >= killed_at {
                t.recovery_ns.push(first - killed_at);
            }
            t.kills_holding_lock += get(&l, "takeovers").min(1);
            t.kills_mid_write += get(&l, "repaired").min(1);
            t.deadlocks += get(&l, "deadlocks");
            t.corrupt_under_lock += get(&l, "corrupt");
            t.reads_whole += get(&r, "whole");
            t.reads_reported_torn += get(&r, "reported_torn");
            t.torn_returned += get(&r, "torn_returned");
            t.read_timeouts += get(&r, "timeouts");
        }
        (l, r) => {
            // A child that stopped answering: counted, and the run goes on.
            t.deadlocks += 1;
            eprintln!("torture: a round hung: {:?} / {:?}", l.err(), r.err());
        }
    }

    // Leave, or crash: the segment must go either way.
    let killed_too = rng.below(2) == 0;
    if killed_too {
        locker.kill();
        reader.kill();
        t.survivors_killed += 1;
    } else {
        locker.close();
        reader.close();
    }
    locker.wait(READY)?;
    reader.wait(READY)?;
    let gone = if killed_too {
        // Nobody closed it: it stays until some shmbox call looks.
        let present = std::path::Path::new(&crate::segment_path(&name)).exists();
        t.left_for_reclaim += u64::from(present);
        let asked = std::time::Instant::now();
        let removed = shmbox::reclaim().map_err(io::Error::other)?;
        if removed.iter().any(|n| n.as_str() == name) {
            t.reclaim_ns.push(asked.elapsed().as_nanos() as u64);
        }
        !std::path::Path::new(&crate::segment_path(&name)).exists()
    } else {
        crate::gone_within(&name, Duration::from_secs(2))
    };
    if !gone {
        t.leaked += 1;
        let _ = std::fs::remove_file(crate::segment_path(&name));
    }
    Ok(())
}

fn open(name: &str) -> io::Result<Segment> {
    SegmentOptions::new()
        .timeout(DEADLOCK)
        .open(name)
        .map_err(io::Error::other)
}

/// Holds the lock, writing records in two halves with a pause between, so
/// that a kill is likely to land mid-write. Runs until killed.
pub fn victim(args: &[String]) -> io::Result<()> {
    let [name, seed] = args else {
        return Err(io::Error::other("torture-victim NAME SEED"));
    };
    let seg = open(name)?;
    let mut rng = Rng::new(seed.parse().map_err(io::Error::other)?);
    println!("ready");
    let me = std::process::id();
    loop {
        let record = record::make(rng.next_u64(), me);
        let mut guard = seg.lock().map_err(io::Error::other)?;
        guard.write(0, &record[..32]).map_err(io::Error::other)?;
        let until = now_ns() + 20_000;
        while now_ns() < until {
            std::hint::spin_loop();
        }
        guard.write(32, &record[32..]).map_err(io::Error::other)?;
        guard.unlock().map_err(io::Error::other)?;
        // Outside the lock a while too, so that the others get their turn
        // and the kill sometimes lands here.
        let until = now_ns() + 10_000;
        while now_ns() < until {
            std::hint::spin_loop();
        }
    }
}

/// Takes the lock again and again, checks the record under it, repairs a
/// torn one, and writes its own; reports when told to stop.
pub fn locker(args: &[String]) -> io::Result<()> {
    let [name, seed] = args else {
        return Err(io::Error::other("torture-locker NAME SEED"));
    };
    let seg = open(name)?;
    let mut rng = Rng::new(seed.parse().map_err(io::Error::other)?);
    let inbox = Inbox::start();
    println!("ready");
    let me = std::process::id();
    let (mut killed_at, mut first_after_kill) = (0u64, 0u64);
    let (mut takeovers, mut repaired, mut deadlocks, mut corrupt, mut ops) = (0u64, 0, 0, 0, 0);
    loop {
        match inbox.poll() {
            Some(Some(line)) if line == "stop" => break,
            Some(Some(line)) => {
                if let Some(t) = line.strip_prefix("killed ") {
                    killed_at = t.parse().map_err(io::Error::other)?;
                }
            }
            Some(None) => return Ok(()),
            None => {}
        }
        match seg.lock() {
            Ok(mut guard) => {
                let at = now_ns();
                if killed_at != 0 && first_after_kill == 0 && at >= killed_at {
                    first_after_kill = at;
                }
                if guard.owner_died().is_some() {
                    takeovers += 1;
                }
                if guard.is_consistent() {
                    let current: [u8; record::LEN] = guard.read_pod(0).map_err(io::Error::other)?;
                    if record::check(&current).is_none() {
                        corrupt += 1;
                    }
                } else {
                    repaired += 1;
                }
                let record = record::make(rng.next_u64(), me);
                guard.write(0, &record).map_err(io::Error::other)?;
                guard.unlock().map_err(io::Error::other)?;
                ops += 1;
            }
            Err(Error::Timeout { .. }) => deadlocks += 1,
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    println!(
        "first_after_kill={first_after_kill} takeovers={takeovers} repaired={repaired} \
         deadlocks={deadlocks} corrupt={corrupt} ops={ops}"
    );
    // Until the parent lets go (end of input) or kills this process.
    while inbox.next().is_some() {}
    Ok(())
}

/// Reads without the lock, and sorts what it gets: whole, reported torn, or
/// torn and returned (a failure of the library).
pub fn reader(args: &[String]) -> io::Result<()> {
    let [name, _seed] = args else {
        return Err(io::Error::other("torture-reader NAME SEED"));
    };
    // A busy writer can keep a lock-free reader out (it never blocks the
    // writer); such a read gives up after this long, and is counted.
    let seg = SegmentOptions::new()
        .timeout(Duration::from_secs(1))
        .open(name)
        .map_err(io::Error::other)?;
    let inbox = Inbox::start();
    println!("ready");
    let (mut whole, mut reported_torn, mut torn_returned, mut timeouts) = (0u64, 0, 0, 0);
    let mut buf = [0u8; record::LEN];
    loop {
        match inbox.poll() {
            Some(Some(line)) if line == "stop" => break,
            Some(None) => return Ok(()),
            _ => {}
        }
        match seg.read_consistent_into(0, &mut buf) {
            Ok(_) => match record::check(&buf) {
                Some(_) => whole += 1,
                None => torn_returned += 1,
            },
            Err(Error::Inconsistent { .. }) => {
                reported_torn += 1;
                // Wait for a repair rather than spin on the same answer.
                let _ = seg.wait_for_change(seg.generation(), Duration::from_millis(5));
            }
            Err(Error::Timeout { .. }) => timeouts += 1,
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    println!(
        "whole={whole} reported_torn={reported_torn} torn_returned={torn_returned} timeouts={timeouts}"
    );
    while inbox.next().is_some() {}
    Ok(())
}
