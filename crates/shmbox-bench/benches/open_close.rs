//! Opening an existing segment, mapping it and closing it, under criterion,
//! against the raw calls on the same file (the footprint section of
//! `shmbox bench`).

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use shmbox::Segment;

fn open_close(c: &mut Criterion) {
    let name = shmbox_bench::unique_name("criterion-open");
    let segment = Segment::create(&name, 1024).expect("a segment to open");
    let path = PathBuf::from(format!("/dev/shm/shmbox.{name}"));
    let mut group = c.benchmark_group("open + map + close");
    group.bench_function("raw open + fstat + mmap + munmap + close", |b| {
        b.iter(|| shmbox_bench::footprint::raw_open_map_close(&path).expect("raw open"))
    });
    group.bench_function("shmbox Segment::open + drop", |b| {
        b.iter(|| drop(Segment::open(&name).expect("open")))
    });
    group.finish();
    drop(segment);
}

criterion_group!(benches, open_close);
criterion_main!(benches);
