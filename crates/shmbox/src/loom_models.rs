//! Model checking of the lock, the seqlock and change notification with loom.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p shmbox --lib --release loom
//! ```
//!
//! Threads stand in for processes: each has its own lock id, as each handle
//! does. The [`LoomParker`] models the kernel:
//!
//! - a futex whose wait checks the word and goes to sleep atomically with
//!   respect to wakes (one mutex and condition variable, as the kernel's hash
//!   bucket lock does), so a lost wake-up shows as a deadlock, which loom
//!   reports;
//! - timeouts that never fire, unless a holder has "died": then a timed wait
//!   returns at once as timed out, as the real one would after a while;
//! - a clock that moves 1 ms at every reading, so that the paths that depend
//!   on time (starvation hand-offs, spinning) are explored deterministically;
//! - liveness: a thread "dies" by marking its lock id dead and leaving
//!   without unlocking, as a killed process does. A dead id can be
//!   reserved by a takeover, and given to a new handle (`reopen_as`) only
//!   while nobody reserves it and the lock word does not name it, as the
//!   kernel's byte-range locks do on Linux.
#![allow(clippy::disallowed_types)] // the model's own bookkeeping is not shared memory
#![allow(unsafe_code)] // loom's UnsafeCell, to catch data races

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::time::{Duration, Instant};

use loom::sync::{Arc, Condvar, Mutex};

use crate::lock::{self, Acquired, HANDOFF, OWNER_MASK, Parker, Unlocked, WAITERS};
use crate::sem_futex::{self, Semaphore};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::{notify, seqlock};

/// The kernel, as far as the algorithms can tell.
struct LoomParker {
    /// Futex wake-ups so far; a sleeper waits for it to move.
    wakes: Mutex<u64>,
    woken: Condvar,
    ids: std::sync::Mutex<Ids>,
    base: Instant,
    ticks: StdAtomicU64,
}

/// Which lock ids no handle has, and which of those a takeover reserves.
#[derive(Default)]
struct Ids {
    dead: HashSet<u32>,
    reserved: HashSet<u32>,
}

/// A dead id held by a takeover until dropped.
struct Reserved<'a> {
    parker: &'a LoomParker,
    id: u32,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.parker.ids.lock().unwrap().reserved.remove(&self.id);
    }
}

impl LoomParker {
    fn new() -> LoomParker {
        LoomParker {
            wakes: Mutex::new(0),
            woken: Condvar::new(),
            ids: std::sync::Mutex::new(Ids::default()),
            base: Instant::now(),
            ticks: StdAtomicU64::new(0),
        }
    }

    /// Marks `id` dead, and lets sleepers with a timer notice, as their
    /// timers would.
    fn die(&self, id: u32) {
        let _wakes = self.wakes.lock().unwrap();
        self.ids.lock().unwrap().dead.insert(id);
        self.woken.notify_all();
    }

    fn anyone_dead(&self) -> bool {
        !self.ids.lock().unwrap().dead.is_empty()
    }

    /// A new handle is given lock id `id`, as opening a segment picks one:
    /// only if no live handle has it, no takeover reserves it, and the lock
    /// word does not name it (`claim_lock_id` in sys/linux.rs).
    fn reopen_as(&self, id: u32, word: &AtomicU32) -> bool {
        let mut ids = self.ids.lock().unwrap();
        if !ids.dead.contains(&id) || ids.reserved.contains(&id) {
            return false;
        }
        if word.load(Ordering::SeqCst) & OWNER_MASK == id {
            return false;
        }
        ids.dead.remove(&id);
        true
    }
}

impl Parker for LoomParker {
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        let mut wakes = self.wakes.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return false;
        }
        let seen = *wakes;
        loop {
            if *wakes != seen {
                return false;
            }
            if timeout.is_some() && self.anyone_dead() {
                // Nobody wakes a waiter for a dead holder: its timer does.
                // Time passes meanwhile: let the others run first, or a
                // waiter that cannot take over yet would spin for ever.
                drop(wakes);
                loom::thread::yield_now();
                return true;
            }
            wakes = self.woken.wait(wakes).unwrap();
        }
    }

    fn wake_one(&self, _word: &AtomicU32) {
        // Waking every sleeper is allowed: a futex wait may return early
        // for any reason, and the algorithms must cope.
        self.wake_all(_word);
    }

    fn wake_all(&self, _word: &AtomicU32) {
        let mut wakes = self.wakes.lock().unwrap();
        *wakes += 1;
        self.woken.notify_all();
    }

    fn is_alive(&self, id: u32) -> bool {
        !self.ids.lock().unwrap().dead.contains(&id)
    }

    type Reservation<'r> = Reserved<'r>;

    fn reserve_dead(&self, id: u32) -> Option<Reserved<'_>> {
        let mut ids = self.ids.lock().unwrap();
        if !ids.dead.contains(&id) || !ids.reserved.insert(id) {
            return None;
        }
        Some(Reserved { parker: self, id })
    }

    fn now(&self) -> Instant {
        let ticks = self.ticks.fetch_add(1, StdOrdering::Relaxed);
        self.base + Duration::from_millis(ticks)
    }

    fn shared_clock_ms(&self) -> u32 {
        self.ticks.load(StdOrdering::Relaxed) as u32
    }
}

/// The segment's header words, as the algorithms see them.
struct Words {
    lock_word: AtomicU32,
    handoff_at: AtomicU32,
    seq: AtomicU64,
    notify: AtomicU32,
    /// Two words of data that every write sets to the same value.
    data: [AtomicU64; 2],
}

impl Words {
    fn new() -> Words {
        Words {
            lock_word: AtomicU32::new(0),
            handoff_at: AtomicU32::new(0),
            seq: AtomicU64::new(0),
            notify: AtomicU32::new(0),
            data: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Locks as `me`, writes `value` to both data words, commits, unlocks
    /// and wakes watchers, as `Segment::write` does. Returns the generation.
    fn write(&self, me: u32, value: u64, parker: &LoomParker) -> u64 {
        let acquired = lock::lock(&self.lock_word, me, None, parker);
        assert!(acquired.is_some(), "a lock without timeout always comes");
        let odd = seqlock::begin_write(&self.seq, self.seq.load(Ordering::Relaxed));
        for word in &self.data {
            word.store(value, Ordering::Relaxed);
        }
        let generation = seqlock::end_write(&self.seq, odd);
        self.unlock(me, true, parker);
        generation
    }

    fn unlock(&self, me: u32, committed: bool, parker: &LoomParker) {
        match lock::unlock(&self.lock_word, &self.handoff_at, me, committed, parker) {
            Unlocked::Released => {}
            Unlocked::ReleasedWakeWatchers => notify::wake_watchers(&self.notify, parker),
            Unlocked::NotOwner => panic!("{me} unlocked a lock it did not hold"),
        }
    }

    /// A consistent read of both data words.
    fn read(&self, me: u32, parker: &LoomParker) -> Result<(u64, [u64; 2]), seqlock::ReadFailure> {
        let mut copy = [0; 2];
        let generation = seqlock::read(
            &self.seq,
            &self.lock_word,
            &self.notify,
            me,
            None,
            parker,
            || {
                for (c, word) in copy.iter_mut().zip(&self.data) {
                    *c = word.load(Ordering::Relaxed);
                }
            },
        )?;
        Ok((generation, copy))
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    // Enough to find ordering bugs of a few steps; unbounded is hours.
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn loom_lock_excludes_and_unlock_hands_on() {
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        let inside = Arc::new(loom::cell::UnsafeCell::new(0u32));
        let threads: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|me| {
                let (parker, words, inside) = (parker.clone(), words.clone(), inside.clone());
                loom::thread::spawn(move || {
                    let acquired = lock::lock(&words.lock_word, me, None, &*parker);
                    assert_eq!(acquired, Some(Acquired::Clean));
                    // SAFETY: the lock makes this the only access; if it did
                    // not, loom reports the data race.
                    inside.with_mut(|n| unsafe { *n += 1 });
                    words.unlock(me, false, &parker);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: every thread has finished.
        assert_eq!(inside.with(|n| unsafe { *n }), 2);
        let w = words.lock_word.load(Ordering::SeqCst);
        assert_eq!(w & OWNER_MASK, 0, "the lock is free at the end: {w:#x}");
    });
}

#[test]
fn loom_three_lockers_with_starvation_hand_offs() {
    // The clock moves 1 ms per reading, so waiters soon count as starving
    // and unlockers hand the lock off: the hand-off paths are explored.
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        let threads: Vec<_> = [1u32, 2, 3]
            .into_iter()
            .map(|me| {
                let (parker, words) = (parker.clone(), words.clone());
                loom::thread::spawn(move || {
                    assert!(lock::lock(&words.lock_word, me, None, &*parker).is_some());
                    words.unlock(me, false, &parker);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let w = words.lock_word.load(Ordering::SeqCst);
        assert_eq!(w & (OWNER_MASK | HANDOFF), 0, "{w:#x}");
        assert_eq!(w & WAITERS, w, "only a stale WAITERS may remain: {w:#x}");
    });
}

#[test]
fn loom_a_dead_holder_is_taken_over() {
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        let victim = {
            let (parker, words) = (parker.clone(), words.clone());
            loom::thread::spawn(move || {
                assert!(lock::lock(&words.lock_word, 1, None, &*parker).is_some());
                // Killed while holding it: no unlock.
                parker.die(1);
            })
        };
        let heir = {
            let (parker, words) = (parker.clone(), words.clone());
            loom::thread::spawn(move || {
                // Before the victim locks, or while it holds the lock alive,
                // or after it died: it always gets the lock.
                let acquired = lock::lock(&words.lock_word, 2, Some(Duration::MAX), &*parker);
                assert!(acquired.is_some());
                words.unlock(2, false, &parker);
                acquired.unwrap()
            })
        };
        victim.join().unwrap();
        let acquired = heir.join().unwrap();
        let w = words.lock_word.load(Ordering::SeqCst);
        match acquired {
            // It took the lock from the dead victim and released it.
            Acquired::OwnerDied => assert_eq!(w & OWNER_MASK, 0, "{w:#x}"),
            // It came first; then the victim locked and died holding it.
            Acquired::Clean => assert_eq!(w & OWNER_MASK, 1, "{w:#x}"),
        }
    });
}

/// Regression (ABA on takeover): a waiter found the holder with id 1 dead,
/// but before its compare-and-swap another handle took the lock over,
/// released it, and a new handle was given id 1 and locked: the word was
/// `1` again, and the waiter's swap replaced a live holder. Now the swap
/// runs while the dead id is reserved, so the new handle cannot get it
/// meanwhile, and the two never hold the lock at once (loom would report
/// the data race on `inside`).
#[test]
fn loom_a_takeover_never_replaces_a_new_holder_with_the_dead_id() {
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        // Id 1 died holding the lock.
        words.lock_word.store(1, Ordering::SeqCst);
        parker.die(1);
        let inside = Arc::new(loom::cell::UnsafeCell::new(0u32));
        let waiter = {
            let (parker, words, inside) = (parker.clone(), words.clone(), inside.clone());
            loom::thread::spawn(move || {
                let acquired = lock::lock(&words.lock_word, 2, Some(Duration::MAX), &*parker);
                assert!(acquired.is_some());
                // SAFETY: the lock makes this the only access; if it did
                // not, loom reports the data race.
                inside.with_mut(|n| unsafe { *n += 1 });
                words.unlock(2, false, &parker);
            })
        };
        // Another handle: takes the lock (over, if the waiter has not yet),
        // lets go, then a new handle opens and is given the dead id 1.
        assert!(lock::lock(&words.lock_word, 3, Some(Duration::MAX), &*parker).is_some());
        words.unlock(3, false, &parker);
        if parker.reopen_as(1, &words.lock_word) {
            assert!(lock::lock(&words.lock_word, 1, Some(Duration::MAX), &*parker).is_some());
            // SAFETY: as above.
            inside.with_mut(|n| unsafe { *n += 1 });
            words.unlock(1, false, &parker);
        }
        waiter.join().unwrap();
        let w = words.lock_word.load(Ordering::SeqCst);
        assert_eq!(w & OWNER_MASK, 0, "free at the end: {w:#x}");
    });
}

#[test]
fn loom_consistent_reads_never_see_a_torn_write() {
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        let writer = {
            let (parker, words) = (parker.clone(), words.clone());
            loom::thread::spawn(move || {
                assert_eq!(words.write(1, 7, &parker), 1);
                assert_eq!(words.write(1, 9, &parker), 2);
            })
        };
        let (generation, copy) = words.read(2, &parker).expect("the writer lives");
        // Whole, and the data of the generation it says.
        let expected = [0, 7, 9][generation as usize];
        assert_eq!(copy, [expected; 2], "generation {generation}");
        writer.join().unwrap();
    });
}

#[test]
fn loom_a_writer_dying_mid_write_is_reported_not_returned() {
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        let writer = {
            let (parker, words) = (parker.clone(), words.clone());
            loom::thread::spawn(move || {
                assert!(lock::lock(&words.lock_word, 1, None, &*parker).is_some());
                seqlock::begin_write(&words.seq, words.seq.load(Ordering::Relaxed));
                words.data[0].store(5, Ordering::Relaxed);
                // Killed here: half the data written, no commit, no unlock.
                parker.die(1);
            })
        };
        match words.read(2, &parker) {
            // Before the write began, or (never) after a commit.
            Ok((generation, copy)) => {
                assert_eq!(generation, 0);
                assert_eq!(copy, [0, 0]);
            }
            Err(seqlock::ReadFailure::WriterDied(generation)) => assert_eq!(generation, 0),
            Err(e) => panic!("{e:?}"),
        }
        writer.join().unwrap();
    });
}

#[test]
fn loom_a_commit_always_wakes_a_watcher() {
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        let writer = {
            let (parker, words) = (parker.clone(), words.clone());
            loom::thread::spawn(move || words.write(1, 3, &parker))
        };
        // No timeout: a lost wake-up leaves this thread asleep for ever,
        // which loom reports as a deadlock.
        let seen = notify::wait_for_change(
            &words.seq,
            &words.notify,
            &words.lock_word,
            0,
            None,
            Duration::ZERO,
            &*parker,
        );
        assert_eq!(seen, Some(1));
        assert_eq!(writer.join().unwrap(), 1);
    });
}

#[test]
fn loom_two_watchers_and_a_locker_that_commits_nothing() {
    // A lock taken and released without a commit must keep WATCHERS, so the
    // next commit still wakes both watchers.
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        let watchers: Vec<_> = [10u32, 11]
            .into_iter()
            .map(|_| {
                let (parker, words) = (parker.clone(), words.clone());
                loom::thread::spawn(move || {
                    notify::wait_for_change(
                        &words.seq,
                        &words.notify,
                        &words.lock_word,
                        0,
                        None,
                        Duration::ZERO,
                        &*parker,
                    )
                })
            })
            .collect();
        assert!(lock::lock(&words.lock_word, 2, None, &*parker).is_some());
        words.unlock(2, false, &parker);
        words.write(1, 4, &parker);
        for w in watchers {
            assert_eq!(w.join().unwrap(), Some(1));
        }
        let w = words.lock_word.load(Ordering::SeqCst);
        assert_eq!(w & (OWNER_MASK | HANDOFF), 0, "{w:#x}");
    });
}

#[test]
fn loom_spin_then_sleep_sees_the_commit() {
    model(|| {
        let parker = Arc::new(LoomParker::new());
        let words = Arc::new(Words::new());
        let writer = {
            let (parker, words) = (parker.clone(), words.clone());
            loom::thread::spawn(move || words.write(1, 8, &parker))
        };
        // The clock moves 1 ms per reading: a 3 ms spin ends after a few
        // rounds, and the waiter goes to sleep unless it saw the commit.
        let seen = notify::wait_for_change(
            &words.seq,
            &words.notify,
            &words.lock_word,
            0,
            None,
            Duration::from_millis(3),
            &*parker,
        );
        assert_eq!(seen, Some(1));
        writer.join().unwrap();
    });
}

// ----- the Windows backend: a named mutex, and a futex made of a semaphore ----

/// A counting semaphore shared by the threads (processes) of a model.
struct LoomSemaphore {
    units: Mutex<u32>,
    released: Condvar,
}

/// One thread's view of the semaphore: whether its timed waits time out
/// (at once, when no unit is there) or never fire, as a long timeout.
struct SemaphoreView<'a> {
    semaphore: &'a LoomSemaphore,
    timeouts_fire: bool,
}

impl Semaphore for SemaphoreView<'_> {
    fn acquire(&self, timeout: Option<Duration>) -> bool {
        let mut units = self.semaphore.units.lock().unwrap();
        loop {
            if *units > 0 {
                *units -= 1;
                return true;
            }
            if timeout == Some(Duration::ZERO) || (self.timeouts_fire && timeout.is_some()) {
                return false;
            }
            units = self.semaphore.released.wait(units).unwrap();
        }
    }

    fn release(&self, n: u32) {
        *self.semaphore.units.lock().unwrap() += n;
        self.semaphore.released.notify_all();
    }
}

/// The Windows backend's kernel: the segment mutex (`sync_NAME`) and the
/// notify semaphore with its sleeper count.
struct WindowsKernel {
    mutex: Mutex<()>,
    semaphore: LoomSemaphore,
    sleepers: AtomicU32,
    ticks: StdAtomicU64,
    base: Instant,
}

/// The `Parker` a Windows handle uses for notification.
struct WindowsParker<'a> {
    kernel: &'a WindowsKernel,
    timeouts_fire: bool,
}

impl WindowsKernel {
    fn new() -> WindowsKernel {
        WindowsKernel {
            mutex: Mutex::new(()),
            semaphore: LoomSemaphore {
                units: Mutex::new(0),
                released: Condvar::new(),
            },
            sleepers: AtomicU32::new(0),
            ticks: StdAtomicU64::new(0),
            base: Instant::now(),
        }
    }

    fn parker(&self, timeouts_fire: bool) -> WindowsParker<'_> {
        WindowsParker {
            kernel: self,
            timeouts_fire,
        }
    }

    /// `Segment::write` on Windows: the mutex, the lock word under it, the
    /// commit, the unlock that reads WATCHERS, the wake-up, the release.
    fn write(&self, words: &Words, me: u32, value: u64) -> u64 {
        let parker = self.parker(false);
        let held = self.mutex.lock().unwrap();
        assert!(
            !lock::take_under_os_mutex(&words.lock_word, me),
            "nobody died"
        );
        let odd = seqlock::begin_write(&words.seq, words.seq.load(Ordering::Relaxed));
        for word in &words.data {
            word.store(value, Ordering::Relaxed);
        }
        let generation = seqlock::end_write(&words.seq, odd);
        match lock::unlock(&words.lock_word, &words.handoff_at, me, true, &parker) {
            Unlocked::Released => {}
            Unlocked::ReleasedWakeWatchers => notify::wake_watchers(&words.notify, &parker),
            Unlocked::NotOwner => panic!("{me} lost the lock word under the mutex"),
        }
        drop(held);
        generation
    }

    /// Units left in the semaphore plus registered sleepers.
    fn leftovers(&self) -> u32 {
        *self.semaphore.units.lock().unwrap() + self.sleepers.load(Ordering::SeqCst)
    }
}

impl Parker for WindowsParker<'_> {
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        let view = SemaphoreView {
            semaphore: &self.kernel.semaphore,
            timeouts_fire: self.timeouts_fire,
        };
        sem_futex::wait(&self.kernel.sleepers, word, expected, timeout, &view)
    }

    fn wake_one(&self, word: &AtomicU32) {
        self.wake_all(word);
    }

    fn wake_all(&self, _word: &AtomicU32) {
        let view = SemaphoreView {
            semaphore: &self.kernel.semaphore,
            timeouts_fire: self.timeouts_fire,
        };
        sem_futex::wake_all(&self.kernel.sleepers, &view);
    }

    fn is_alive(&self, _id: u32) -> bool {
        true
    }

    type Reservation<'r>
        = ()
    where
        Self: 'r;

    fn reserve_dead(&self, _id: u32) -> Option<()> {
        None
    }

    fn now(&self) -> Instant {
        let ticks = self.kernel.ticks.fetch_add(1, StdOrdering::Relaxed);
        self.kernel.base + Duration::from_millis(ticks)
    }

    fn shared_clock_ms(&self) -> u32 {
        self.kernel.ticks.load(StdOrdering::Relaxed) as u32
    }
}

#[test]
fn loom_windows_a_commit_always_wakes_a_watcher() {
    model(|| {
        let kernel = Arc::new(WindowsKernel::new());
        let words = Arc::new(Words::new());
        let writer = {
            let (kernel, words) = (kernel.clone(), words.clone());
            loom::thread::spawn(move || kernel.write(&words, 1, 3))
        };
        // Timeouts never fire for this watcher: a lost wake-up is a deadlock.
        let seen = notify::wait_for_change(
            &words.seq,
            &words.notify,
            &words.lock_word,
            0,
            None,
            Duration::ZERO,
            &kernel.parker(false),
        );
        assert_eq!(seen, Some(1));
        assert_eq!(writer.join().unwrap(), 1);
        assert!(kernel.leftovers() <= 1, "{}", kernel.leftovers());
    });
}

#[test]
fn loom_windows_a_waiter_that_times_out_costs_no_wake_up_and_leaves_little() {
    // One waiter gives up (its timeout fires) while a writer commits and
    // another waiter waits for good: the patient one is still woken. A
    // waiter that leaves without a unit just as a waker counted it cannot
    // take back the unit not yet released, so each waiter may leave one
    // (a later wait takes it as a spurious wake-up); never more.
    model(|| {
        let kernel = Arc::new(WindowsKernel::new());
        let words = Arc::new(Words::new());
        let impatient = {
            let (kernel, words) = (kernel.clone(), words.clone());
            loom::thread::spawn(move || {
                let counter = words.notify.load(Ordering::Acquire);
                words.lock_word.fetch_or(lock::WATCHERS, Ordering::AcqRel);
                if words.seq.load(Ordering::Acquire) == 0 {
                    kernel.parker(true).wait(
                        &words.notify,
                        counter,
                        Some(Duration::from_millis(1)),
                    );
                }
            })
        };
        let writer = {
            let (kernel, words) = (kernel.clone(), words.clone());
            loom::thread::spawn(move || kernel.write(&words, 1, 5))
        };
        let seen = notify::wait_for_change(
            &words.seq,
            &words.notify,
            &words.lock_word,
            0,
            None,
            Duration::ZERO,
            &kernel.parker(false),
        );
        assert_eq!(seen, Some(1));
        impatient.join().unwrap();
        writer.join().unwrap();
        assert!(kernel.leftovers() <= 2, "{}", kernel.leftovers());
    });
}
