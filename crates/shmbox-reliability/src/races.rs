//! Lifetime races: a storm of open-or-create, open, close, remove and crash
//! on a few until-last-close names, from several processes at once.
//!
//! Every segment gets a random token in its first 8 bytes, set by the first
//! process to lock it. While a worker holds a segment, it opens the name
//! again, now and then, and checks that it finds the same token. Finding no
//! segment means one was removed while a process had it open; finding
//! another token means two live segments under one name. Both are
//! violations, printed the moment they are seen. Meanwhile the parent kills
//! a random worker every few milliseconds and starts a new one. At the end,
//! once every worker is gone, no name may be left behind.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use shmbox::{Error, SegmentOptions};

use crate::Spawn;
use crate::proc::{Inbox, Kid};
use crate::record::Rng;

/// Names the storm shares.
const NAMES: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct Races {
    pub processes: usize,
    pub seconds: f64,
    pub opens: u64,
    pub creates: u64,
    pub checks: u64,
    pub removes_refused: u64,
    pub removes_done: u64,
    pub crashes: u64,
    /// Removed while held, or two segments under one name: must stay 0.
    pub violations: Vec<String>,
    /// Names whose last holder was killed, found by the parent's reclaim
    /// once every worker had gone (live workers reclaim others on the way).
    pub reclaimed_at_end: u64,
    /// Names left in /dev/shm after every worker had gone and the parent
    /// reclaimed what dead holders left: must stay 0.
    pub leaked: u64,
}

pub fn run(processes: usize, duration: Duration, seed: u64, spawn: Spawn<'_>) -> io::Result<Races> {
    let run_id = crate::unique_name("races");
    let mut rng = Rng::new(seed);
    let mut r = Races {
        processes,
        seconds: duration.as_secs_f64(),
        ..Races::default()
    };
    let start = |rng: &mut Rng| -> io::Result<Kid> {
        let kid = Kid::spawn(
            spawn,
            &[
                "races-worker".into(),
                run_id.clone(),
                rng.next_u64().to_string(),
            ],
        )?;
        kid.expect("ready", Duration::from_secs(10))?;
        Ok(kid)
    };
    let mut kids: Vec<Kid> = (0..processes)
        .map(|_| start(&mut rng))
        .collect::<io::Result<_>>()?;
    let started = Instant::now();
    while started.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(5 + rng.below(20)));
        let victim = rng.below(kids.len() as u64) as usize;
        kids[victim].kill();
        let mut dead = std::mem::replace(&mut kids[victim], start(&mut rng)?);
        dead.wait(Duration::from_secs(10))?;
        collect(&mut r, &dead);
        r.crashes += 1;
    }
    for kid in &mut kids {
        kid.close();
    }
    for mut kid in kids {
        kid.wait(Duration::from_secs(30))?;
        collect(&mut r, &kid);
    }
    // A name whose last holder was killed stays until a shmbox call looks.
    let reclaimed = shmbox::reclaim().map_err(io::Error::other)?;
    for i in 0..NAMES {
        let name = name_of(&run_id, i);
        r.reclaimed_at_end += u64::from(reclaimed.iter().any(|n| n.as_str() == name));
        if !crate::gone_within(&name, Duration::from_secs(2)) {
            r.leaked += 1;
            let _ = std::fs::remove_file(crate::segment_path(&name));
        }
    }
    Ok(r)
}

fn name_of(run_id: &str, i: usize) -> String {
    format!("{run_id}-{i}")
}

/// Adds what a worker printed: violations as they came, and its counts as
/// of its last report (a killed worker's last work goes uncounted).
fn collect(r: &mut Races, kid: &Kid) {
    let mut last_counts = None;
    for line in kid.drain() {
        if let Some(v) = line.strip_prefix("violation ") {
            r.violations.push(v.to_owned());
        } else if line.starts_with("opens=") {
            last_counts = Some(line);
        }
    }
    if let Some(line) = last_counts {
        let f = crate::fields(&line);
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
        r.opens += get("opens");
        r.creates += get("creates");
        r.checks += get("checks");
        r.removes_refused += get("removes_refused");
        r.removes_done += get("removes_done");
    }
}

/// `races-worker RUN SEED`: storms until its input ends or it is killed.
pub fn worker(args: &[String]) -> io::Result<()> {
    let [run_id, seed] = args else {
        return Err(io::Error::other("races-worker RUN SEED"));
    };
    let mut rng = Rng::new(seed.parse().map_err(io::Error::other)?);
    let inbox = Inbox::start();
    let options = SegmentOptions::new().timeout(Duration::from_secs(10));
    println!("ready");
    let (mut opens, mut creates, mut checks, mut removes_refused, mut removes_done) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let violation = |what: String| {
        println!("violation {what}");
        let _ = io::stdout().flush();
    };
    let report = |opens, creates, checks, refused, done| {
        println!(
            "opens={opens} creates={creates} checks={checks} removes_refused={refused} \
             removes_done={done}"
        );
        let _ = io::stdout().flush();
    };
    for turn in 0u64.. {
        if let Some(None) = inbox.poll() {
            break;
        }
        if turn % 32 == 31 {
            report(opens, creates, checks, removes_refused, removes_done);
        }
        let name = name_of(run_id, rng.below(NAMES as u64) as usize);
        match rng.below(10) {
            // Remove: refused while anyone holds it, done otherwise.
            0 | 1 => match shmbox::remove(&name) {
                Ok(()) => removes_done += 1,
                Err(Error::Busy { .. }) => removes_refused += 1,
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(io::Error::other(e)),
            },
            // Hold nothing for a while, so that names are sometimes free to
            // be removed.
            2 => std::thread::sleep(Duration::from_micros(rng.below(2_000))),
            // Open or create it, hold it a while, checking, then close.
            _ => {
                let seg = match options.open_or_create(&name, 4096) {
                    Ok(seg) => seg,
                    // Being removed by its last holder right now: try again.
                    Err(Error::NotFound { .. }) => continue,
                    Err(e) => return Err(io::Error::other(e)),
                };
                opens += 1;
                let token = {
                    let mut guard = seg.lock().map_err(io::Error::other)?;
                    let token: u64 = guard.read_pod(0).map_err(io::Error::other)?;
                    if token != 0 {
                        token
                    } else {
                        creates += 1;
                        let fresh = rng.next_u64() | 1;
                        guard.write_pod(0, &fresh).map_err(io::Error::other)?;
                        fresh
                    }
                };
                let hold = Duration::from_micros(rng.below(3_000));
                let held = Instant::now();
                while held.elapsed() < hold {
                    match options.open(&name) {
                        Ok(again) => {
                            let seen = again.read(0, 8).map_err(io::Error::other)?;
                            let seen = u64::from_le_bytes(seen.try_into().unwrap());
                            // 0: a segment so new that nobody has set its
                            // token yet, which is itself a second segment.
                            if seen != token {
                                violation(format!(
                                    "two segments under {name}: held {token:#x}, found {seen:#x}"
                                ));
                            }
                        }
                        Err(Error::NotFound { .. }) => {
                            violation(format!("{name} was removed while this process held it"));
                        }
                        Err(e) => return Err(io::Error::other(e)),
                    }
                    checks += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
                drop(seg);
            }
        }
    }
    report(opens, creates, checks, removes_refused, removes_done);
    Ok(())
}
