//! Scenario 4 under criterion: processes contending for one lock, in both
//! loops (a clock read around each lock, and none), for shmbox and its
//! peers. Each sample runs the processes for a fixed time; the time per
//! operation is that time over the operations all of them completed. The
//! hand-off rates are in `shmbox bench`'s report; this tracks throughput.

use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use shmbox_bench::contention::{LockKind, Loop, contend};

/// Set in the environment of this binary's child processes.
const CHILD: &str = "SHMBOX_BENCH_CHILD";

/// How long the processes contend in each sample.
const RUN: Duration = Duration::from_millis(300);

fn spawn(args: &[String]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command.env(CHILD, "1").args(args);
    command
}

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
                        let run = contend(lock, looping, processes, RUN, &spawn)
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
    if std::env::var_os(CHILD).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        std::process::exit(shmbox_bench::child_main(&args));
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
