//! Copies between private buffers and shared memory that other processes may
//! be writing at the same time.
//!
//! # Safety
//!
//! A plain `memcpy` from memory that another thread or process writes
//! concurrently is a data race, which Rust (like C) leaves undefined. These
//! copies use relaxed atomic loads and stores instead: bytes at the unaligned
//! ends, 8-byte words in between. A copy that overlaps a write may mix old and
//! new bytes, but each access is defined; the seqlock then throws such a copy
//! away. This is the approach of crossbeam's `AtomicCell` fallback and of the
//! "atomic memcpy" proposal (RFC 3301).
#![allow(unsafe_code)]

use crate::sync::Ordering::Relaxed;
use crate::sync::shared::{AtomicU8, AtomicU64};

const WORD: usize = size_of::<u64>();

/// Copies `dst.len()` bytes from shared memory at `src` into `dst`.
///
/// # Safety
///
/// `src..src + dst.len()` must lie inside one live mapping, valid for reads
/// for the whole call. Other processes may write it concurrently.
pub(crate) unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
    let len = dst.len();
    let head = src.align_offset(WORD).min(len);
    let words = (len - head) / WORD;
    for (i, byte) in dst[..head].iter_mut().enumerate() {
        // SAFETY: `src + i` is inside the range the caller vouches for, and
        // `AtomicU8` has no alignment requirement.
        *byte = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Relaxed);
    }
    for w in 0..words {
        let at = head + w * WORD;
        // SAFETY: `src + head` is 8-aligned and `at + 8 <= len`, so the word
        // is aligned and inside the caller's range.
        let word =
            unsafe { AtomicU64::from_ptr(src.add(at).cast::<u64>().cast_mut()) }.load(Relaxed);
        dst[at..at + WORD].copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in dst.iter_mut().enumerate().skip(head + words * WORD) {
        // SAFETY: as for the head bytes.
        *byte = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Relaxed);
    }
}

/// Copies `src` into shared memory at `dst`.
///
/// # Safety
///
/// `dst..dst + src.len()` must lie inside one live, writable mapping for the
/// whole call. Other processes may read it concurrently.
pub(crate) unsafe fn copy_to_shared(dst: *mut u8, src: &[u8]) {
    let len = src.len();
    let head = dst.align_offset(WORD).min(len);
    let words = (len - head) / WORD;
    for (i, &byte) in src[..head].iter().enumerate() {
        // SAFETY: `dst + i` is inside the caller's writable range.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(byte, Relaxed);
    }
    for w in 0..words {
        let at = head + w * WORD;
        let mut word = [0; WORD];
        word.copy_from_slice(&src[at..at + WORD]);
        // SAFETY: `dst + head` is 8-aligned and `at + 8 <= len`.
        unsafe { AtomicU64::from_ptr(dst.add(at).cast::<u64>()) }
            .store(u64::from_ne_bytes(word), Relaxed);
    }
    for (i, &byte) in src.iter().enumerate().skip(head + words * WORD) {
        // SAFETY: as for the head bytes.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(byte, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_alignment_and_length() {
        let mut shared = vec![0u64; 16]; // 128 bytes, 8-aligned
        let base = shared.as_mut_ptr().cast::<u8>();
        for offset in 0..12 {
            for len in 0..40 {
                let src: Vec<u8> = (0..len).map(|i| (i * 7 + offset + 1) as u8).collect();
                // SAFETY: offset + len <= 52 < 128, inside `shared`.
                unsafe { copy_to_shared(base.add(offset), &src) };
                let mut back = vec![0xAA; len];
                // SAFETY: same range.
                unsafe { copy_from_shared(base.add(offset), &mut back) };
                assert_eq!(back, src, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn leaves_neighbouring_bytes_alone() {
        let mut shared = vec![0u64; 4];
        let base = shared.as_mut_ptr().cast::<u8>();
        // SAFETY: 3 + 20 <= 32.
        unsafe { copy_to_shared(base.add(3), &[0xFF; 20]) };
        let mut all = [0u8; 32];
        // SAFETY: the whole buffer.
        unsafe { copy_from_shared(base, &mut all) };
        assert_eq!(&all[..3], &[0; 3]);
        assert_eq!(&all[3..23], &[0xFF; 20]);
        assert_eq!(&all[23..], &[0; 9]);
    }
}
