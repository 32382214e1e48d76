//! Scenario 3 under criterion: mean one-way notification latency between
//! two processes (writer on CPU 0, waiter on CPU 1). The percentiles are in
//! `shmbox bench`'s report; this tracks the mean.

use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use shmbox_bench::notify::{Mechanism, Placement, pingpong};

/// Set in the environment of this binary's child processes.
const CHILD: &str = "SHMBOX_BENCH_CHILD";

fn spawn(args: &[String]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command.env(CHILD, "1").args(args);
    command
}

fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("one-way notification latency");
    group.sample_size(10);
    for mechanism in Mechanism::ALL {
        group.bench_function(mechanism.label(), |b| {
            b.iter_custom(|iterations| {
                let latencies = pingpong(mechanism, iterations.max(1), Placement::TwoCpus, &spawn)
                    .expect("ping-pong");
                Duration::from_nanos(latencies.iter().sum())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, latency);

fn main() {
    if std::env::var_os(CHILD).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        std::process::exit(shmbox_bench::child_main(&args));
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
