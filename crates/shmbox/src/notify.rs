//! Change notification: an event count in one futex word.
//!
//! ```text
//! notify word (u32 at header offset 136)
//! bit  0      WAITERS  some handle may be asleep waiting for a commit
//! bits 1..31  counter  bumped by a committing writer that saw WAITERS
//! ```
//!
//! A waiter sets WAITERS, then re-reads the sequence word, and sleeps only if
//! it is unchanged. A writer commits its new sequence value, then looks at the
//! notify word, and makes the wake-up system call only if WAITERS is set. All
//! four accesses are sequentially consistent (the two writes are
//! read-modify-writes), so at least one side sees the other's write: no
//! wake-up is lost, and a writer with nobody waiting makes no system call.

use std::time::Duration;

use crate::lock::Parker;
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Bit 0 of the notify word.
pub(crate) const NOTIFY_WAITERS: u32 = 1;

/// Wakes every handle waiting for a change. Called by the lock holder right
/// after it committed a new, even sequence value (`seqlock::end_write`).
#[inline]
pub(crate) fn publish(word: &AtomicU32, parker: &impl Parker) {
    if word.load(Ordering::SeqCst) & NOTIFY_WAITERS != 0 {
        wake_waiters(word, parker);
    }
}

#[cold]
fn wake_waiters(word: &AtomicU32, parker: &impl Parker) {
    // Only the lock holder publishes, and waiters only ever set bit 0, so the
    // word is still odd here: adding one clears WAITERS and bumps the counter
    // in a single step.
    word.fetch_add(1, Ordering::Relaxed);
    parker.wake_all(word);
}

/// Sleeps until `seq` no longer holds `seen`, a writer publishes, or `timeout`
/// passes. Returns `true` only if the timeout passed.
pub(crate) fn sleep_while_unchanged(
    seq: &AtomicU64,
    seen: u64,
    word: &AtomicU32,
    timeout: Option<Duration>,
    parker: &impl Parker,
) -> bool {
    let expected = word.fetch_or(NOTIFY_WAITERS, Ordering::SeqCst) | NOTIFY_WAITERS;
    if seq.load(Ordering::SeqCst) != seen {
        return false;
    }
    parker.wait(word, expected, timeout)
}

/// Waits until the generation (`seq / 2`) differs from `since`, and returns
/// it; `None` if `deadline` passed first.
pub(crate) fn wait_for_change(
    seq: &AtomicU64,
    word: &AtomicU32,
    since: u64,
    timeout: Option<Duration>,
    parker: &impl Parker,
) -> Option<u64> {
    let deadline = timeout.and_then(|t| parker.now().checked_add(t));
    loop {
        let s = seq.load(Ordering::Acquire);
        if s >> 1 != since {
            return Some(s >> 1);
        }
        let remaining = match deadline {
            Some(d) => {
                let now = parker.now();
                if now >= d {
                    return None;
                }
                Some(d - now)
            }
            None => None,
        };
        sleep_while_unchanged(seq, s, word, remaining, parker);
    }
}
