//! A futex for one shared word, built from a counting semaphore and a count of
//! sleepers in shared memory: what the Windows backend waits with, because
//! `WaitOnAddress` does not cross processes. Written over the [`Semaphore`]
//! interface and the crate's atomics so that loom checks it (`loom_models.rs`).
//!
//! ```text
//! wait(word, expected):  sleepers += 1; if word != expected: leave
//!                        else take a unit (up to the timeout)
//!                        leaving without a unit: sleepers -= 1 if > 0,
//!                        else take the unit released for us, without waiting
//! wake():                n = swap(sleepers, 0); release n units
//! ```
//!
//! The increment and the re-read of the word, and the waker's change of the
//! word and its swap, are sequentially consistent, so either the waiter sees
//! the new word, or the waker counts the waiter and releases a unit for it:
//! no wake-up is lost. A waiter that leaves without a unit gives back its
//! registration, or the unit released for it, so units do not pile up and
//! cause spurious wake-ups for ever. What can remain is a unit released
//! after such a waiter looked (it takes back nothing then), or one for a
//! waiter killed while registered: a later waiter takes it as a spurious
//! wake-up, which the algorithms above this allow and which uses it up.

use std::time::Duration;

use crate::sync::{AtomicU32, Ordering, fence};

/// A counting semaphore that every process of the segment shares.
pub(crate) trait Semaphore {
    /// Takes one unit, waiting up to `timeout` (for ever if `None`; not at
    /// all if zero). Returns whether it took one.
    fn acquire(&self, timeout: Option<Duration>) -> bool;
    /// Adds `units` units.
    fn release(&self, units: u32);
}

/// Sleeps while `word` holds `expected`, registered in `sleepers`. Returns
/// `true` only if the timeout passed. May return early for any reason.
pub(crate) fn wait(
    sleepers: &AtomicU32,
    word: &AtomicU32,
    expected: u32,
    timeout: Option<Duration>,
    semaphore: &impl Semaphore,
) -> bool {
    sleepers.fetch_add(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    let timed_out = if word.load(Ordering::SeqCst) != expected {
        false
    } else if semaphore.acquire(timeout) {
        return false; // the unit released for us
    } else {
        true
    };
    take_back(sleepers, semaphore);
    timed_out
}

/// Undoes one registration of a waiter that took no unit.
fn take_back(sleepers: &AtomicU32, semaphore: &impl Semaphore) {
    let mut n = sleepers.load(Ordering::SeqCst);
    while n > 0 {
        match sleepers.compare_exchange_weak(n, n - 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return,
            Err(now) => n = now,
        }
    }
    // A waker counted us already: take its unit, if it is there yet.
    semaphore.acquire(Some(Duration::ZERO));
}

/// Wakes every registered sleeper. The caller changed the word first.
pub(crate) fn wake_all(sleepers: &AtomicU32, semaphore: &impl Semaphore) {
    fence(Ordering::SeqCst);
    let n = sleepers.swap(0, Ordering::SeqCst);
    if n > 0 {
        semaphore.release(n);
    }
}
