//! Scenario 1 alone, quickly: lock + write 64 B + unlock for shmbox and its
//! peers, the median of interleaved rounds and the ratio to the minimal
//! futex lock. For working on the write path; `shmbox bench` measures the
//! same as part of the report.
//!
//! `cargo run --release -p shmbox-bench --example uncontended_ratio [ROUNDS]`

use std::time::Duration;

use shmbox_bench::stats::{calibrate, median, sample};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(21);
    let mut scenarios = shmbox_bench::uncontended::all().expect("the scenarios start");
    let counts: Vec<u64> = scenarios
        .iter_mut()
        .map(|s| calibrate(&mut |n| s.run(n), Duration::from_millis(20)))
        .collect();
    let mut samples = vec![Vec::new(); scenarios.len()];
    for _ in 0..rounds {
        for (i, s) in scenarios.iter_mut().enumerate() {
            samples[i].push(sample(&mut |n| s.run(n), counts[i]));
        }
    }
    let floor = median(&samples[0]);
    for (s, v) in scenarios.iter().zip(&samples) {
        println!(
            "{:<55} {:6.2} ns {:5.2}x",
            s.name(),
            median(v),
            median(v) / floor
        );
    }
}
