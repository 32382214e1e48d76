//! The lock guard: exclusive access to a segment's data until dropped.
//!
//! # Safety
//!
//! The guard passes checked ranges of the data region to `shared_bytes`,
//! and its two `unsafe` accessors turn the region into slices under the
//! contract they document.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;

use bytemuck::Pod;

use crate::lock::Acquired;
use crate::shared_bytes::{copy_from_shared, copy_to_shared};
use crate::sync::Ordering;
use crate::{Result, Segment, SharedBytes, SharedBytesMut, seqlock};

/// How a lock was taken over from a holder that died.
///
/// ```
/// # let name = format!("doc-owner-died-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// let guard = seg.lock()?;
/// assert_eq!(guard.owner_died(), None); // nobody died here
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerDied {
    /// The pid of the process that died holding the lock, as it recorded it.
    pub pid: Option<u32>,
    /// Whether it died in the middle of a write, leaving the data possibly
    /// torn (then [`SegmentGuard::is_consistent`] is false until repaired).
    pub mid_write: bool,
}

/// `SegmentGuard::state`, bits 0 to 31: the pid a dead holder recorded,
/// when `OWNER_DIED` (0 if unknown).
const DIED_PID: u64 = 0xFFFF_FFFF;
/// A writer died mid-write and nobody has committed since.
const TORN: u64 = 1 << 32;
/// The lock was taken over from a dead holder.
const OWNER_DIED: u64 = 1 << 33;
/// The thread was already panicking when the write began (so a panic that
/// is unwinding when the guard drops did not interrupt it).
const BEGAN_PANICKING: u64 = 1 << 34;

/// Exclusive access to a segment's data, across processes, until dropped.
///
/// Reading through the guard sees the data as the last writer committed it.
/// Writing through [`data_mut`](SegmentGuard::data_mut),
/// [`write`](SegmentGuard::write) or [`write_pod`](SegmentGuard::write_pod)
/// starts a write; dropping the guard commits it (one new generation,
/// however many changes) and wakes waiters. If a panic interrupts the write
/// (the thread panics after the write began and the guard drops during the
/// unwinding), the write is not committed: the data is marked torn, as if
/// the process had died. A write that began while the thread was already
/// unwinding (in a `Drop`) commits as usual.
///
/// The data is reached by copying, never through references: another
/// process can change shared bytes at any moment, which a `&[u8]` may not
/// see happen (see [`SharedBytes`]).
///
/// ```
/// # let name = format!("doc-guard-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// let mut guard = seg.lock()?;
/// let counter: u64 = guard.read_pod(0)?;
/// guard.write_pod(0, &(counter + 1))?;
/// let generation = guard.unlock()?;
/// assert_eq!(generation, seg.generation());
/// # Ok::<(), shmbox::Error>(())
/// ```
///
/// A guard is not `Send`: the thread that took the lock releases it (on
/// Windows the lock is a mutex, which only its owning thread may release).
///
/// ```compile_fail
/// # let seg = shmbox::Segment::open_or_create("doc-guard-not-send", 8).unwrap();
/// let guard = seg.lock().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // error: the guard cannot move threads
/// });
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct SegmentGuard<'a> {
    segment: &'a Segment,
    /// The odd sequence value of the write in progress; 0 until one began
    /// (an odd value is never 0).
    write_seq: u64,
    /// `DIED_PID`, `TORN`, `OWNER_DIED` and `BEGAN_PANICKING`, in one word:
    /// the guard is three words, each written and moved whole (a guard of
    /// mixed widths, copied as words, stalls the store buffer on every
    /// lock).
    state: u64,
    /// Not `Send`: on Windows the lock is a mutex, which only the thread
    /// that took it may release.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: `&SegmentGuard` only reads (`data`, `read_into`, `read_pod`,
// `is_consistent`, ...), by copies that are sound from any thread. Only
// `Send` is withheld, because the thread that took the lock must release it.
unsafe impl Sync for SegmentGuard<'_> {}

impl fmt::Debug for SegmentGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentGuard")
            .field("segment", self.segment.name())
            .field("writing", &(self.write_seq != 0))
            .field("consistent", &self.is_consistent())
            .field("owner_died", &self.owner_died())
            .finish()
    }
}

impl<'a> SegmentGuard<'a> {
    /// The guard for a lock `segment` just took.
    #[inline]
    pub(crate) fn new(segment: &'a Segment, acquired: Acquired) -> SegmentGuard<'a> {
        let h = segment.header();
        let mut state = 0;
        if h.seq.load(Ordering::Relaxed) & 1 == 1 {
            state |= TORN;
        }
        if acquired == Acquired::OwnerDied {
            state |= OWNER_DIED;
            let died = segment.took_over(state & TORN != 0);
            state |= u64::from(died.pid.unwrap_or(0));
        }
        store_if_changed(&h.lock_owner_pid, segment.pid());
        SegmentGuard {
            segment,
            write_seq: 0,
            state,
            _not_send: PhantomData,
        }
    }

    /// The segment this guard locks.
    ///
    /// ```
    /// # let name = format!("doc-guard-segment-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let guard = seg.lock()?;
    /// assert_eq!(guard.segment().size(), 8);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn segment(&self) -> &'a Segment {
        self.segment
    }

    /// `Some` if the previous holder died holding the lock: this guard took
    /// it over. The data is still consistent unless it died mid-write (see
    /// [`is_consistent`](SegmentGuard::is_consistent)).
    ///
    /// ```
    /// # let name = format!("doc-guard-died-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert!(seg.lock()?.owner_died().is_none());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn owner_died(&self) -> Option<OwnerDied> {
        (self.state & OWNER_DIED != 0).then(|| OwnerDied {
            pid: Some((self.state & DIED_PID) as u32).filter(|&p| p != 0),
            mid_write: self.state & TORN != 0,
        })
    }

    /// False if a writer died in the middle of a write and nobody has
    /// committed since, so the data may be torn. Writing through this guard,
    /// or [`mark_consistent`](SegmentGuard::mark_consistent), repairs it when
    /// the guard is released.
    ///
    /// ```
    /// # let name = format!("doc-guard-consistent-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert!(seg.lock()?.is_consistent());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn is_consistent(&self) -> bool {
        self.state & TORN == 0
    }

    /// Declares the data consistent as it is, for example after checking or
    /// repairing it following a writer's death. Releasing the guard then
    /// commits a new generation.
    ///
    /// ```
    /// # let name = format!("doc-guard-mark-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let before = seg.generation();
    /// let mut guard = seg.lock()?;
    /// guard.mark_consistent();
    /// drop(guard);
    /// assert_eq!(seg.generation(), before + 1);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.begin_write();
    }

    /// The whole data region, for reading by copies.
    ///
    /// ```
    /// # let name = format!("doc-guard-data-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// seg.write(0, b"shmbox")?;
    /// let guard = seg.lock()?;
    /// assert_eq!(guard.data().len(), 8);
    /// assert_eq!(guard.data().slice(..6)?.to_vec()?, b"shmbox");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn data(&self) -> SharedBytes<'_> {
        SharedBytes::whole(self.segment)
    }

    /// The whole data region, for changing by copies. Starts a write, which
    /// commits when the guard is released.
    ///
    /// ```
    /// # let name = format!("doc-guard-data-mut-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// guard.data_mut().fill(b'z')?;
    /// drop(guard);
    /// assert_eq!(seg.read(0, 8)?, b"zzzzzzzz");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn data_mut(&mut self) -> SharedBytesMut<'_> {
        self.begin_write();
        SharedBytesMut::whole(self.segment)
    }

    /// Writes `data` at `offset`, clamped to the size, and returns how many
    /// bytes were written. Commits when the guard is released.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`](crate::Error::OutOfRange) if `offset > size()`;
    /// [`Error::Forked`](crate::Error::Forked) or
    /// [`Error::Truncated`](crate::Error::Truncated) as for the segment.
    ///
    /// ```
    /// # let name = format!("doc-guard-write-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// assert_eq!(guard.write(0, b"abc")?, 3);
    /// assert_eq!(guard.write(5, b"defgh")?, 3);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline(always)]
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<usize> {
        self.segment.usable()?;
        let n = self.segment.clamp(offset, data.len())?;
        if n > 0 {
            self.begin_write();
            // SAFETY: `clamp` keeps `offset + n` within the data region of the
            // live mapping, and the lock keeps other writers out.
            unsafe { copy_to_shared(self.segment.mapping().data_ptr().add(offset), &data[..n]) };
        }
        self.segment.intact()?;
        Ok(n)
    }

    /// Reads into `buf` from `offset`, clamped to the size, and returns how
    /// many bytes were read. Unlike [`Segment::read_into`], this reads torn
    /// data too: the guard's holder decides what to do with it.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`](crate::Error::OutOfRange) if `offset > size()`;
    /// [`Error::Forked`](crate::Error::Forked) or
    /// [`Error::Truncated`](crate::Error::Truncated) as for the segment.
    ///
    /// ```
    /// # let name = format!("doc-guard-read-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// seg.write(0, b"12345678")?;
    /// let guard = seg.lock()?;
    /// let mut buf = [0; 3];
    /// assert_eq!(guard.read_into(5, &mut buf)?, 3);
    /// assert_eq!(&buf, b"678");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        self.segment.usable()?;
        let n = self.segment.clamp(offset, buf.len())?;
        // SAFETY: as in `write`.
        unsafe { copy_from_shared(self.segment.mapping().data_ptr().add(offset), &mut buf[..n]) };
        self.segment.intact()?;
        Ok(n)
    }

    /// Reads a plain-old-data value at `offset`: a struct kept in the
    /// segment, in one call. Any alignment will do.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`](crate::Error::OutOfBounds) unless the value
    /// fits at `offset`; [`Error::Forked`](crate::Error::Forked) or
    /// [`Error::Truncated`](crate::Error::Truncated) as for the segment.
    ///
    /// ```
    /// use shmbox::bytemuck::{Pod, Zeroable};
    ///
    /// #[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
    /// #[bytemuck(crate = "shmbox::bytemuck")] // not needed if you depend on bytemuck
    /// #[repr(C)]
    /// struct Position { x: f64, y: f64, frame: u64 }
    ///
    /// # let name = format!("doc-guard-pod-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 64)?;
    /// let mut guard = seg.lock()?;
    /// guard.write_pod(0, &Position { x: 1.5, y: -2.0, frame: 7 })?;
    /// let p: Position = guard.read_pod(0)?;
    /// assert_eq!(p.frame, 7);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn read_pod<T: Pod>(&self, offset: usize) -> Result<T> {
        self.data().read_pod(offset)
    }

    /// Writes a plain-old-data value at `offset`. Commits when the guard is
    /// released.
    ///
    /// # Errors
    ///
    /// As for [`read_pod`](SegmentGuard::read_pod).
    ///
    /// ```
    /// # let name = format!("doc-guard-write-pod-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// guard.write_pod(0, &0xdead_beef_u32)?;
    /// assert!(guard.write_pod(6, &0u32).is_err()); // 4 bytes do not fit at 6
    /// drop(guard);
    /// assert_eq!(seg.read(0, 4)?, 0xdead_beef_u32.to_ne_bytes());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn write_pod<T: Pod>(&mut self, offset: usize, value: &T) -> Result<()> {
        self.data_mut().write_pod(offset, value)
    }

    /// The whole data region as a slice, for code that needs one.
    ///
    /// # Safety
    ///
    /// While the slice lives, nothing may write the data region: no other
    /// thread of this process (through another handle, or a raw pointer),
    /// and no other process, including processes that do not take the lock
    /// (the lock keeps out every process that does, and this guard holds
    /// it). And the handle must not have been inherited across `fork()`
    /// (in such a child, the guard's other methods return
    /// [`Error::Forked`](crate::Error::Forked)). If another process may
    /// write without the lock, copy instead: [`data`](SegmentGuard::data).
    ///
    /// ```
    /// # let name = format!("doc-guard-as-slice-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// seg.write(0, b"abcd")?;
    /// let guard = seg.lock()?;
    /// // SAFETY: every process that writes this segment takes its lock, and
    /// // this process writes it through no other handle meanwhile.
    /// let bytes = unsafe { guard.as_slice() };
    /// assert!(bytes.starts_with(b"ab"));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the region is `size()` bytes of a live mapping that
        // outlives the guard; the caller promises that nothing writes it
        // while the slice lives.
        unsafe {
            std::slice::from_raw_parts(self.segment.mapping().data_ptr(), self.segment.size())
        }
    }

    /// The whole data region as a mutable slice. Starts a write, which
    /// commits when the guard is released.
    ///
    /// # Safety
    ///
    /// As for [`as_slice`](SegmentGuard::as_slice), and in addition, while
    /// the slice lives, no other thread of this process may read the data
    /// region: not through another handle's
    /// [`read_consistent`](Segment::read_consistent) (which does not take
    /// the lock), nor through a raw pointer. (Lock-free readers in other
    /// processes are no concern of this process's memory model: their
    /// copies tolerate the writes, and the seqlock discards what overlapped.)
    ///
    /// ```
    /// # let name = format!("doc-guard-as-mut-slice-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// let mut guard = seg.lock()?;
    /// // SAFETY: no other thread of this process reads this segment, and
    /// // every process that writes it takes its lock.
    /// unsafe { guard.as_mut_slice() }.copy_from_slice(b"wxyz");
    /// drop(guard);
    /// assert_eq!(seg.read(0, 4)?, b"wxyz");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        self.begin_write();
        // SAFETY: as for `as_slice`; `&mut self` makes it the only slice of
        // the region from this guard, and the caller promises that no other
        // thread of this process reads or writes the region meanwhile.
        unsafe {
            std::slice::from_raw_parts_mut(self.segment.mapping().data_ptr(), self.segment.size())
        }
    }

    /// Commits any write and releases the lock, returning the generation
    /// after the commit. (Dropping the guard does the same, silently.)
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`](crate::Error::Truncated) if the segment's file
    /// was cut short while the guard was held: the lock is released, but
    /// what was written is lost. [`Error::Corrupt`](crate::Error::Corrupt)
    /// if the lock word stopped naming this handle (a process that ignores
    /// the protocol changed it). [`Error::Forked`](crate::Error::Forked) in
    /// a child made by `fork()` while the guard was held: the lock is the
    /// parent's, and is left alone.
    ///
    /// ```
    /// # let name = format!("doc-guard-unlock-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// guard.write(0, b"x")?;
    /// let generation = guard.unlock()?;
    /// assert_eq!(generation, seg.generation());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn unlock(self) -> Result<u64> {
        let this = std::mem::ManuallyDrop::new(self);
        let segment = this.segment;
        segment.usable()?;
        let generation = if this.write_seq != 0 {
            segment.commit_and_unlock(this.write_seq, 0)?
        } else {
            segment.unlock(false)?;
            segment.generation()
        };
        segment.intact()?;
        Ok(generation)
    }

    #[inline]
    fn begin_write(&mut self) {
        if self.write_seq == 0 {
            if std::thread::panicking() {
                self.state |= BEGAN_PANICKING;
            }
            let seq = &self.segment.header().seq;
            self.write_seq = seqlock::begin_write(seq, seq.load(Ordering::Relaxed));
        }
    }
}

impl Drop for SegmentGuard<'_> {
    /// One call with the guard's words as arguments: a drop this small is
    /// inlined, so that the guard never has to be written to memory (a
    /// guard whose address escapes to an outlined drop is stored and copied
    /// on every lock, which stalls on store forwarding).
    #[inline(always)]
    fn drop(&mut self) {
        release(self.segment, self.write_seq, self.state);
    }
}

/// What dropping a guard does: commit a write, unless a panic interrupted
/// it (then the data stays marked torn, as after a crash), and unlock.
#[inline(never)]
fn release(segment: &Segment, write_seq: u64, state: u64) {
    if segment.mapping().forked() {
        // A child made by fork while the guard was held: the lock and the
        // write are the parent's.
        return;
    }
    let commit = write_seq != 0 && (state & BEGAN_PANICKING != 0 || !std::thread::panicking());
    if commit {
        segment.commit(write_seq, 0);
    }
    // Errors are for `unlock` to report; a drop has nobody to tell.
    segment.unlock_quietly(commit);
}

/// Stores `value` unless the word holds it already. A store that changes
/// nothing still has to drain before the unlock's atomic instruction; a load
/// does not, and the same process writing again is the common case.
#[inline]
pub(crate) fn store_if_changed<T: PartialEq + Copy>(word: &impl SharedWord<T>, value: T) {
    if word.get() != value {
        word.set(value);
    }
}

pub(crate) trait SharedWord<T> {
    fn get(&self) -> T;
    fn set(&self, value: T);
}

impl SharedWord<u32> for crate::sync::shared::AtomicU32 {
    #[inline]
    fn get(&self) -> u32 {
        self.load(Ordering::Relaxed)
    }
    #[inline]
    fn set(&self, value: u32) {
        self.store(value, Ordering::Relaxed)
    }
}

impl SharedWord<u64> for crate::sync::shared::AtomicU64 {
    #[inline]
    fn get(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
    #[inline]
    fn set(&self, value: u64) {
        self.store(value, Ordering::Relaxed)
    }
}
