//! The cross-process lock, written once over the [`Parker`] interface.
//!
//! The lock is one 32-bit word in the segment header:
//!
//! ```text
//! bits 0..=28  OWNER     lock id of the handle that holds it; 0 when free
//! bit  29      HANDOFF   a waiter has waited too long: a freed lock is kept
//!                        for a waiter that has already slept
//! bit  30      WATCHERS  some handle waits for a commit (`notify.rs`): the
//!                        unlock that follows a commit must wake it
//! bit  31      WAITERS   some handle may be asleep in a futex wait on the word
//! ```
//!
//! | word                    | state                                               |
//! |-------------------------|-----------------------------------------------------|
//! | `0`                     | free                                                |
//! | `id`                    | held by `id`; nobody asleep                         |
//! | `id│WAITERS`            | held; sleepers may exist, so unlock wakes one       |
//! | `id│WAITERS│HANDOFF`    | held; a sleeper is starving, so unlock hands off    |
//! | `WAITERS│HANDOFF`       | free, but reserved for a waiter that has slept      |
//!
//! | transition        | from → to                                                  |
//! |-------------------|------------------------------------------------------------|
//! | lock, fast path   | `0` → `id` (one CAS, no system call)                       |
//! | lock, slow path   | free → `id`, with `WAITERS` kept (or set once we slept)    |
//! | sleep             | held → held│`WAITERS` (│`HANDOFF` when starving), then wait |
//! | unlock, fast path | `id` → `0` (one CAS, no system call)                       |
//! | unlock, slow path | `id│WAITERS` → `0`, wake one                               |
//! | hand-off          | `id│WAITERS│HANDOFF` → `WAITERS│HANDOFF`, wake one         |
//! | watch             | any → any│`WATCHERS` (`notify.rs`)                         |
//! | unlock, watched   | `id│WATCHERS` → `0` after a commit (watchers are woken),   |
//! |                   | or → `WATCHERS` when nothing was committed                 |
//! | recovery          | `dead│flags` → `id│flags`, once `dead` is proven dead      |
//!
//! WATCHERS lives here, rather than beside the notify counter, because the
//! unlock is an atomic read-modify-write anyway: it both publishes the
//! commit that came before it and reads whether anyone watches, so a commit
//! costs plain stores and a writer with no watchers makes no system call.
//! The lock's other transitions carry WATCHERS along unchanged.
//!
//! Hand-offs are what keep a process from starving while others barge in,
//! but each costs a wake-up on the waiter's side, so they are rationed: at
//! most one per [`HANDOFF_INTERVAL_MS`] for the whole segment, timed by a
//! second header word (`handoff_at_ms`, on the system's monotonic clock).
//! This is parking_lot's "eventual fairness", made to work across processes.
//!
//! A lock id belongs to one open handle, which proves it is alive by holding a
//! kernel lock that the kernel drops when the process dies (see `sys`). So a
//! dead holder is recognised without trusting pids, which the system reuses.
//! A waiter that takes the lock over from a dead holder first reserves the
//! dead id ([`Parker::reserve_dead`]) and makes its compare-and-swap while it
//! holds the reservation: no new handle can be given that id meanwhile, so
//! the owner it replaces is the dead one, never a live newcomer with the same
//! id (ABA).
//! Waiters sleep in the kernel and are woken by unlock; they also wake on a
//! short, growing timer ([`FIRST_CHECK`] up to [`MAX_CHECK`]) to ask whether the
//! holder is still alive, because nothing wakes a futex waiter when a process
//! dies.

use std::time::{Duration, Instant};

use crate::sync::{AtomicU32, Ordering};

/// Bits of the lock word that hold the owner's lock id.
pub(crate) const OWNER_MASK: u32 = (1 << 29) - 1;
/// A starving waiter asked for the lock to be handed to a waiter that slept.
pub(crate) const HANDOFF: u32 = 1 << 29;
/// Some handle waits for a commit; see `notify.rs`.
pub(crate) const WATCHERS: u32 = 1 << 30;
/// Some handle may be asleep on the word.
pub(crate) const WAITERS: u32 = 1 << 31;

/// First interval after which a sleeping waiter checks that the holder lives.
pub(crate) const FIRST_CHECK: Duration = Duration::from_millis(1);
/// The longest such interval: a dead holder is noticed within about this long.
pub(crate) const MAX_CHECK: Duration = Duration::from_millis(4);
/// A waiter that has waited this long asks for a hand-off, so that no process
/// starves while others barge in.
pub(crate) const STARVATION: Duration = Duration::from_millis(2);
/// At most one hand-off per this many milliseconds, segment-wide.
pub(crate) const HANDOFF_INTERVAL_MS: u32 = 1;

/// What the lock, seqlock and notification algorithms need from the OS.
pub(crate) trait Parker {
    /// Sleeps while `word` holds `expected`, for at most `timeout` (forever if
    /// `None`). May return early for any reason. Returns `true` only when the
    /// timeout passed.
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool;
    /// Wakes one handle asleep on `word`.
    fn wake_one(&self, word: &AtomicU32);
    /// Wakes every handle asleep on `word`.
    fn wake_all(&self, word: &AtomicU32);
    /// Whether the handle that owns lock id `id` is still open. When the answer
    /// cannot be known, this says `true`: a live holder must never lose its lock.
    fn is_alive(&self, id: u32) -> bool;
    /// Proof that no open handle has lock id `id`, which keeps any handle
    /// from being given that id until it is dropped.
    type Reservation<'r>
    where
        Self: 'r;
    /// If no open handle has lock id `id`, reserves it until the result is
    /// dropped. `None` if a handle has it, another reservation holds it, or
    /// the answer cannot be known.
    fn reserve_dead(&self, id: u32) -> Option<Self::Reservation<'_>>;
    /// The current time.
    fn now(&self) -> Instant {
        Instant::now()
    }
    /// Milliseconds on a clock that every process of the machine shares
    /// (wrapping). It may be coarse.
    fn shared_clock_ms(&self) -> u32;
    /// Whether the shared memory itself was lost (its file cut short), so
    /// that no other process can wake a waiter any more.
    fn lost(&self) -> bool {
        false
    }
}

/// Takes the lock word for `id` while holding the backend's OS mutex
/// (`sys::OS_MUTEX`), which already excludes every other shmbox handle: an
/// owner still recorded in the word is one that ended without unlocking.
/// Flag bits are kept (watchers may set theirs meanwhile). Returns whether
/// such a stale owner was replaced.
#[cfg_attr(not(any(windows, loom)), allow(dead_code))]
pub(crate) fn take_under_os_mutex(word: &AtomicU32, id: u32) -> bool {
    let mut current = word.load(Ordering::Relaxed);
    loop {
        let next = (current & !OWNER_MASK) | id;
        match word.compare_exchange_weak(current, next, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return current & OWNER_MASK != 0,
            Err(now) => current = now,
        }
    }
}

/// How the lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// From a live holder, or free.
    Clean,
    /// Taken over from a holder that died while holding it.
    OwnerDied,
}

/// Bounded spinning before sleeping, as in parking_lot's `SpinWait`.
struct SpinWait(u32);

impl SpinWait {
    /// Spins a little longer each time; false once it is time to sleep.
    fn spin(&mut self) -> bool {
        if self.0 >= 10 {
            return false;
        }
        self.0 += 1;
        if self.0 <= 3 {
            for _ in 0..(1 << self.0) {
                crate::sync::spin_loop();
            }
        } else {
            crate::sync::yield_now();
        }
        true
    }
}

/// The fast path: one CAS from free to held.
#[inline]
#[cfg_attr(windows, allow(dead_code))]
pub(crate) fn try_lock_fast(word: &AtomicU32, me: u32) -> bool {
    word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Takes the lock if that needs no waiting: it is free, or its holder is dead.
#[cfg_attr(windows, allow(dead_code))] // Windows tries its mutex instead
pub(crate) fn try_lock(word: &AtomicU32, me: u32, parker: &impl Parker) -> Option<Acquired> {
    debug_assert!(me != 0 && me & !OWNER_MASK == 0);
    let mut w = word.load(Ordering::Relaxed);
    loop {
        let owner = w & OWNER_MASK;
        if owner == 0 {
            // Free, or reserved for a sleeper; try_lock does not wait, so it
            // takes a reserved lock too. WAITERS stays so sleepers are woken.
            let new = me | (w & (WAITERS | WATCHERS));
            match word.compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(Acquired::Clean),
                Err(current) => w = current,
            }
        } else if owner != me {
            match take_over(word, owner, me, 0, parker) {
                TakeOver::Taken => return Some(Acquired::OwnerDied),
                TakeOver::Alive => return None,
                TakeOver::Changed => w = word.load(Ordering::Relaxed),
            }
        } else {
            return None;
        }
    }
}

/// What an attempt to take the lock over from `owner` came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TakeOver {
    /// `owner` was dead; the lock is now ours.
    Taken,
    /// `owner` lives (or that cannot be known).
    Alive,
    /// The word no longer names `owner`: look again.
    Changed,
}

/// Takes the lock from `owner` if it is dead, keeping the word's flags and
/// adding `extra`. The compare-and-swap runs while the dead id is reserved,
/// so it cannot replace a live handle that was given the same id after the
/// check (see the module documentation).
#[cold]
fn take_over(word: &AtomicU32, owner: u32, me: u32, extra: u32, parker: &impl Parker) -> TakeOver {
    let Some(reservation) = parker.reserve_dead(owner) else {
        return TakeOver::Alive;
    };
    let mut w = word.load(Ordering::Relaxed);
    let taken = loop {
        if w & OWNER_MASK != owner {
            break TakeOver::Changed;
        }
        let new = me | (w & (WAITERS | HANDOFF | WATCHERS)) | extra;
        match word.compare_exchange_weak(w, new, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => break TakeOver::Taken,
            Err(current) => w = current,
        }
    };
    drop(reservation);
    taken
}

/// Takes the lock, waiting up to `timeout` (forever if `None`).
/// Returns `None` on timeout. (The Linux backend inlines the fast path
/// itself.)
#[cfg_attr(not(any(test, loom, miri)), allow(dead_code))]
#[inline]
pub(crate) fn lock(
    word: &AtomicU32,
    me: u32,
    timeout: Option<Duration>,
    parker: &impl Parker,
) -> Option<Acquired> {
    if try_lock_fast(word, me) {
        return Some(Acquired::Clean);
    }
    lock_slow(word, me, timeout, parker)
}

#[cold]
#[cfg_attr(windows, allow(dead_code))]
pub(crate) fn lock_slow(
    word: &AtomicU32,
    me: u32,
    timeout: Option<Duration>,
    parker: &impl Parker,
) -> Option<Acquired> {
    debug_assert!(me != 0 && me & !OWNER_MASK == 0);
    let started = parker.now();
    let deadline = timeout.and_then(|t| started.checked_add(t));
    let mut spin = SpinWait(0);
    let mut slept = false;
    let mut check_owner = true;
    let mut interval = FIRST_CHECK;
    loop {
        let w = word.load(Ordering::Relaxed);
        let owner = w & OWNER_MASK;

        // Free: take it, unless it is reserved for a waiter that slept and we
        // have not. Once we slept, other sleepers may exist: keep WAITERS set.
        if owner == 0 && (w & HANDOFF == 0 || slept) {
            let waiters = if slept { WAITERS } else { w & WAITERS };
            if word
                .compare_exchange_weak(
                    w,
                    me | waiters | (w & WATCHERS),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return Some(Acquired::Clean);
            }
            continue;
        }

        // Spin only while nobody sleeps: a sleeper would be woken first.
        if w & WAITERS == 0 && spin.spin() {
            continue;
        }

        if owner != 0 && owner != me && check_owner {
            check_owner = false;
            match take_over(word, owner, me, if slept { WAITERS } else { 0 }, parker) {
                TakeOver::Taken => return Some(Acquired::OwnerDied),
                TakeOver::Alive => {}
                TakeOver::Changed => {
                    check_owner = true;
                    continue;
                }
            }
        }

        let now = parker.now();
        let remaining = match deadline {
            Some(d) if now >= d => return None,
            Some(d) => Some(d - now),
            None => None,
        };
        let mut sleeping = w | WAITERS;
        if owner != 0 && now.duration_since(started) >= STARVATION {
            sleeping |= HANDOFF;
        }
        if sleeping != w
            && word
                .compare_exchange_weak(w, sleeping, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let slice = remaining.map_or(interval, |r| r.min(interval));
        let timed_out = parker.wait(word, sleeping, Some(slice));
        slept = true;
        if timed_out {
            // Nobody unlocked for a whole interval: ask again whether the
            // holder lives, and wait longer before the next question.
            check_owner = true;
            interval = (interval * 2).min(MAX_CHECK);
        }
    }
}

/// What an unlock did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unlocked {
    /// Released.
    Released,
    /// Released after a commit, with watchers to wake (`notify::wake_watchers`).
    ReleasedWakeWatchers,
    /// Not held by `me` (it was taken over: see [`Parker::is_alive`]);
    /// nothing changed.
    NotOwner,
}

/// The unlock's fast path: one CAS from held by `me`, with nobody waiting or
/// watching, to free. `false` if the word holds anything else.
#[inline]
#[cfg_attr(windows, allow(dead_code))]
pub(crate) fn unlock_fast(word: &AtomicU32, me: u32) -> bool {
    // Release ordering publishes everything written under the lock.
    word.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

/// Releases the lock held by `me`. `committed` says whether a write was
/// committed under it; `handoff_at` is the segment's hand-off ration word.
#[inline]
pub(crate) fn unlock(
    word: &AtomicU32,
    handoff_at: &AtomicU32,
    me: u32,
    committed: bool,
    parker: &impl Parker,
) -> Unlocked {
    // Release ordering publishes everything written under the lock,
    // including a commit, to whoever next reads the word: a locker, or a
    // watcher setting WATCHERS (see `notify.rs`).
    if word
        .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
    {
        return Unlocked::Released;
    }
    unlock_slow(word, handoff_at, me, committed, parker)
}

#[cold]
fn unlock_slow(
    word: &AtomicU32,
    handoff_at: &AtomicU32,
    me: u32,
    committed: bool,
    parker: &impl Parker,
) -> Unlocked {
    let mut w = word.load(Ordering::Relaxed);
    // Decided once: whether a hand-off is due, if a waiter asks for one.
    let mut now_if_due: Option<Option<u32>> = None;
    loop {
        if w & OWNER_MASK != me {
            return Unlocked::NotOwner;
        }
        let due = w & HANDOFF != 0
            && now_if_due
                .get_or_insert_with(|| {
                    let now = parker.shared_clock_ms();
                    let at = handoff_at.load(Ordering::Relaxed);
                    (now.wrapping_sub(at) as i32 >= 0).then_some(now)
                })
                .is_some();
        // Without a hand-off the lock is simply freed, and HANDOFF dropped:
        // a still-starving waiter sets it again before it next sleeps.
        // Watchers stay until a commit wakes them.
        let mut new = if due { HANDOFF | WAITERS } else { 0 };
        if !committed {
            new |= w & WATCHERS;
        }
        match word.compare_exchange_weak(w, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => {
                if let (true, Some(Some(now))) = (due, now_if_due) {
                    handoff_at.store(now.wrapping_add(HANDOFF_INTERVAL_MS), Ordering::Relaxed);
                }
                break;
            }
            Err(current) => w = current,
        }
    }
    if w & WAITERS != 0 {
        parker.wake_one(word);
    }
    if committed && w & WATCHERS != 0 {
        Unlocked::ReleasedWakeWatchers
    } else {
        Unlocked::Released
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    /// A parker for one process: futex waits become short sleeps, and the set
    /// of live ids is explicit.
    #[derive(Default)]
    struct TestParker {
        dead: Mutex<HashSet<u32>>,
        clock_ms: AtomicU32,
    }

    impl Parker for TestParker {
        fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
            if word.load(Ordering::Relaxed) == expected {
                std::thread::sleep(
                    timeout
                        .unwrap_or(Duration::from_millis(1))
                        .min(Duration::from_micros(200)),
                );
            }
            false
        }
        fn wake_one(&self, _: &AtomicU32) {}
        fn wake_all(&self, _: &AtomicU32) {}
        fn is_alive(&self, id: u32) -> bool {
            !self.dead.lock().unwrap().contains(&id)
        }
        type Reservation<'r> = ();
        fn reserve_dead(&self, id: u32) -> Option<()> {
            (!self.is_alive(id)).then_some(())
        }
        fn shared_clock_ms(&self) -> u32 {
            self.clock_ms.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn uncontended_lock_and_unlock_leave_a_clean_word() {
        let word = AtomicU32::new(0);
        let p = TestParker::default();
        assert_eq!(lock(&word, 7, None, &p), Some(Acquired::Clean));
        assert_eq!(word.load(Ordering::Relaxed), 7);
        assert_eq!(
            unlock(&word, &AtomicU32::new(0), 7, true, &p),
            Unlocked::Released
        );
        assert_eq!(word.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn watchers_survive_locking_and_are_woken_by_a_commit_only() {
        let word = AtomicU32::new(WATCHERS);
        let none = AtomicU32::new(0);
        let p = TestParker::default();
        // The fast path misses, the slow path keeps the bit.
        assert_eq!(lock(&word, 7, None, &p), Some(Acquired::Clean));
        assert_eq!(word.load(Ordering::Relaxed), 7 | WATCHERS);
        // No commit: the bit stays for the next writer.
        assert_eq!(unlock(&word, &none, 7, false, &p), Unlocked::Released);
        assert_eq!(word.load(Ordering::Relaxed), WATCHERS);
        assert_eq!(try_lock(&word, 8, &p), Some(Acquired::Clean));
        assert_eq!(word.load(Ordering::Relaxed), 8 | WATCHERS);
        // A commit: the bit goes, and the caller is told to wake them.
        assert_eq!(
            unlock(&word, &none, 8, true, &p),
            Unlocked::ReleasedWakeWatchers
        );
        assert_eq!(word.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn try_lock_fails_on_a_live_holder_and_takes_over_a_dead_one() {
        let word = AtomicU32::new(5 | WAITERS);
        let p = TestParker::default();
        assert_eq!(try_lock(&word, 7, &p), None);
        p.dead.lock().unwrap().insert(5);
        assert_eq!(try_lock(&word, 7, &p), Some(Acquired::OwnerDied));
        assert_eq!(word.load(Ordering::Relaxed), 7 | WAITERS);
    }

    #[test]
    fn lock_times_out_on_a_live_holder() {
        let word = AtomicU32::new(5);
        let p = TestParker::default();
        let started = Instant::now();
        assert_eq!(lock(&word, 7, Some(Duration::from_millis(20)), &p), None);
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(word.load(Ordering::Relaxed) & OWNER_MASK, 5);
    }

    #[test]
    fn unlock_by_a_non_owner_changes_nothing() {
        let word = AtomicU32::new(5 | WAITERS);
        let p = TestParker::default();
        assert_eq!(
            unlock(&word, &AtomicU32::new(0), 7, true, &p),
            Unlocked::NotOwner
        );
        assert_eq!(word.load(Ordering::Relaxed), 5 | WAITERS);
    }

    #[test]
    fn unlock_hands_off_when_a_waiter_starves_at_most_once_per_interval() {
        let word = AtomicU32::new(5 | WAITERS | HANDOFF);
        let handoff_at = AtomicU32::new(0);
        let p = TestParker::default();
        p.clock_ms.store(100, Ordering::Relaxed);
        assert_eq!(unlock(&word, &handoff_at, 5, true, &p), Unlocked::Released);
        assert_eq!(word.load(Ordering::Relaxed), WAITERS | HANDOFF);
        assert_eq!(
            handoff_at.load(Ordering::Relaxed),
            100 + HANDOFF_INTERVAL_MS
        );
        // A newcomer that has not slept must not barge in on the fast path.
        assert!(!try_lock_fast(&word, 9));

        // Within the interval the next request only frees the lock.
        word.store(6 | WAITERS | HANDOFF, Ordering::Relaxed);
        assert_eq!(unlock(&word, &handoff_at, 6, true, &p), Unlocked::Released);
        assert_eq!(word.load(Ordering::Relaxed), 0);

        // After it, a hand-off again; the clock may wrap.
        p.clock_ms
            .store(100 + HANDOFF_INTERVAL_MS, Ordering::Relaxed);
        word.store(6 | WAITERS | HANDOFF, Ordering::Relaxed);
        assert_eq!(unlock(&word, &handoff_at, 6, true, &p), Unlocked::Released);
        assert_eq!(word.load(Ordering::Relaxed), WAITERS | HANDOFF);
        handoff_at.store(u32::MAX, Ordering::Relaxed);
        p.clock_ms.store(3, Ordering::Relaxed);
        word.store(6 | WAITERS | HANDOFF, Ordering::Relaxed);
        assert_eq!(unlock(&word, &handoff_at, 6, true, &p), Unlocked::Released);
        assert_eq!(word.load(Ordering::Relaxed), WAITERS | HANDOFF);
    }

    #[test]
    fn threads_count_exactly() {
        let word = Arc::new(AtomicU32::new(0));
        let p = Arc::new(TestParker::default());
        let counter = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (1..=4)
            .map(|id| {
                let (word, p, counter) = (word.clone(), p.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        lock(&word, id, None, &*p).unwrap();
                        // try_lock on the std mutex proves mutual exclusion.
                        *counter.try_lock().expect("two holders at once") += 1;
                        assert_eq!(
                            unlock(&word, &AtomicU32::new(0), id, true, &*p),
                            Unlocked::Released
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*counter.lock().unwrap(), 8000);
        assert_eq!(word.load(Ordering::Relaxed) & OWNER_MASK, 0);
    }
}
