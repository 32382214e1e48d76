//! Scenario 2: copies into and out of a segment, against plain memcpy into
//! the same mapping (the hardware's limit).

use std::hint::black_box;

use shmbox::Segment;

/// The sizes measured, from one cache line to far beyond the caches.
pub const SIZES: [usize; 7] = [64, 1 << 10, 4 << 10, 64 << 10, 1 << 20, 8 << 20, 64 << 20];

/// What is copied, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    /// `memcpy` into the mapping, under one lock held throughout.
    MemcpyWrite,
    /// `memcpy` out of the mapping.
    MemcpyRead,
    /// `Segment::write`: lock, copy, commit, unlock, each time.
    ShmboxWrite,
    /// `Segment::read_consistent_into`: no lock, never torn.
    ShmboxRead,
}

impl CopyKind {
    pub const ALL: [CopyKind; 4] = [
        CopyKind::MemcpyWrite,
        CopyKind::ShmboxWrite,
        CopyKind::MemcpyRead,
        CopyKind::ShmboxRead,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CopyKind::MemcpyWrite => "memcpy into the mapping",
            CopyKind::MemcpyRead => "memcpy out of the mapping",
            CopyKind::ShmboxWrite => "shmbox write",
            CopyKind::ShmboxRead => "shmbox read_consistent",
        }
    }
}

/// A 64 MiB segment and private buffers as large.
pub struct Copies {
    segment: Segment,
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Copies {
    pub fn new() -> shmbox::Result<Copies> {
        let max = *SIZES.last().unwrap();
        let segment = Segment::create(crate::unique_name("copy"), max)?;
        // Touch every page now, so that no page fault is timed.
        let src: Vec<u8> = (0..max).map(|i| i as u8).collect();
        let dst = vec![1u8; max];
        segment.write(0, &src)?;
        Ok(Copies { segment, src, dst })
    }

    /// Copies `size` bytes `n` times, the `kind` way.
    #[allow(unsafe_code)] // the memcpy baseline copies through plain slices
    pub fn run(&mut self, kind: CopyKind, size: usize, n: u64) {
        let Copies { segment, src, dst } = self;
        match kind {
            CopyKind::MemcpyWrite => {
                let mut guard = segment.lock().unwrap();
                // SAFETY: the segment is this benchmark's own (a unique
                // name), and no other thread or process touches it while
                // the guard lives.
                let data = unsafe { guard.as_mut_slice() };
                for _ in 0..n {
                    data[..size].copy_from_slice(black_box(&src[..size]));
                    black_box(data.as_ptr());
                }
            }
            CopyKind::MemcpyRead => {
                let guard = segment.lock().unwrap();
                // SAFETY: as above.
                let data = unsafe { guard.as_slice() };
                for _ in 0..n {
                    dst[..size].copy_from_slice(black_box(&data[..size]));
                    black_box(dst.as_ptr());
                }
            }
            CopyKind::ShmboxWrite => {
                for _ in 0..n {
                    black_box(segment.write(0, black_box(&src[..size])).unwrap());
                }
            }
            CopyKind::ShmboxRead => {
                for _ in 0..n {
                    let copied = segment
                        .read_consistent_into(0, black_box(&mut dst[..size]))
                        .unwrap();
                    // Field by field, as a caller uses it: one 16-byte load of
                    // the whole result would stall on store forwarding (the
                    // callee stores it in 8-byte halves) and time the harness.
                    black_box(copied.len);
                    black_box(copied.generation);
                }
            }
        }
    }
}
