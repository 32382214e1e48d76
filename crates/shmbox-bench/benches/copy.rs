//! Scenario 2 under criterion: copies into and out of a segment against
//! memcpy into the same mapping, by size.

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shmbox_bench::copy::{Copies, CopyKind, SIZES};

fn copies(c: &mut Criterion) {
    let mut copier = Copies::new().expect("create the 64 MiB segment");
    for size in SIZES {
        let mut group = c.benchmark_group(format!("copy {size} B"));
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 1 << 20 {
            group.sample_size(10);
        }
        for kind in CopyKind::ALL {
            group.bench_function(kind.label(), |b| {
                b.iter_custom(|iterations| {
                    let started = Instant::now();
                    copier.run(kind, size, iterations);
                    started.elapsed()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, copies);
criterion_main!(benches);
