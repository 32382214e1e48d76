//! Consistent reads without the lock: a sequence lock over the data region.
//!
//! ```text
//! seq (u64 at header offset 128)
//! even  no write in progress; generation = seq / 2 = committed writes
//! odd   a write is in progress, or its writer died before committing
//! ```
//!
//! A writer holds the lock, makes `seq` odd, writes, and makes it even again.
//! A reader copies the data between two reads of `seq` and keeps the copy only
//! if both were the same even value. Its copy uses atomic loads (see
//! `shared_bytes`), so it is sound while another process writes.
//!
//! A writer that dies leaves `seq` odd. Readers notice that the lock is free
//! or that its holder is dead, and report the data as torn instead of waiting
//! for ever. The next lock holder that writes continues the odd value, and its
//! commit makes the data consistent again.

use std::time::{Duration, Instant};

use crate::lock::{FIRST_CHECK, MAX_CHECK, OWNER_MASK, Parker};
use crate::notify;
use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};

/// Starts a write. The caller holds the lock, and read `seq` as `s` since
/// it took it. Returns the odd value now in `seq`; if a writer died
/// mid-write, `seq` is odd already and stays so.
#[inline]
pub(crate) fn begin_write(seq: &AtomicU64, s: u64) -> u64 {
    let odd = if s & 1 == 0 {
        // Wrapping: the word comes from shared memory, and a hostile or
        // corrupt segment may hold any value (found by fuzzing).
        // Release: a reader that sees the odd value must also see the lock
        // word that this writer's lock wrote, or it could take a live
        // writer's lock word for a free one and report the writer dead.
        // (Found by miri's weak-memory model; on x86 the store is a plain
        // move either way.)
        seq.store(s.wrapping_add(1), Ordering::Release);
        s.wrapping_add(1)
    } else {
        s
    };
    // Orders the odd value before every data store that follows.
    fence(Ordering::Release);
    odd
}

/// Commits a write begun at `odd`. Returns the new generation. The unlock
/// that follows publishes it to watchers (see `notify.rs`).
#[inline]
pub(crate) fn end_write(seq: &AtomicU64, odd: u64) -> u64 {
    debug_assert!(odd & 1 == 1);
    let even = odd.wrapping_add(1);
    seq.store(even, Ordering::Release);
    even >> 1
}

/// Why a consistent read gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadFailure {
    /// A writer died mid-write; the data may be torn. Carries the last
    /// committed generation.
    WriterDied(u64),
    /// The deadline passed while a live writer kept writing.
    TimedOut,
}

/// Runs `copy` until it ran entirely between two equal, even sequence values,
/// and returns the generation it saw. `me` is the caller's own lock id.
///
/// The first attempt is inlined into the caller: with no writer active it
/// is two loads, the copy and a compiler fence.
#[inline]
pub(crate) fn read(
    seq: &AtomicU64,
    lock_word: &AtomicU32,
    notify_word: &AtomicU32,
    me: u32,
    timeout: Option<Duration>,
    parker: &impl Parker,
    mut copy: impl FnMut(),
) -> Result<u64, ReadFailure> {
    if let Some(generation) = try_read(seq, &mut copy) {
        return Ok(generation);
    }
    read_contended(seq, lock_word, notify_word, me, timeout, parker, &mut copy)
}

/// One attempt of [`read`], for a caller's fast path: the generation if
/// `copy` ran entirely between two equal, even sequence values, else `None`
/// (a writer got in the way; use `read`).
#[inline(always)]
pub(crate) fn try_read(seq: &AtomicU64, copy: impl FnOnce()) -> Option<u64> {
    let s1 = seq.load(Ordering::Acquire);
    if s1 & 1 == 0 {
        copy();
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) == s1 {
            return Some(s1 >> 1);
        }
    }
    None
}

/// `read` once a writer got in the way: spins, yields, then sleeps until
/// the commit, checking that the writer still lives.
#[cold]
#[inline(never)]
fn read_contended(
    seq: &AtomicU64,
    lock_word: &AtomicU32,
    notify_word: &AtomicU32,
    me: u32,
    timeout: Option<Duration>,
    parker: &impl Parker,
    copy: &mut impl FnMut(),
) -> Result<u64, ReadFailure> {
    let mut busy_rounds = 0u32;
    let mut deadline: Option<Option<Instant>> = None;
    let mut interval = FIRST_CHECK;
    loop {
        let s1 = seq.load(Ordering::Acquire);
        if s1 & 1 == 0 {
            copy();
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == s1 {
                return Ok(s1 >> 1);
            }
        }
        busy_rounds += 1;
        if busy_rounds <= 3 {
            for _ in 0..(1 << busy_rounds) {
                crate::sync::spin_loop();
            }
            continue;
        }
        if busy_rounds <= 10 {
            crate::sync::yield_now();
            continue;
        }
        let now = parker.now();
        // Computed only once the read has to wait: the clock costs time.
        let deadline = *deadline.get_or_insert_with(|| timeout.and_then(|t| now.checked_add(t)));
        let remaining = match deadline {
            Some(d) if now >= d => return Err(ReadFailure::TimedOut),
            Some(d) => (d - now).min(interval),
            None => interval,
        };
        let current = seq.load(Ordering::Acquire);
        if current & 1 == 0 {
            // Stable again: a fresh chance for a whole copy.
            continue;
        }
        // A write is in progress: its writer holds the lock, unless it died.
        let owner = lock_word.load(Ordering::Acquire) & OWNER_MASK;
        let holder_gone = owner == 0 || (owner != me && !parker.is_alive(owner));
        if holder_gone {
            if seq.load(Ordering::Acquire) == current {
                return Err(ReadFailure::WriterDied(current >> 1));
            }
            continue;
        }
        // Sleep until the commit; wake now and then to ask whether the
        // writer still lives.
        if notify::sleep_while_unchanged(
            seq,
            current,
            notify_word,
            lock_word,
            Some(remaining),
            parker,
        ) {
            interval = (interval * 2).min(MAX_CHECK);
        }
    }
}
