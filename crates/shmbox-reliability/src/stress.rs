//! Stress: several processes doing random reads, writes, locked updates and
//! waits on checksummed records for a fixed time.
//!
//! The segment holds a counter record and 16 data records. Each worker, in a
//! random mix: reads a record without the lock and checks it; reads one under
//! the lock and checks it; writes a record; adds one to the counter under the
//! lock (read, check, increment, write back); waits for a change for at most
//! a millisecond. At the end the counter must equal the increments the
//! workers made (no update lost), no check may have failed (no torn read),
//! and every worker must have done work (every process progressed).

use std::io;
use std::time::{Duration, Instant};

use shmbox::{Error, Segment, SegmentOptions};

use crate::Spawn;
use crate::proc::Kid;
use crate::record::{self, Rng};

const RECORDS: u64 = 16;

#[derive(Debug, Clone, Default)]
pub struct Stress {
    pub processes: usize,
    pub seconds: f64,
    /// Operations per worker.
    pub ops: Vec<u64>,
    pub increments: u64,
    pub counter: u64,
    pub torn_reads: u64,
    pub waits: u64,
    pub changes_seen: u64,
    /// Lock-free reads that gave up because writers kept the data busy.
    pub read_timeouts: u64,
}

impl Stress {
    pub fn lost_updates(&self) -> u64 {
        self.increments.abs_diff(self.counter)
    }

    pub fn total_ops(&self) -> u64 {
        self.ops.iter().sum()
    }
}

pub fn run(
    processes: usize,
    duration: Duration,
    seed: u64,
    spawn: Spawn<'_>,
) -> io::Result<Stress> {
    let name = crate::unique_name("stress");
    let seg =
        Segment::create(&name, (1 + RECORDS as usize) * record::LEN).map_err(io::Error::other)?;
    let mut rng = Rng::new(seed);
    let kids: Vec<Kid> = (0..processes)
        .map(|i| {
            Kid::spawn(
                spawn,
                &[
                    "stress-worker".into(),
                    name.clone(),
                    i.to_string(),
                    rng.next_u64().to_string(),
                    duration.as_millis().to_string(),
                ],
            )
        })
        .collect::<io::Result<_>>()?;
    let mut s = Stress {
        processes,
        seconds: duration.as_secs_f64(),
        ..Stress::default()
    };
    for kid in &kids {
        kid.expect("ready", Duration::from_secs(10))?;
    }
    for mut kid in kids {
        let line = kid.line(duration + Duration::from_secs(30))?;
        let f = crate::fields(&line);
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
        s.ops.push(get("ops"));
        s.increments += get("increments");
        s.torn_reads += get("torn");
        s.waits += get("waits");
        s.changes_seen += get("changes");
        s.read_timeouts += get("read_timeouts");
        kid.close();
        kid.wait(Duration::from_secs(10))?;
    }
    let counter = seg.read(0, record::LEN).map_err(io::Error::other)?;
    s.counter =
        record::check(&counter).ok_or_else(|| io::Error::other("the counter record is torn"))?;
    Ok(s)
}

/// `stress-worker NAME INDEX SEED MILLIS`: works for that long, then prints
/// its counts.
pub fn worker(args: &[String]) -> io::Result<()> {
    let [name, index, seed, millis] = args else {
        return Err(io::Error::other("stress-worker NAME INDEX SEED MILLIS"));
    };
    let seg = SegmentOptions::new()
        .timeout(Duration::from_secs(10))
        .open(name)
        .map_err(io::Error::other)?;
    let me: u32 = index.parse().map_err(io::Error::other)?;
    let mut rng = Rng::new(seed.parse().map_err(io::Error::other)?);
    let duration = Duration::from_millis(millis.parse().map_err(io::Error::other)?);
    println!("ready");
    let started = Instant::now();
    let (mut ops, mut increments, mut torn, mut waits, mut changes, mut read_timeouts) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut buf = [0u8; record::LEN];
    let slot = |rng: &mut Rng| (1 + rng.below(RECORDS) as usize) * record::LEN;
    while started.elapsed() < duration {
        match rng.below(10) {
            0..=2 => match seg.read_consistent_into(slot(&mut rng), &mut buf) {
                Ok(_) => torn += u64::from(record::check(&buf).is_none()),
                Err(Error::Timeout { .. }) => read_timeouts += 1,
                Err(e) => return Err(io::Error::other(e)),
            },
            3 => {
                seg.read_into(slot(&mut rng), &mut buf)
                    .map_err(io::Error::other)?;
                torn += u64::from(record::check(&buf).is_none());
            }
            4..=6 => {
                let r = record::make(rng.next_u64(), me);
                seg.write(slot(&mut rng), &r).map_err(io::Error::other)?;
            }
            7 | 8 => {
                let mut guard = seg.lock().map_err(io::Error::other)?;
                let current: [u8; record::LEN] = guard.read_pod(0).map_err(io::Error::other)?;
                let Some(count) = record::check(&current) else {
                    torn += 1;
                    continue;
                };
                let r = record::make(count + 1, me);
                guard.write(0, &r).map_err(io::Error::other)?;
                guard.unlock().map_err(io::Error::other)?;
                increments += 1;
            }
            _ => {
                waits += 1;
                let since = seg.generation();
                match seg.wait_for_change(since, Duration::from_millis(1)) {
                    Ok(_) => changes += 1,
                    Err(Error::Timeout { .. }) => {}
                    Err(e) => return Err(io::Error::other(e)),
                }
            }
        }
        ops += 1;
    }
    println!(
        "ops={ops} increments={increments} torn={torn} waits={waits} changes={changes} \
         read_timeouts={read_timeouts}"
    );
    // Stay until the parent has read the report.
    let _ = io::stdin().read_line(&mut String::new());
    Ok(())
}
