//! Change notification.
//!
//! ```text
//! notify word (u32 at header offset 136): a counter, bumped each time a
//!   committing writer wakes the watchers
//! WATCHERS (bit 30 of the lock word): someone waits for a commit
//! ```
//!
//! A watcher reads the counter, sets WATCHERS in the lock word, then
//! re-reads the sequence word and sleeps on the counter only if nothing
//! was committed. A writer commits with a plain store and then unlocks; the
//! unlock is a read-modify-write of the lock word, so either the watcher's
//! flag comes first (the unlock sees it, bumps the counter and wakes), or the
//! unlock comes first (the watcher's read-modify-write then synchronizes
//! with it and sees the commit). No wake-up is lost, and a writer with
//! nobody watching makes no system call. A watcher that sets the flag just
//! after a writer bumped the counter finds the counter changed when it
//! sleeps, and looks again.

use std::time::Duration;

use crate::lock::{Parker, WATCHERS};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// The longest single sleep of a waiter: it then asks whether the memory
/// was lost (`Parker::lost`).
const LOST_CHECK: Duration = Duration::from_secs(1);

/// How long a spinning waiter spins without yielding its CPU.
const PURE_SPIN: Duration = Duration::from_micros(2);

/// Wakes every watcher. Called after an unlock that followed a commit found
/// WATCHERS set (`lock::Unlocked::ReleasedWakeWatchers`), or after a lock was
/// taken over from a holder that may have committed and died before waking.
#[cold]
pub(crate) fn wake_watchers(notify: &AtomicU32, parker: &impl Parker) {
    notify.fetch_add(1, Ordering::Release);
    parker.wake_all(notify);
}

/// Sleeps until `seq` no longer holds `seen`, a writer wakes the watchers,
/// or `timeout` passes. Returns `true` only if the timeout passed.
pub(crate) fn sleep_while_unchanged(
    seq: &AtomicU64,
    seen: u64,
    notify: &AtomicU32,
    lock_word: &AtomicU32,
    timeout: Option<Duration>,
    parker: &impl Parker,
) -> bool {
    let counter = notify.load(Ordering::Acquire);
    lock_word.fetch_or(WATCHERS, Ordering::AcqRel);
    if seq.load(Ordering::Acquire) != seen {
        return false;
    }
    parker.wait(notify, counter, timeout)
}

/// Waits until the generation (`seq / 2`) differs from `since`, and returns
/// it; `None` if the timeout passed first, or the memory was lost. Spins for up to `spin` before it
/// sleeps: a waiter on another CPU then sees a commit within nanoseconds
/// instead of after a wake-up, at the price of that CPU time.
pub(crate) fn wait_for_change(
    seq: &AtomicU64,
    notify: &AtomicU32,
    lock_word: &AtomicU32,
    since: u64,
    timeout: Option<Duration>,
    spin: Duration,
    parker: &impl Parker,
) -> Option<u64> {
    let s = seq.load(Ordering::Acquire);
    if s >> 1 != since {
        return Some(s >> 1);
    }
    let started = parker.now();
    let deadline = timeout.and_then(|t| started.checked_add(t));
    if !spin.is_zero() {
        let spin = timeout.map_or(spin, |t| spin.min(t));
        loop {
            // Read the clock only now and then: it costs more than a load.
            for _ in 0..16 {
                let s = seq.load(Ordering::Acquire);
                if s >> 1 != since {
                    return Some(s >> 1);
                }
                crate::sync::spin_loop();
            }
            let spun = parker.now().duration_since(started);
            if spun >= spin {
                break;
            }
            // After a couple of microseconds, let a writer that may share
            // this CPU run: spinning cannot help it.
            if spun >= PURE_SPIN {
                crate::sync::yield_now();
            }
        }
    }
    loop {
        let s = seq.load(Ordering::Acquire);
        if s >> 1 != since {
            return Some(s >> 1);
        }
        if parker.lost() {
            return None;
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
        // In slices: once the memory is lost, nothing would wake a sleeper.
        let slice = remaining.map_or(LOST_CHECK, |r| r.min(LOST_CHECK));
        sleep_while_unchanged(seq, s, notify, lock_word, Some(slice), parker);
    }
}
