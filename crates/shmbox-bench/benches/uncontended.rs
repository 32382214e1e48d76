//! Scenario 1 under criterion: lock + write 64 B + unlock, shmbox and its
//! peers (the same scenario code as `shmbox bench`).

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock + write 64 B + unlock");
    for mut scenario in shmbox_bench::uncontended::all().expect("set up the scenarios") {
        group.bench_function(scenario.name(), |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                scenario.run(iterations);
                started.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, uncontended);
criterion_main!(benches);
