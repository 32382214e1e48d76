//! Scenario 4 under criterion: processes contending for one lock, in both
//! loops (a clock read around each lock, and none), for shmbox and its
//! peers. Each sample runs the processes for a fixed time; the time per
//! operation is that time over the operations all of them completed. The
//! hand-off rates are in `shmbox bench`'s report; this tracks throughput.

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use shmbox_bench::contention::{LockKind, Loop, contend};

/// How long the processes contend in each sample.
const RUN: Duration = Duration::from_millis(300);

fn contention(c: &mut Criterion) {
    for processes in [2, 4] {
        for looping in Loop::ALL {
            let mut group = c.benchmark_group(format!(
                "contention, {processes} processes, {}",
                looping.label()
            ));
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(10));
            for lock in LockKind::ALL {
                group.bench_function(lock.label(), |b| {
                    b.iter_custom(|iterations| {
                        let run = contend(lock, looping, processes, RUN, &shmbox_bench::spawn_self)
                            .expect("the contending processes run");
                        let per_op = RUN.as_secs_f64() / run.total().max(1) as f64;
                        Duration::from_secs_f64(per_op * iterations as f64)
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, contention);

fn main() {
    shmbox_bench::exit_if_child();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
