//! A segment read with nothing but docs/FORMAT.md: plain file reads, no
//! shmbox calls, as a program in another language would.
// Linux-specific: files in /dev/shm, signals, uids. The backend-neutral
// behaviour is in conformance.rs, which every platform runs.
#![cfg(target_os = "linux")]

mod common;

use common::{segment_path, unique_name};
use shmbox::{Lifetime, Segment, SegmentOptions};

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

#[test]
fn the_file_is_what_format_md_says() {
    let name = unique_name("format");
    let seg = SegmentOptions::new()
        .lifetime(Lifetime::Persistent)
        .create(&name, 1000)
        .unwrap();
    let _cleanup = common::Cleanup(name.clone());
    seg.write(0, "你好, FORMAT.md".as_bytes()).unwrap();
    seg.write(500, b"second write").unwrap();
    let guard = seg.lock().unwrap();

    // "The segment NAME is the file /dev/shm/shmbox.NAME"
    let file = std::fs::read(segment_path(&name)).unwrap();
    // "256 bytes of header, then exactly `capacity` bytes of data"
    assert_eq!(file.len(), 256 + 1000);
    assert_eq!(&file[0..8], b"shmbox\0\0");
    assert_eq!(u32_at(&file, 8), 1, "format_version");
    assert_eq!(u32_at(&file, 12), 256, "header_size");
    assert_eq!(u64_at(&file, 16), 1000, "capacity");
    assert_eq!(u32_at(&file, 24), 2, "lifetime: 2 = Persistent");
    assert_eq!(u32_at(&file, 28), 0, "flags");
    assert_eq!(&file[32..36], b"REDY", "init_state");
    assert_eq!(u32_at(&file, 36), std::process::id(), "creator_pid");
    assert!(
        u64_at(&file, 40) > 1_600_000_000_000_000_000,
        "created_unix_ns"
    );

    // The lock word holds the holder's lock id; the holder recorded its pid.
    let lock_word = u32_at(&file, 64);
    assert_ne!(lock_word & ((1 << 29) - 1), 0, "owner id while locked");
    assert_eq!(u32_at(&file, 68), std::process::id(), "lock_owner_pid");

    // Two committed writes: seq is even, generation = seq / 2.
    let seq = u64_at(&file, 128);
    assert_eq!((seq % 2, seq / 2), (0, 2));
    assert_eq!(u32_at(&file, 140), std::process::id(), "last_writer_pid");
    assert!(
        (1_600_000_000..4_000_000_000).contains(&u64_at(&file, 144)),
        "last_write_unix_s"
    );

    // The data region starts at byte 256.
    let data = &file[256..];
    assert!(data.starts_with("你好, FORMAT.md".as_bytes()));
    assert_eq!(&data[500..512], b"second write");
    drop(guard);
    drop(seg);
    shmbox::remove(&name).unwrap();
}

#[test]
fn size_is_exact_and_never_rounded_to_a_page() {
    for size in [1usize, 255, 4095, 4096, 4097, 100_000] {
        let name = unique_name("exact");
        let seg = Segment::create(&name, size).unwrap();
        assert_eq!(seg.size(), size);
        assert_eq!(
            std::fs::metadata(segment_path(&name)).unwrap().len(),
            256 + size as u64
        );
        assert_eq!(seg.write(0, &vec![1; size + 10]).unwrap(), size);
        assert_eq!(seg.read(0, usize::MAX).unwrap().len(), size);
    }
}
