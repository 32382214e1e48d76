//! Copies between private buffers and shared memory that other processes may
//! be writing at the same time.
//!
//! # Safety
//!
//! A plain `memcpy` from memory that another thread or process writes
//! concurrently is a data race, which Rust (like C) leaves undefined. These
//! copies are defined instead:
//!
//! - everywhere but x86-64 (and under miri, which cannot run assembly), as
//!   relaxed atomic loads and stores: bytes at the unaligned ends, 8-byte
//!   words in between (the approach of crossbeam's `AtomicCell` fallback and
//!   of the "atomic memcpy" proposal, RFC 3301);
//! - on x86-64, as inline assembly: a loop of 16-byte `movdqu` moves for
//!   short copies, `rep movsb` for long ones. The compiler treats an `asm!`
//!   block as opaque; what it does to memory is what the hardware does,
//!   which for these instructions is, byte by byte, what relaxed atomic
//!   accesses do. From 4 KiB on it runs at memcpy's speed, which the
//!   word-by-word loop does not.
//!
//! A copy that overlaps a write may mix old and new bytes, but each access is
//! defined; the seqlock then throws such a copy away.
#![allow(unsafe_code)]

#[cfg(any(not(target_arch = "x86_64"), miri))]
use crate::sync::Ordering::Relaxed;
#[cfg(any(not(target_arch = "x86_64"), miri))]
use crate::sync::shared::{AtomicU8, AtomicU64};

#[cfg(any(not(target_arch = "x86_64"), miri))]
const WORD: usize = size_of::<u64>();

/// Copies `dst.len()` bytes from shared memory at `src` into `dst`.
///
/// # Safety
///
/// `src..src + dst.len()` must lie inside one live mapping, valid for reads
/// and writes for the whole call (shmbox maps segments read-write). Other
/// processes may write it concurrently.
#[inline]
pub(crate) unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: the caller vouches for `src`; `dst` is an exclusive buffer of
    // the same length, which cannot overlap the caller's shared range.
    unsafe {
        copy(dst.as_mut_ptr(), src, dst.len())
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    // SAFETY: as above.
    unsafe {
        load_shared(src, dst)
    }
}

/// Copies `src` into shared memory at `dst`.
///
/// # Safety
///
/// `dst..dst + src.len()` must lie inside one live, writable mapping for the
/// whole call. Other processes may read it concurrently.
#[inline]
pub(crate) unsafe fn copy_to_shared(dst: *mut u8, src: &[u8]) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: the caller vouches for `dst`; `src` is a buffer of the same
    // length that the caller borrows, so it cannot be the shared range.
    unsafe {
        copy(dst, src.as_ptr(), src.len())
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    // SAFETY: as above.
    unsafe {
        store_shared(dst, src)
    }
}

/// From this many bytes on, `rep movsb` beats a loop of 16-byte moves.
#[cfg(all(target_arch = "x86_64", not(miri)))]
const REP_MOVSB_FROM: usize = 2048;

/// Copies `len` bytes between non-overlapping ranges, either of which may be
/// shared memory that others access concurrently.
///
/// Short copies take a fixed number of moves, whatever their length: the
/// first and the last 4, 8, 16 or 32 bytes, overlapping in the middle (bytes
/// there are written twice, with the same value). This is how C libraries
/// copy short buffers; a loop with a tail costs more branches than the copy.
///
/// # Safety
///
/// Both ranges are valid for `len` bytes (reads at `src`, writes at `dst`)
/// and do not overlap.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    use std::arch::asm;
    if len > 64 {
        // SAFETY: the caller's contract, with `len > 64`.
        unsafe { copy_long(dst, src, len) };
        return;
    }
    // In each block below, every move reads `src + k..src + k + w` and
    // writes `dst + k..dst + k + w` with `k + w <= len`.
    if len >= 32 {
        // SAFETY: every move stays within the caller's ranges: `len` is at
        // least each move's width.
        unsafe {
            asm!(
                "movdqu {a}, [{s}]",
                "movdqu {b}, [{s} + 16]",
                "movdqu {c}, [{se} - 32]",
                "movdqu {e}, [{se} - 16]",
                "movdqu [{d}], {a}",
                "movdqu [{d} + 16], {b}",
                "movdqu [{de} - 32], {c}",
                "movdqu [{de} - 16], {e}",
                s = in(reg) src,
                d = in(reg) dst,
                se = in(reg) src.add(len),
                de = in(reg) dst.add(len),
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                c = out(xmm_reg) _,
                e = out(xmm_reg) _,
                options(nostack, preserves_flags)
            );
        }
    } else if len >= 16 {
        // SAFETY: every move stays within the caller's ranges: `len` is at
        // least each move's width.
        unsafe {
            asm!(
                "movdqu {a}, [{s}]",
                "movdqu {b}, [{se} - 16]",
                "movdqu [{d}], {a}",
                "movdqu [{de} - 16], {b}",
                s = in(reg) src,
                d = in(reg) dst,
                se = in(reg) src.add(len),
                de = in(reg) dst.add(len),
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                options(nostack, preserves_flags)
            );
        }
    } else if len >= 8 {
        // SAFETY: every move stays within the caller's ranges: `len` is at
        // least each move's width.
        unsafe {
            asm!(
                "mov {a}, qword ptr [{s}]",
                "mov {b}, qword ptr [{se} - 8]",
                "mov qword ptr [{d}], {a}",
                "mov qword ptr [{de} - 8], {b}",
                s = in(reg) src,
                d = in(reg) dst,
                se = in(reg) src.add(len),
                de = in(reg) dst.add(len),
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags)
            );
        }
    } else if len >= 4 {
        // SAFETY: every move stays within the caller's ranges: `len` is at
        // least each move's width.
        unsafe {
            asm!(
                "mov {a:e}, dword ptr [{s}]",
                "mov {b:e}, dword ptr [{se} - 4]",
                "mov dword ptr [{d}], {a:e}",
                "mov dword ptr [{de} - 4], {b:e}",
                s = in(reg) src,
                d = in(reg) dst,
                se = in(reg) src.add(len),
                de = in(reg) dst.add(len),
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags)
            );
        }
    } else if len > 0 {
        // 1 to 3 bytes: the first, the middle and the last.
        // SAFETY: every move stays within the caller's ranges: `len` is at
        // least each move's width.
        unsafe {
            asm!(
                "mov {a}, byte ptr [{s}]",
                "mov {b}, byte ptr [{s} + {half}]",
                "mov {c}, byte ptr [{se} - 1]",
                "mov byte ptr [{d}], {a}",
                "mov byte ptr [{d} + {half}], {b}",
                "mov byte ptr [{de} - 1], {c}",
                s = in(reg) src,
                d = in(reg) dst,
                half = in(reg) len / 2,
                se = in(reg) src.add(len),
                de = in(reg) dst.add(len),
                a = out(reg_byte) _,
                b = out(reg_byte) _,
                c = out(reg_byte) _,
                options(nostack, preserves_flags)
            );
        }
    }
}

/// Whether the CPU was found to have AVX2, so that [`copy_avx2`] may run.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[allow(clippy::disallowed_types)] // a process-local cache of the CPU's answer, outside loom's models
static HAS_AVX2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// [`copy`] of more than 64 bytes. The common case, 128 bytes to 2 KiB on a
/// CPU with AVX2, is a tail call with nothing saved on the stack; the rest
/// is [`copy_long_rest`]. (`is_x86_feature_detected!` may call out to
/// detect the CPU, which made every call here save registers first.)
///
/// # Safety
///
/// As for [`copy`], with `len > 64`.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(never)]
unsafe fn copy_long(dst: *mut u8, src: *const u8, len: usize) {
    if (128..REP_MOVSB_FROM).contains(&len) && HAS_AVX2.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: the CPU has AVX2 (it was detected), and `len >= 128`.
        unsafe { copy_avx2(dst, src, len) }
    } else {
        // SAFETY: the caller's contract, with `len > 64`.
        unsafe { copy_long_rest(dst, src, len) }
    }
}

/// [`copy`] of more than 64 bytes: `rep movsb` from [`REP_MOVSB_FROM`],
/// 32-byte moves if the CPU has them, else rounds of 64 bytes and then the
/// last 64 bytes again, overlapping the rounds.
///
/// # Safety
///
/// As for [`copy`], with `len > 64`.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(never)]
unsafe fn copy_long_rest(dst: *mut u8, src: *const u8, len: usize) {
    use std::arch::asm;
    use std::sync::atomic::Ordering::Relaxed;
    debug_assert!(len > 64);
    if len >= REP_MOVSB_FROM {
        // SAFETY: `rep movsb` copies `rcx` bytes from `rsi` to `rdi`, which
        // the caller vouches for; the direction flag is clear, as the ABI
        // requires at every call.
        unsafe {
            asm!(
                "rep movsb",
                inout("rcx") len => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags)
            );
        }
        return;
    }
    if len >= 128 && std::is_x86_feature_detected!("avx2") {
        HAS_AVX2.store(true, Relaxed);
        // SAFETY: the CPU has AVX2, and `len >= 128`.
        unsafe { copy_avx2(dst, src, len) };
        return;
    }
    // SAFETY: the rounds copy `64 * ((len - 1) / 64) < len` bytes, then the
    // last 64 bytes, `len - 64..len`, within the ranges as `len > 64`.
    unsafe {
        asm!(
            "2:",
            "movdqu {a}, [{s}]",
            "movdqu {b}, [{s} + 16]",
            "movdqu {c}, [{s} + 32]",
            "movdqu {e}, [{s} + 48]",
            "movdqu [{d}], {a}",
            "movdqu [{d} + 16], {b}",
            "movdqu [{d} + 32], {c}",
            "movdqu [{d} + 48], {e}",
            "add {s}, 64",
            "add {d}, 64",
            "dec {n}",
            "jnz 2b",
            "movdqu {a}, [{se} - 64]",
            "movdqu {b}, [{se} - 48]",
            "movdqu {c}, [{se} - 32]",
            "movdqu {e}, [{se} - 16]",
            "movdqu [{de} - 64], {a}",
            "movdqu [{de} - 48], {b}",
            "movdqu [{de} - 32], {c}",
            "movdqu [{de} - 16], {e}",
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            n = inout(reg) (len - 1) / 64 => _,
            se = in(reg) src.add(len),
            de = in(reg) dst.add(len),
            a = out(xmm_reg) _,
            b = out(xmm_reg) _,
            c = out(xmm_reg) _,
            e = out(xmm_reg) _,
            options(nostack)
        );
    }
}

/// [`copy`] of 128 bytes or more with 32-byte moves: 128 bytes per round
/// while more than 128 remain, then the last 128 bytes, overlapping what the
/// rounds copied (rewriting bytes with the same values) unless `len` is a
/// multiple of 128.
///
/// # Safety
///
/// As for [`copy`], with `len >= 128`, on a CPU with AVX2.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx2")]
unsafe fn copy_avx2(dst: *mut u8, src: *const u8, len: usize) {
    use std::arch::asm;
    debug_assert!(len >= 128);
    // SAFETY: the loop copies `(len - 1) / 128 * 128 < len` bytes forwards inside
    // both ranges, and the tail the 128 bytes that end at `len`, which start
    // at `len - 128 >= 0`; `vmovdqu` has no alignment requirement.
    // `vzeroupper` leaves the upper halves clear, as SSE code expects.
    unsafe {
        asm!(
            // 128 bytes per round while they last.
            "test {n}, {n}",
            "jz 3f",
            "2:",
            "vmovdqu {a}, [{s}]",
            "vmovdqu {b}, [{s} + 32]",
            "vmovdqu {c}, [{s} + 64]",
            "vmovdqu {e}, [{s} + 96]",
            "vmovdqu [{d}], {a}",
            "vmovdqu [{d} + 32], {b}",
            "vmovdqu [{d} + 64], {c}",
            "vmovdqu [{d} + 96], {e}",
            "add {s}, 128",
            "add {d}, 128",
            "dec {n}",
            "jnz 2b",
            "3:",
            // Then the last 128 bytes, overlapping what the rounds copied.
            "vmovdqu {a}, [{se} - 128]",
            "vmovdqu {b}, [{se} - 96]",
            "vmovdqu {c}, [{se} - 64]",
            "vmovdqu {e}, [{se} - 32]",
            "vmovdqu [{de} - 128], {a}",
            "vmovdqu [{de} - 96], {b}",
            "vmovdqu [{de} - 64], {c}",
            "vmovdqu [{de} - 32], {e}",
            "vzeroupper",
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            n = inout(reg) (len - 1) / 128 => _,
            se = in(reg) src.add(len),
            de = in(reg) dst.add(len),
            a = out(ymm_reg) _,
            b = out(ymm_reg) _,
            c = out(ymm_reg) _,
            e = out(ymm_reg) _,
            options(nostack)
        );
    }
}

/// Loads `dst.len()` bytes from shared memory at `src` with relaxed atomic
/// loads (bytes until `src` is 8-aligned, then words), into private `dst`.
///
/// Only the shared side goes through atomics: an atomic made from a pointer
/// must be allowed to write, which a private `&[u8]` is not (miri's borrow
/// checker catches that).
///
/// # Safety
///
/// As for [`copy_from_shared`].
#[cfg(any(not(target_arch = "x86_64"), miri))]
unsafe fn load_shared(src: *const u8, dst: &mut [u8]) {
    let len = dst.len();
    let head = src.align_offset(WORD).min(len);
    let mut i = 0;
    while i < head {
        // SAFETY: `i < len`, inside the shared range; `AtomicU8` needs no
        // alignment.
        dst[i] = unsafe { byte(src.add(i).cast_mut()) }.load(Relaxed);
        i += 1;
    }
    while i + WORD <= len {
        // SAFETY: `src + i` is 8-aligned (after the head) and the word lies
        // inside the shared range.
        let word =
            unsafe { AtomicU64::from_ptr(src.add(i).cast::<u64>().cast_mut()) }.load(Relaxed);
        dst[i..i + WORD].copy_from_slice(&word.to_ne_bytes());
        i += WORD;
    }
    while i < len {
        // SAFETY: as for the head bytes.
        dst[i] = unsafe { byte(src.add(i).cast_mut()) }.load(Relaxed);
        i += 1;
    }
}

/// Stores private `src` into shared memory at `dst` with relaxed atomic
/// stores (bytes until `dst` is 8-aligned, then words).
///
/// # Safety
///
/// As for [`copy_to_shared`].
#[cfg(any(not(target_arch = "x86_64"), miri))]
unsafe fn store_shared(dst: *mut u8, src: &[u8]) {
    let len = src.len();
    let head = dst.align_offset(WORD).min(len);
    let mut i = 0;
    while i < head {
        // SAFETY: `i < len`, inside the shared range.
        unsafe { byte(dst.add(i)) }.store(src[i], Relaxed);
        i += 1;
    }
    while i + WORD <= len {
        let word = u64::from_ne_bytes(src[i..i + WORD].try_into().expect("a word"));
        // SAFETY: `dst + i` is 8-aligned (after the head) and the word lies
        // inside the shared range.
        unsafe { AtomicU64::from_ptr(dst.add(i).cast::<u64>()) }.store(word, Relaxed);
        i += WORD;
    }
    while i < len {
        // SAFETY: as for the head bytes.
        unsafe { byte(dst.add(i)) }.store(src[i], Relaxed);
        i += 1;
    }
}

/// # Safety
///
/// `p` is valid for reads and writes, accessed only atomically meanwhile.
#[cfg(any(not(target_arch = "x86_64"), miri))]
#[inline]
unsafe fn byte<'a>(p: *mut u8) -> &'a AtomicU8 {
    // SAFETY: the caller's contract.
    unsafe { AtomicU8::from_ptr(p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_alignment_and_length() {
        for offset in 0..12 {
            // Every path: bytes, words, 16-byte moves, 64-byte rounds, the
            // 128-byte AVX2 rounds and their overlapping tail, rep movsb.
            for len in (0..300).chain([1000, 1023, 1024, 1025, 2047, 2048, 2049, 4000]) {
                // A fresh buffer for each case: miri's weak-memory model
                // cannot yet mix byte and word atomics on one location,
                // even one after the other.
                let mut shared = vec![0u64; 1024]; // 8 KiB, 8-aligned
                let base = shared.as_mut_ptr().cast::<u8>();
                let src: Vec<u8> = (0..len).map(|i| (i * 7 + offset + 1) as u8).collect();
                // SAFETY: offset + len <= 4011 < 8192, inside `shared`.
                unsafe { copy_to_shared(base.add(offset), &src) };
                let mut back = vec![0xAA; len];
                // SAFETY: same range.
                unsafe { copy_from_shared(base.add(offset), &mut back) };
                assert_eq!(back, src, "offset {offset} len {len}");
            }
        }
    }

    /// Regression, caught by miri: the portable copy made atomics of the
    /// private side too, which needs write access that a `&[u8]` does not
    /// give (on x86-64 the copy is assembly, so only miri can tell).
    #[test]
    fn copying_in_from_a_read_only_buffer_never_asks_to_write_it() {
        static SOURCE: [u8; 37] = *b"read-only bytes, in a static's memory";
        let mut shared = vec![0u64; 8];
        let base = shared.as_mut_ptr().cast::<u8>();
        // SAFETY: 3 + 37 <= 64, inside `shared`.
        unsafe { copy_to_shared(base.add(3), &SOURCE) };
        let mut back = [0u8; 37];
        // SAFETY: the same range.
        unsafe { copy_from_shared(base.add(3), &mut back) };
        assert_eq!(back, SOURCE);
    }

    #[test]
    fn copies_of_every_width_leave_neighbouring_bytes_alone() {
        // Every length up to 300 (each short-copy class and its overlapping
        // moves), then the wide and `rep movsb` ones. Under miri, which runs
        // the atomic fallback and not the assembly, a sample (miri takes
        // seconds per case).
        let lengths: Vec<usize> = if cfg!(miri) {
            vec![0, 1, 7, 9, 33, 65]
        } else {
            (0..=300).chain([1000, 2047, 2048, 3000]).collect()
        };
        for len in lengths {
            let mut shared = vec![0u64; 512]; // 4 KiB
            let base = shared.as_mut_ptr().cast::<u8>();
            // SAFETY: 5 + len <= 3005 < 4096.
            unsafe { copy_to_shared(base.add(5), &vec![0xFF; len]) };
            // The copy and 16 bytes on either side (5 before it).
            let mut around = vec![0u8; 5 + len + 16];
            // SAFETY: 5 + 3000 + 16 < 4096, inside `shared`.
            unsafe { copy_from_shared(base, &mut around) };
            assert_eq!(&around[..5], &[0; 5], "{len}");
            assert!(around[5..5 + len].iter().all(|&b| b == 0xFF), "{len}");
            assert_eq!(&around[5 + len..], &[0; 16], "{len}");
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
