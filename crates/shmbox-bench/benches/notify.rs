//! Scenario 3 under criterion: mean one-way notification latency between
//! two processes (writer on CPU 0, waiter on CPU 1). The percentiles are in
//! `shmbox bench`'s report; this tracks the mean.

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use shmbox_bench::notify::{Mechanism, Placement, pingpong};

fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("one-way notification latency");
    group.sample_size(10);
    for mechanism in Mechanism::ALL {
        group.bench_function(mechanism.label(), |b| {
            b.iter_custom(|iterations| {
                let latencies = pingpong(
                    mechanism,
                    iterations.max(1),
                    Placement::TwoCpus,
                    &shmbox_bench::spawn_self,
                )
                .expect("ping-pong");
                Duration::from_nanos(latencies.iter().sum())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, latency);

fn main() {
    shmbox_bench::exit_if_child();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
