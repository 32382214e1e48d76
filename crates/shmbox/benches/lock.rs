//! Uncontended costs, beside a floor measured in the same run.
//!
//! `cargo bench -p shmbox --bench lock`
//!
//! The floor is the least a lock-protected 64-byte write can cost: one
//! compare-and-swap to lock, the copy, one store to unlock, on memory of
//! this process. The full comparison with peers is the benchmark harness's
//! job; this bench tracks the library's own fast paths.
#![allow(clippy::disallowed_types)] // the floor uses a plain std atomic

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use shmbox::Segment;

fn uncontended(c: &mut Criterion) {
    let name = format!("bench-lock-{}", std::process::id());
    let seg = Segment::create(&name, 4096).expect("create the bench segment");
    let payload = [0xA5u8; 64];
    let mut out = [0u8; 64];

    let mut group = c.benchmark_group("uncontended");
    group.bench_function(
        "floor: CAS lock + 64 B copy + store unlock (private memory)",
        |b| {
            let word = AtomicU32::new(0);
            let mut data = [0u8; 64];
            b.iter(|| {
                while word
                    .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {}
                data.copy_from_slice(black_box(&payload));
                word.store(0, Ordering::Release);
                black_box(&data);
            })
        },
    );
    group.bench_function("shmbox write 64 B (lock + write + commit + unlock)", |b| {
        b.iter(|| seg.write(0, black_box(&payload)).unwrap())
    });
    group.bench_function("shmbox lock + guard.write 64 B + unlock", |b| {
        b.iter(|| {
            let mut guard = seg.lock().unwrap();
            guard.write(0, black_box(&payload)).unwrap();
        })
    });
    group.bench_function("shmbox lock + unlock (no write)", |b| {
        b.iter(|| drop(black_box(seg.lock().unwrap())))
    });
    group.bench_function("shmbox read_consistent_into 64 B (no lock)", |b| {
        b.iter(|| seg.read_consistent_into(0, black_box(&mut out)).unwrap())
    });
    group.bench_function("shmbox read_into 64 B (locked)", |b| {
        b.iter(|| seg.read_into(0, black_box(&mut out)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, uncontended);
criterion_main!(benches);
