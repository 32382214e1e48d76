//! `shmbox bench --remote`: segments on a Redis server, beside the floor of
//! one raw round trip (`SETRANGE`, `GETRANGE`) on the same kind of client
//! connection (the `redis` crate's, with the same timeouts), measured in
//! interleaved rounds; and `redis-benchmark` for context.
//!
//! It starts its own `redis-server` on 127.0.0.1, without persistence.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use shmbox::{Location, SegmentOptions};
use shmbox_testkit::RedisServer;

use crate::machine::Machine;
use crate::stats::median;

/// The target: an uncontended write within this many raw round trips.
pub const WRITE_TARGET: f64 = 1.3;

/// One scenario's per-round means (µs per operation), and its ratio to the
/// floor of the same round.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub round_trips: &'static str,
    pub us: Vec<f64>,
    pub floor: &'static str,
    pub ratios: Vec<f64>,
}

impl Row {
    pub fn median_us(&self) -> f64 {
        median(&self.us)
    }

    pub fn median_ratio(&self) -> f64 {
        median(&self.ratios)
    }

    pub fn spread(&self) -> (f64, f64) {
        let lo = self.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.ratios.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    }
}

/// What `--remote` measured.
#[derive(Debug, Clone)]
pub struct RemoteResults {
    pub machine: Machine,
    pub server_version: String,
    pub rounds: usize,
    pub per_round: usize,
    pub rows: Vec<Row>,
    /// `redis-benchmark -t set,get -P 1`: (test, requests per second).
    pub redis_benchmark: Vec<(String, f64)>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Mean µs per call of `op` over `n` calls.
fn time(n: usize, op: &mut dyn FnMut() -> io::Result<()>) -> io::Result<f64> {
    let started = Instant::now();
    for _ in 0..n {
        op()?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / n as f64)
}

/// Runs the remote scenarios and writes the report to `output`.
pub fn run(quick: bool, output: &Path) -> io::Result<RemoteResults> {
    let server = RedisServer::start().ok_or_else(|| {
        io_err("the remote benchmark needs redis-server (apt-get install redis-server)")
    })?;
    let url = server.url();
    let (rounds, per_round) = if quick { (2, 200) } else { (7, 4000) };

    let client = redis::Client::open(url.as_str()).map_err(io_err)?;
    let mut raw = client
        .get_connection_with_timeout(shmbox::DEFAULT_NETWORK_TIMEOUT)
        .map_err(io_err)?;
    raw.set_read_timeout(Some(shmbox::DEFAULT_NETWORK_TIMEOUT))
        .map_err(io_err)?;
    raw.set_write_timeout(Some(shmbox::DEFAULT_NETWORK_TIMEOUT))
        .map_err(io_err)?;
    let server_version = server
        .cli(&["INFO", "server"])
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .to_owned();

    let at = Location::parse(&url).map_err(io_err)?;
    let seg = SegmentOptions::new()
        .create_at(&at, &crate::unique_name("remote"), 4096)
        .map_err(io_err)?;
    let data = [0x5au8; 64];
    let raw_key = "bench-raw";
    redis::cmd("SET")
        .arg(raw_key)
        .arg(vec![0u8; 4096])
        .exec(&mut raw)
        .map_err(io_err)?;

    let mut floor_read_conn = client
        .get_connection_with_timeout(shmbox::DEFAULT_NETWORK_TIMEOUT)
        .map_err(io_err)?;
    floor_read_conn
        .set_read_timeout(Some(shmbox::DEFAULT_NETWORK_TIMEOUT))
        .map_err(io_err)?;
    type Op<'a> = Box<dyn FnMut() -> io::Result<()> + 'a>;
    let mut floor_write: Op<'_> = Box::new(|| {
        redis::cmd("SETRANGE")
            .arg(raw_key)
            .arg(0)
            .arg(&data[..])
            .exec(&mut raw)
            .map_err(io_err)
    });
    let mut floor_read: Op<'_> = Box::new(|| {
        redis::cmd("GETRANGE")
            .arg(raw_key)
            .arg(0)
            .arg(63)
            .query::<Vec<u8>>(&mut floor_read_conn)
            .map(drop)
            .map_err(io_err)
    });
    let mut write: Op<'_> = Box::new(|| seg.write(0, &data).map(drop).map_err(io_err));
    let mut read: Op<'_> = Box::new(|| seg.read_consistent(0, 64).map(drop).map_err(io_err));
    let mut lock_unlock: Op<'_> = Box::new(|| {
        seg.lock()
            .and_then(shmbox::AnyGuard::unlock)
            .map(drop)
            .map_err(io_err)
    });
    let mut guarded_write: Op<'_> = Box::new(|| {
        let mut guard = seg.lock().map_err(io_err)?;
        guard.write(0, &data).map_err(io_err)?;
        guard.unlock().map(drop).map_err(io_err)
    });

    // Warm up: connections made, scripts loaded.
    for op in [
        &mut floor_write,
        &mut floor_read,
        &mut write,
        &mut read,
        &mut lock_unlock,
        &mut guarded_write,
    ] {
        time(per_round / 10 + 1, op.as_mut())?;
    }
    let mut rows = vec![
        Row {
            name: "raw SETRANGE 64 B (floor)",
            round_trips: "1",
            us: vec![],
            floor: "SETRANGE",
            ratios: vec![],
        },
        Row {
            name: "write 64 B",
            round_trips: "1",
            us: vec![],
            floor: "SETRANGE",
            ratios: vec![],
        },
        Row {
            name: "raw GETRANGE 64 B (floor)",
            round_trips: "1",
            us: vec![],
            floor: "GETRANGE",
            ratios: vec![],
        },
        Row {
            name: "read_consistent 64 B",
            round_trips: "1",
            us: vec![],
            floor: "GETRANGE",
            ratios: vec![],
        },
        Row {
            name: "lock + unlock",
            round_trips: "2",
            us: vec![],
            floor: "SETRANGE",
            ratios: vec![],
        },
        Row {
            name: "lock + guard.write 64 B + unlock",
            round_trips: "3",
            us: vec![],
            floor: "SETRANGE",
            ratios: vec![],
        },
    ];
    for _ in 0..rounds {
        let fw = time(per_round, floor_write.as_mut())?;
        let w = time(per_round, write.as_mut())?;
        let fr = time(per_round, floor_read.as_mut())?;
        let r = time(per_round, read.as_mut())?;
        let lu = time(per_round, lock_unlock.as_mut())?;
        let gw = time(per_round, guarded_write.as_mut())?;
        for (row, (us, floor)) in
            rows.iter_mut()
                .zip([(fw, fw), (w, fw), (fr, fr), (r, fr), (lu, fw), (gw, fw)])
        {
            row.us.push(us);
            row.ratios.push(us / floor);
        }
    }
    drop((
        floor_write,
        floor_read,
        write,
        read,
        lock_unlock,
        guarded_write,
    ));
    drop(seg);

    let redis_benchmark = redis_benchmark(server.port(), if quick { 2000 } else { 100_000 });
    let results = RemoteResults {
        machine: Machine::describe(),
        server_version,
        rounds,
        per_round,
        rows,
        redis_benchmark,
    };
    std::fs::write(output, markdown(&results))?;
    Ok(results)
}

/// `redis-benchmark -t set,get -P 1 -q`; empty if it is not installed.
fn redis_benchmark(port: u16, requests: usize) -> Vec<(String, f64)> {
    let Ok(out) = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-t",
            "set,get",
            "-P",
            "1",
            "-q",
            "-c",
            "1",
        ])
        .args(["-n", &requests.to_string()])
        .output()
    else {
        return Vec::new();
    };
    // Lines like "SET: 51234.56 requests per second, p50=0.015 msec"; -q
    // redraws with carriage returns.
    String::from_utf8_lossy(&out.stdout)
        .split(['\n', '\r'])
        .filter_map(|line| {
            let (test, rest) = line.split_once(": ")?;
            let rps: f64 = rest.split_whitespace().next()?.parse().ok()?;
            rest.contains("requests per second")
                .then(|| (test.trim().to_owned(), rps))
        })
        .fold(Vec::new(), |mut all: Vec<(String, f64)>, (test, rps)| {
            all.retain(|(t, _)| *t != test);
            all.push((test, rps));
            all
        })
}

/// The report.
pub fn markdown(r: &RemoteResults) -> String {
    use std::fmt::Write as _;
    let mut m = String::new();
    let _ = writeln!(m, "# shmbox over Redis: benchmarks\n");
    let _ = writeln!(
        m,
        "Every figure below comes from one run of `shmbox bench --remote`, on {}: one client on the same machine as a Redis {} server it started (127.0.0.1, no persistence), over the `redis` crate's synchronous connection. Each row ran {} operations per round in {} interleaved rounds; each ratio is taken within a round against the floor named in its row, a raw command of one round trip on the same kind of connection. The table gives the medians over the rounds and the spread of the ratio. Over loopback a round trip is tens of microseconds; across a network it is the network's, and the ratios to it shrink.\n",
        r.machine.date, r.server_version, r.per_round, r.rounds
    );
    let _ = writeln!(
        m,
        "Rerun it with `cargo run --release -p shmbox-cli --features bench -- bench --remote` (about {}).\n",
        if r.rounds > 2 { "a minute" } else { "seconds" }
    );
    let _ = writeln!(
        m,
        "| CPU | cores | kernel |\n|---|---|---|\n| {} | {} | {} |\n",
        r.machine.cpu, r.machine.cores, r.machine.kernel
    );
    let write = r.rows.iter().find(|row| row.name == "write 64 B");
    if let Some(write) = write {
        let ratio = write.median_ratio();
        let _ = writeln!(
            m,
            "**Target:** an uncontended write within {WRITE_TARGET}× a raw `SETRANGE` round trip: **{ratio:.2}×, {}**.\n",
            if ratio <= WRITE_TARGET {
                "met"
            } else {
                "missed"
            }
        );
    }
    let _ = writeln!(
        m,
        "| operation | round trips | µs per operation (median) | ratio (median) | spread | against |\n|---|---:|---:|---:|---|---|"
    );
    for row in &r.rows {
        let (lo, hi) = row.spread();
        let _ = writeln!(
            m,
            "| {} | {} | {:.1} | {:.2}× | {lo:.2}–{hi:.2} | {} |",
            row.name,
            row.round_trips,
            row.median_us(),
            row.median_ratio(),
            row.floor
        );
    }
    if !r.redis_benchmark.is_empty() {
        let _ = writeln!(
            m,
            "\nFor context, `redis-benchmark -t set,get -P 1 -c 1` on the same server (one client, no pipelining):\n\n| command | requests per second | µs per request |\n|---|---:|---:|"
        );
        for (test, rps) in &r.redis_benchmark {
            let _ = writeln!(m, "| {test} | {rps:.0} | {:.1} |", 1e6 / rps);
        }
    }
    let _ = writeln!(
        m,
        "\n## What the figures say\n\n\
         - `write` is one `EVALSHA`: the script checks the lock's lease, writes the range, bumps the generation and publishes it. Its cost over the floor is the script's own work on the server (a handful of commands) and the larger request.\n\
         - `read_consistent` is one `EVALSHA` too: the data and its generation come from one atomic script.\n\
         - The lock is a lease: taking it and releasing it are a round trip each. A guard's first write adds one (the server checks the lease and records that a write began); its writes land together when it is released.\n\
         - See [REMOTE.md](REMOTE.md) for what each operation guarantees."
    );
    m
}
