//! The copy scenario alone, quickly: shmbox's consistent reads and writes
//! against memcpy at each size, median of interleaved rounds. For working
//! on the copy; `shmbox bench` measures the same as part of the report.
//!
//! `cargo run --release -p shmbox-bench --example copy_ratios [ROUNDS]`

use std::time::Duration;

use shmbox_bench::copy::{Copies, CopyKind, SIZES};
use shmbox_bench::stats::{calibrate, median, sample};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(9);
    let mut copier = Copies::new().expect("a segment for the copies");
    println!(
        "{:>8} {:>12} {:>12}   ns: {:>9} {:>9} {:>9} {:>9}",
        "size", "read/memcpy", "write/memcpy", "memcpy-r", "read", "memcpy-w", "write"
    );
    for size in SIZES {
        let target = Duration::from_millis(if size >= 1 << 20 { 40 } else { 10 });
        let counts: Vec<u64> = CopyKind::ALL
            .iter()
            .map(|&k| calibrate(&mut |n| copier.run(k, size, n), target))
            .collect();
        let mut samples = vec![Vec::new(); CopyKind::ALL.len()];
        for _ in 0..rounds {
            for (i, &kind) in CopyKind::ALL.iter().enumerate() {
                samples[i].push(sample(&mut |n| copier.run(kind, size, n), counts[i]));
            }
        }
        let ns = |kind: CopyKind| {
            let i = CopyKind::ALL.iter().position(|&k| k == kind).unwrap();
            median(&samples[i])
        };
        println!(
            "{size:>8} {:>12.2} {:>12.2}       {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            ns(CopyKind::MemcpyRead) / ns(CopyKind::ShmboxRead),
            ns(CopyKind::MemcpyWrite) / ns(CopyKind::ShmboxWrite),
            ns(CopyKind::MemcpyRead),
            ns(CopyKind::ShmboxRead),
            ns(CopyKind::MemcpyWrite),
            ns(CopyKind::ShmboxWrite),
        );
    }
}
