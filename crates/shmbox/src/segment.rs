//! Segments: opening, copying in and out under the lock, lock-free reads,
//! change notification and lifetime.
//!
//! # Safety
//!
//! The data region is raw shared memory. This module passes checked ranges
//! of it to `shared_bytes`, whose copies are defined while other processes
//! write.
#![allow(unsafe_code)]

use std::fmt;
use std::time::Duration;

use crate::error::WaitFor;
use crate::guard::{SegmentGuard, store_if_changed};
use crate::header::{Header, HeaderFields};
use crate::lock::{Acquired, OWNER_MASK, Unlocked};
use crate::shared_bytes::{copy_from_shared, copy_to_shared};
use crate::sync::Ordering;
use crate::sys::{self, Mapping, RawLock};
use crate::{
    Error, Lifetime, OwnerDied, Result, SegmentInfo, SegmentName, SegmentOptions, notify, seqlock,
};

/// A named block of shared memory, open in this process.
///
/// Every process that opens the same name sees the same bytes. The segment
/// carries its own lock, a generation counter of committed writes, and a
/// change notification, all of which work across processes and survive a
/// process that dies at any moment.
///
/// - [`write`](Segment::write) and [`read`](Segment::read) copy bytes under
///   the lock, with the FoxPro sample's semantics: clamped to the size.
/// - [`read_consistent`](Segment::read_consistent) copies without the lock and
///   never returns a torn copy.
/// - [`lock`](Segment::lock) gives a [`SegmentGuard`] for several steps at once.
/// - [`wait_for_change`](Segment::wait_for_change) sleeps until a writer commits.
///
/// A `Segment` is `Send` and `Sync`; share it between threads with `&` or
/// `Arc`.
///
/// # After `fork()`
///
/// A child made by `fork()` that does not `exec` inherits a copy of the
/// handle, but not what makes it work: the handle's proof of life and its
/// hold on the segment stay the parent's, so that the parent's death is
/// noticed (and its lock recovered) while its children live, and so that a
/// child's exit never removes the parent's segment. In the child, every
/// fallible operation on an inherited handle fails with [`Error::Forked`],
/// and dropping it releases nothing of the parent's. Open the segment again
/// in the child (by name: the child's own handle works as any other).
///
/// # A file cut short
///
/// If another process of the same user cuts the segment's file short while
/// it is open here (with `ftruncate`, say), touching the missing part raises
/// SIGBUS, which kills the process. An application that wants to survive
/// that calls [`install_sigbus_handler`](crate::install_sigbus_handler)
/// once: the handle then survives, and every fallible operation on it fails
/// with [`Error::Truncated`] from then on. shmbox installs no signal handler
/// unless asked.
///
/// ```
/// use shmbox::Segment;
///
/// let name = format!("doc-segment-{}", std::process::id());
/// let seg = Segment::open_or_create(&name, 1024)?;
/// assert_eq!(seg.write(0, b"hello")?, 5);
/// assert_eq!(seg.read(0, 5)?, b"hello");
/// # Ok::<(), shmbox::Error>(())
/// ```
///
/// # Memory safety and other processes
///
/// Other processes of the same user can map the same bytes and change them
/// at any moment, whatever the lock says. So no safe method of this crate
/// hands out a reference (`&[u8]`, `&T`) into the segment: bytes are only
/// copied in and out, with accesses that are defined while others write
/// (see [`SharedBytes`](crate::SharedBytes)). A process that ignores the
/// protocol can make the data wrong, but cannot make this process misbehave
/// beyond seeing wrong bytes; the header is validated before use. The
/// `unsafe` [`SegmentGuard::as_slice`] and [`SegmentGuard::as_mut_slice`]
/// give slices to those who accept their contract.
pub struct Segment {
    mapping: Mapping,
    name: SegmentName,
    timeout: Duration,
    spin: Duration,
    pid: u32,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("size", &self.size())
            .field("lifetime", &self.lifetime())
            .field("generation", &self.generation())
            .finish()
    }
}

impl Segment {
    pub(crate) fn new(
        mapping: Mapping,
        name: SegmentName,
        timeout: Duration,
        spin: Duration,
    ) -> Segment {
        Segment {
            mapping,
            name,
            timeout,
            spin,
            pid: sys::current_pid(),
        }
    }

    /// Creates a segment of `size` bytes with the default options; fails with
    /// [`Error::AlreadyExists`] if the name is taken.
    ///
    /// ```
    /// let name = format!("doc-seg-create-{}", std::process::id());
    /// let seg = shmbox::Segment::create(&name, 64)?;
    /// assert_eq!(seg.read(0, 64)?, vec![0; 64]);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn create(name: impl AsRef<str>, size: usize) -> Result<Segment> {
        SegmentOptions::new().create(name, size)
    }

    /// Opens an existing segment with the default options; its size is
    /// whatever it was created with.
    ///
    /// ```
    /// let name = format!("doc-seg-open-{}", std::process::id());
    /// let a = shmbox::Segment::create(&name, 64)?;
    /// let b = shmbox::Segment::open(&name)?;
    /// assert_eq!(b.size(), 64);
    /// # drop(a);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn open(name: impl AsRef<str>) -> Result<Segment> {
        SegmentOptions::new().open(name)
    }

    /// Opens the segment, or creates it with `size` bytes: the sample's
    /// behaviour. An existing segment of another size is an
    /// [`Error::SizeMismatch`].
    ///
    /// ```
    /// let name = format!("doc-seg-ooc-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 1024)?;
    /// assert_eq!(seg.size(), 1024);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn open_or_create(name: impl AsRef<str>, size: usize) -> Result<Segment> {
        SegmentOptions::new().open_or_create(name, size)
    }

    /// The segment's name.
    ///
    /// ```
    /// # let name = format!("doc-name-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.name().as_str(), name);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// The size of the data region: exactly the size it was created with.
    ///
    /// ```
    /// # let name = format!("doc-size-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 1000)?;
    /// assert_eq!(seg.size(), 1000); // not rounded to a page
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn size(&self) -> usize {
        self.mapping.capacity()
    }

    /// The lifetime chosen when the segment was created.
    ///
    /// ```
    /// # let name = format!("doc-seg-lifetime-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.lifetime(), shmbox::Lifetime::UntilLastClose);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn lifetime(&self) -> Lifetime {
        self.mapping.lifetime()
    }

    /// How long `read`, `write`, `lock` and `read_consistent` wait.
    ///
    /// ```
    /// # let name = format!("doc-timeout-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.timeout(), shmbox::DEFAULT_TIMEOUT);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many writes have been committed to the segment since it was
    /// created, by any process.
    ///
    /// If another process cut the segment's file short, this may say 0;
    /// the fallible operations report [`Error::Truncated`] then.
    ///
    /// ```
    /// # let name = format!("doc-generation-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let before = seg.generation();
    /// seg.write(0, b"x")?;
    /// assert_eq!(seg.generation(), before + 1);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn generation(&self) -> u64 {
        // In a child made by fork the mapping still exists (it is inherited),
        // so this load is valid there too.
        self.header().seq.load(Ordering::Acquire) >> 1
    }

    /// The first byte of the data region, [`size`](Segment::size) bytes
    /// long, for handing the memory to code outside Rust's rules: a
    /// binding's buffer object, a device, a C library.
    ///
    /// The pointer stays valid while this `Segment` lives (also in a child
    /// made by `fork`, which inherits the mapping). Getting it is safe;
    /// using it is not. Accesses through it bypass the lock and the
    /// seqlock: they commit no generation, wake no waiter, and race with
    /// other processes unless the code using them takes the lock itself.
    /// Prefer [`SegmentGuard`]'s copies, or its `unsafe`
    /// [`as_slice`](SegmentGuard::as_slice), where you can.
    ///
    /// ```
    /// # let name = format!("doc-data-ptr-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let guard = seg.lock()?;
    /// // SAFETY: in the segment, and under its lock.
    /// unsafe { seg.data_ptr().write_volatile(b'!') };
    /// drop(guard);
    /// assert_eq!(seg.read(0, 1)?, b"!");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn data_ptr(&self) -> *mut u8 {
        self.mapping.data_ptr()
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        self.mapping.header()
    }

    #[inline]
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    #[inline]
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// `Ok` unless this process is a child, made by `fork`, of the one that
    /// opened the handle: then nothing may be done through it.
    #[inline]
    pub(crate) fn usable(&self) -> Result<()> {
        if self.mapping.forked() {
            return Err(self.forked());
        }
        Ok(())
    }

    #[cold]
    fn forked(&self) -> Error {
        Error::Forked {
            name: self.name.to_string(),
            opened_by: self.pid,
        }
    }

    /// Commits the write begun at `odd` (its time is `now`, or read here if
    /// 0) and releases the lock, waking watchers if there are any. Returns
    /// the new generation.
    #[inline]
    pub(crate) fn commit_and_unlock(&self, odd: u64, now: u64) -> Result<u64> {
        let generation = self.commit(odd, now);
        self.unlock(true)?;
        Ok(generation)
    }

    /// Commits the write begun at `odd` (its time is `now`, or read here if
    /// 0), the lock still held; returns the new generation.
    #[inline(always)]
    pub(crate) fn commit(&self, odd: u64, now: u64) -> u64 {
        let h = self.header();
        store_if_changed(&h.last_writer_pid, self.pid);
        let now = if now == 0 { sys::now_unix_s() } else { now };
        store_if_changed(&h.last_write_unix_s, now);
        seqlock::end_write(&h.seq, odd)
    }

    /// Releases the lock this handle holds. Fails if the lock word no
    /// longer names this handle: something that ignores the protocol
    /// changed it meanwhile.
    #[inline]
    pub(crate) fn unlock(&self, committed: bool) -> Result<()> {
        if self.mapping.unlock_fast() {
            return Ok(());
        }
        match self.unlock_slow(committed) {
            Unlocked::NotOwner => Err(self.lost_lock()),
            _ => Ok(()),
        }
    }

    /// `unlock` for a guard's drop, which has nobody to report an error to:
    /// one atomic instruction in line, the rest out of line.
    #[inline(always)]
    pub(crate) fn unlock_quietly(&self, committed: bool) {
        if !self.mapping.unlock_fast() {
            self.unlock_slow(committed);
        }
    }

    /// The unlock that is more than one compare-and-swap: waiters to wake,
    /// watchers to tell, or a lock word that is no longer ours.
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, committed: bool) -> Unlocked {
        let unlocked = self.mapping.unlock(committed);
        if unlocked == Unlocked::ReleasedWakeWatchers {
            notify::wake_watchers(&self.header().notify_word, &self.mapping.parker());
        }
        unlocked
    }

    #[cold]
    fn lost_lock(&self) -> Error {
        Error::Corrupt {
            name: self.name.to_string(),
            reason: "its lock word stopped naming this handle while it held the lock; a \
                     process that does not follow the lock protocol changed it"
                .into(),
        }
    }

    /// Book-keeping after the lock was taken over from a dead holder.
    #[cold]
    pub(crate) fn took_over(&self, torn: bool) -> OwnerDied {
        let h = self.header();
        h.owner_deaths.fetch_add(1, Ordering::Relaxed);
        // It may have committed and died before waking the watchers.
        notify::wake_watchers(&h.notify_word, &self.mapping.parker());
        OwnerDied {
            pid: Some(h.lock_owner_pid.load(Ordering::Relaxed)).filter(|&p| p != 0),
            mid_write: torn,
        }
    }

    /// The number of bytes from `offset` that fit, up to `len`.
    #[inline]
    pub(crate) fn clamp(&self, offset: usize, len: usize) -> Result<usize> {
        let size = self.size();
        if offset > size {
            return Err(Error::OutOfRange { offset, size });
        }
        Ok(len.min(size - offset))
    }

    /// `Ok` unless the segment's file was cut short under this handle's
    /// mapping, which makes every operation's outcome meaningless.
    #[inline]
    pub(crate) fn intact(&self) -> Result<()> {
        if self.mapping.is_cut() {
            return Err(self.truncated());
        }
        Ok(())
    }

    #[cold]
    fn truncated(&self) -> Error {
        Error::Truncated {
            name: self.name.to_string(),
        }
    }

    fn timeout_error(&self, waiting_for: WaitFor, timeout: Duration) -> Error {
        Error::Timeout {
            name: self.name.to_string(),
            waiting_for,
            timeout,
        }
    }

    /// Writes `data` at `offset` under the lock, and returns how many bytes
    /// were written: `min(data.len(), size - offset)`, as in the sample.
    ///
    /// The write commits a new generation and wakes processes waiting in
    /// [`wait_for_change`](Segment::wait_for_change). If the previous lock
    /// holder died, the write goes ahead, and its commit makes the data
    /// consistent again; use [`lock`](Segment::lock) to learn of such deaths.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `offset > size()`; [`Error::Timeout`] if the
    /// lock stays held by a live process for [`timeout`](Segment::timeout).
    ///
    /// ```
    /// # let name = format!("doc-write-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.write(6, b"hello")?, 2); // only "he" fits
    /// assert_eq!(seg.read(6, 2)?, b"he");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline(always)]
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<usize> {
        // The common case is in line in the caller: a handle of this
        // process, a range inside the segment, a free lock, nobody to wake.
        // Everything else, including every error, is `write_slow`.
        let size = self.size();
        if offset < size && !data.is_empty() && !self.mapping.forked() {
            // The clock is read before the lock is taken: its cost then
            // overlaps with the lock's atomic instruction.
            let now = sys::now_unix_s();
            if self.mapping.lock_fast() {
                let n = data.len().min(size - offset);
                // SAFETY: `offset + n <= size`, and the lock was just taken.
                unsafe { self.write_locked(offset, &data[..n], now) };
                self.unlock(true)?;
                self.intact()?;
                return Ok(n);
            }
        }
        self.write_slow(offset, data)
    }

    /// `write` when the lock is held, the range is empty or outside the
    /// segment, or the handle was inherited through `fork`.
    #[inline(never)]
    fn write_slow(&self, offset: usize, data: &[u8]) -> Result<usize> {
        self.usable()?;
        let n = self.clamp(offset, data.len())?;
        if n == 0 {
            return Ok(0);
        }
        let now = sys::now_unix_s();
        match self.acquire(self.timeout)? {
            Acquired::Clean => {
                // SAFETY: `clamp` keeps `offset + n` within the data region,
                // and the lock was just taken.
                unsafe { self.write_locked(offset, &data[..n], now) };
                self.unlock(true)?;
            }
            acquired => {
                let mut guard = SegmentGuard::new(self, acquired);
                guard.write(offset, &data[..n])?;
                guard.unlock()?;
            }
        }
        self.intact()?;
        Ok(n)
    }

    /// `write`'s work once this handle took the lock cleanly: names the
    /// owner, then begins, copies and commits a write (its time is `now`).
    ///
    /// # Safety
    ///
    /// `offset + data.len() <= size()`, and this handle holds the lock.
    #[inline(always)]
    unsafe fn write_locked(&self, offset: usize, data: &[u8], now: u64) {
        let h = self.header();
        store_if_changed(&h.lock_owner_pid, self.pid);
        let odd = seqlock::begin_write(&h.seq, h.seq.load(Ordering::Relaxed));
        // SAFETY: the caller keeps the range within the data region, and
        // its lock keeps other writers out.
        unsafe { copy_to_shared(self.mapping.data_ptr().add(offset), data) };
        self.commit(odd, now);
    }

    /// Reads up to `len` bytes from `offset` under the lock; fewer if the
    /// segment ends first.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `offset > size()`; [`Error::Timeout`] as for
    /// [`write`](Segment::write); [`Error::Inconsistent`] if a writer died in
    /// the middle of a write and nobody has repaired the data since.
    ///
    /// ```
    /// # let name = format!("doc-read-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// seg.write(0, b"abcd")?;
    /// assert_eq!(seg.read(2, 100)?, b"cd");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn read(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        let n = self.clamp(offset, len)?;
        let mut buf = vec![0; n];
        self.read_into(offset, &mut buf)?;
        Ok(buf)
    }

    /// Reads into `buf` from `offset` under the lock, and returns how many
    /// bytes were read: `min(buf.len(), size - offset)`.
    ///
    /// # Errors
    ///
    /// As for [`read`](Segment::read).
    ///
    /// ```
    /// # let name = format!("doc-read-into-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// seg.write(0, b"abcd")?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(seg.read_into(1, &mut buf)?, 3);
    /// assert_eq!(&buf[..3], b"bcd");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        self.usable()?;
        let n = self.clamp(offset, buf.len())?;
        if n == 0 {
            return Ok(0);
        }
        let guard = self.lock()?;
        if !guard.is_consistent() {
            return Err(self.inconsistent());
        }
        guard.read_into(offset, &mut buf[..n])?;
        guard.unlock()?;
        Ok(n)
    }

    fn inconsistent(&self) -> Error {
        Error::Inconsistent {
            name: self.name.to_string(),
            generation: self.generation(),
        }
    }

    /// Reads up to `len` bytes from `offset` without taking the lock, and
    /// returns them with the generation they belong to.
    ///
    /// The copy never mixes two writes: it is retried until no write
    /// overlapped it. It never delays writers. It waits (up to
    /// [`timeout`](Segment::timeout)) only while a write is in progress,
    /// which includes a write this thread began through a [`SegmentGuard`]
    /// it still holds: read through the guard instead.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `offset > size()`; [`Error::Inconsistent`] if
    /// a writer died in the middle of a write; [`Error::Timeout`] if writers
    /// kept the data changing for the whole timeout.
    ///
    /// ```
    /// # let name = format!("doc-read-consistent-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 16)?;
    /// seg.write(0, b"0123456789abcdef")?;
    /// let snap = seg.read_consistent(0, 16)?;
    /// assert_eq!(snap.data, b"0123456789abcdef");
    /// assert_eq!(snap.generation, seg.generation());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn read_consistent(&self, offset: usize, len: usize) -> Result<Snapshot> {
        let n = self.clamp(offset, len)?;
        let mut data = vec![0; n];
        let copied = self.read_consistent_into(offset, &mut data)?;
        Ok(Snapshot {
            data,
            generation: copied.generation,
        })
    }

    /// Like [`read_consistent`](Segment::read_consistent), into `buf`.
    ///
    /// # Errors
    ///
    /// As for [`read_consistent`](Segment::read_consistent).
    ///
    /// ```
    /// # let name = format!("doc-read-consistent-into-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// seg.write(0, b"wxyz")?;
    /// let mut buf = [0u8; 4];
    /// let copied = seg.read_consistent_into(0, &mut buf)?;
    /// assert_eq!((copied.len, &buf), (4, b"wxyz"));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn read_consistent_into(&self, offset: usize, buf: &mut [u8]) -> Result<Copied> {
        self.read_consistent_into_timeout(offset, buf, self.timeout)
    }

    /// Like [`read_consistent_into`](Segment::read_consistent_into), waiting
    /// at most `timeout` for a write in progress to end. With
    /// [`Duration::ZERO`] it makes one attempt: a caller that must not block
    /// (a binding holding an interpreter lock) tries that first, and waits
    /// only when it fails with [`Error::Timeout`].
    ///
    /// # Errors
    ///
    /// As for [`read_consistent`](Segment::read_consistent), with `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let name = format!("doc-read-consistent-timeout-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// let mut buf = [0u8; 4];
    /// let copied = seg.read_consistent_into_timeout(0, &mut buf, Duration::ZERO)?;
    /// assert_eq!(copied.len, 4); // no writer: the one attempt succeeds
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn read_consistent_into_timeout(
        &self,
        offset: usize,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Copied> {
        // The common case is in line in the caller: a handle of this
        // process, an offset inside the segment, no writer in the way.
        // Everything else, including every error, starts over out of line.
        let size = self.size();
        if offset <= size && !self.mapping.forked() {
            let n = buf.len().min(size - offset);
            let dst = &mut buf[..n];
            // SAFETY: `offset <= size`, so this is within the mapping.
            let src = unsafe { self.mapping.data_ptr().add(offset) };
            // SAFETY: `src..src + n` lies in the data region, as
            // `n <= size - offset`, and `self` keeps the mapping alive.
            let copy = || unsafe { copy_from_shared(src, dst) };
            if let Some(generation) = seqlock::try_read(&self.header().seq, copy) {
                if !self.mapping.is_cut() {
                    return Ok(Copied { len: n, generation });
                }
            }
        }
        self.read_consistent_slow(offset, buf, timeout)
    }

    /// `read_consistent_into_timeout` when its fast path failed: an error,
    /// or a writer in the way.
    #[inline(never)]
    fn read_consistent_slow(
        &self,
        offset: usize,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Copied> {
        self.usable()?;
        let n = self.clamp(offset, buf.len())?;
        let buf = &mut buf[..n];
        let h = self.header();
        // SAFETY: `clamp` keeps `offset + n` within the data region.
        let src = unsafe { self.mapping.data_ptr().add(offset) };
        let generation = seqlock::read(
            &h.seq,
            &h.lock_word,
            &h.notify_word,
            self.mapping.lock_id(),
            Some(timeout),
            &self.mapping.parker(),
            // SAFETY: `src..src + n` lies in the live mapping, which `self`
            // keeps alive for the whole call.
            || unsafe { copy_from_shared(src, buf) },
        )
        .map_err(|failure| self.read_failure(failure, timeout))?;
        self.intact()?;
        Ok(Copied { len: n, generation })
    }

    /// The error for a consistent read that gave up.
    #[cold]
    fn read_failure(&self, failure: seqlock::ReadFailure, timeout: Duration) -> Error {
        match failure {
            seqlock::ReadFailure::WriterDied(generation) => Error::Inconsistent {
                name: self.name.to_string(),
                generation,
            },
            seqlock::ReadFailure::TimedOut => self.timeout_error(WaitFor::ConsistentRead, timeout),
        }
    }

    /// Takes the segment's lock, waiting up to [`timeout`](Segment::timeout).
    ///
    /// Uncontended, this is one atomic instruction. A waiter sleeps in the
    /// kernel until the holder unlocks. If the holder dies, even by SIGKILL,
    /// the waiter takes the lock over within a few milliseconds, and the
    /// guard's [`owner_died`](SegmentGuard::owner_died) says so.
    ///
    /// The lock is not reentrant: locking twice from one handle waits for the
    /// timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if a live process holds it for the whole timeout.
    ///
    /// ```
    /// # let name = format!("doc-lock-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// if let Some(died) = guard.owner_died() {
    ///     eprintln!("the previous holder (pid {:?}) died", died.pid);
    /// }
    /// let visits: u32 = guard.read_pod(0)?;
    /// guard.write_pod(0, &(visits + 1))?;
    /// drop(guard); // commits and unlocks
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline(always)]
    pub fn lock(&self) -> Result<SegmentGuard<'_>> {
        self.lock_timeout(self.timeout)
    }

    /// Takes the lock, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if a live process holds it for the whole timeout.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let name = format!("doc-lock-timeout-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let other = shmbox::Segment::open(&name)?;
    /// let held = seg.lock()?;
    /// assert!(matches!(
    ///     other.lock_timeout(Duration::from_millis(10)),
    ///     Err(shmbox::Error::Timeout { .. })
    /// ));
    /// # drop(held);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline(always)]
    pub fn lock_timeout(&self, timeout: Duration) -> Result<SegmentGuard<'_>> {
        // The common case in line, in the caller: a usable handle, a free
        // lock, an intact file. Everything else is out of line.
        if !self.mapping.forked() && self.mapping.lock_fast() {
            if !self.mapping.is_cut() {
                return Ok(SegmentGuard::new(self, Acquired::Clean));
            }
            return self.locked(Acquired::Clean);
        }
        self.lock_timeout_slow(timeout)
    }

    #[cold]
    #[inline(never)]
    fn lock_timeout_slow(&self, timeout: Duration) -> Result<SegmentGuard<'_>> {
        self.usable()?;
        let acquired = self.acquire(timeout)?;
        self.locked(acquired)
    }

    /// The guard for a lock just taken, unless the segment was cut short:
    /// then the lock is let go again (where it still exists) and the error
    /// returned.
    #[inline]
    fn locked(&self, acquired: Acquired) -> Result<SegmentGuard<'_>> {
        if self.mapping.is_cut() {
            let _ = self.unlock(false);
            return Err(self.truncated());
        }
        Ok(SegmentGuard::new(self, acquired))
    }

    /// Takes the lock: one compare-and-swap when it is free. The guard is
    /// built by the caller, so that nothing large is moved on the fast path.
    #[inline]
    fn acquire(&self, timeout: Duration) -> Result<Acquired> {
        match self.mapping.lock(timeout)? {
            Some(acquired) => Ok(acquired),
            None => Err(self.timeout_error(WaitFor::Lock, timeout)),
        }
    }

    /// Takes the lock if no waiting is needed: it is free, or its holder has
    /// died. `None` if a live process holds it.
    ///
    /// When the lock is held, this asks the kernel whether the holder lives,
    /// which costs a system call.
    ///
    /// # Errors
    ///
    /// [`Error::Forked`] in a child that inherited the handle;
    /// [`Error::Truncated`] if the file was cut short; on Windows,
    /// [`Error::Io`] if the mutex cannot be waited on.
    ///
    /// ```
    /// # let name = format!("doc-try-lock-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let other = shmbox::Segment::open(&name)?;
    /// let held = seg.try_lock()?.expect("free");
    /// assert!(other.try_lock()?.is_none());
    /// # drop(held);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<Option<SegmentGuard<'_>>> {
        self.usable()?;
        match self.mapping.try_lock()? {
            Some(acquired) => self.locked(acquired).map(Some),
            None => self.intact().map(|()| None),
        }
    }

    /// Waits until a write is committed, by any process, after generation
    /// `since`, and returns the new generation. Returns at once if the
    /// generation is already other than `since`.
    ///
    /// The wait sleeps in the kernel; writers make a wake-up system call only
    /// when someone waits. [`Duration::MAX`] waits for ever. A segment opened
    /// with [`SegmentOptions::spin_before_sleep`] spins that long first.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if nothing was committed within `timeout`;
    /// [`Error::Truncated`] if the segment's file was cut short.
    ///
    /// ```
    /// # let name = format!("doc-wait-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let seen = seg.generation();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| seg.write(0, b"ping"));
    ///     let now = seg.wait_for_change(seen, std::time::Duration::from_secs(5))?;
    ///     assert!(now > seen);
    ///     Ok::<(), shmbox::Error>(())
    /// })?;
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn wait_for_change(&self, since: u64, timeout: Duration) -> Result<u64> {
        self.usable()?;
        let h = self.header();
        notify::wait_for_change(
            &h.seq,
            &h.notify_word,
            &h.lock_word,
            since,
            Some(timeout),
            self.spin,
            &self.mapping.parker(),
        )
        .filter(|_| !self.mapping.is_cut())
        .ok_or_else(|| {
            if self.mapping.is_cut() {
                self.truncated()
            } else {
                self.timeout_error(WaitFor::Change, timeout)
            }
        })
    }

    /// The segment's header and metadata, as [`info`](crate::info) gives them.
    ///
    /// # Errors
    ///
    /// [`Error::Forked`] in a child that inherited the handle;
    /// [`Error::Truncated`] if the file was cut short.
    ///
    /// ```
    /// # let name = format!("doc-seg-info-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 32)?;
    /// seg.write(0, b"x")?;
    /// let info = seg.info()?;
    /// assert_eq!(info.size, 32);
    /// assert_eq!(info.last_writer_pid, Some(std::process::id()));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn info(&self) -> Result<SegmentInfo> {
        self.usable()?;
        self.intact()?;
        let mut fields = HeaderFields {
            capacity: self.size() as u64,
            lifetime: self.lifetime().code(),
            ..self.header().fields()
        };
        self.mapping.note_foreign_holder(&mut fields);
        let owner = fields.lock_word & OWNER_MASK;
        Ok(SegmentInfo::new(
            self.name.clone(),
            &fields,
            self.mapping.owner_and_mode(),
            owner != 0 && self.mapping.is_alive(owner),
        ))
    }
}

/// A copy made by [`Segment::read_consistent`].
///
/// ```
/// # let name = format!("doc-snapshot-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 4)?;
/// seg.write(0, b"abcd")?;
/// let shmbox::Snapshot { data, generation } = seg.read_consistent(1, 2)?;
/// assert_eq!((data.as_slice(), generation), (&b"bc"[..], 1));
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The bytes.
    pub data: Vec<u8>,
    /// The generation they belong to: how many writes were committed before.
    pub generation: u64,
}

/// What [`Segment::read_consistent_into`] copied.
///
/// ```
/// # let name = format!("doc-copied-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 4)?;
/// let mut buf = [0u8; 10];
/// let copied = seg.read_consistent_into(0, &mut buf)?;
/// assert_eq!((copied.len, copied.generation), (4, 0)); // clamped to the size
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// How many bytes were copied.
    pub len: usize,
    /// The generation they belong to.
    pub generation: u64,
}

/// Removes a segment's name. Processes that have it open keep using it; the
/// memory is freed when the last of them closes it.
///
/// An [`UntilLastClose`](Lifetime::UntilLastClose) segment that another
/// process has open is refused with [`Error::Busy`]: it is removed anyway when
/// the last one closes it, and removing it earlier would let a second segment
/// of the same name appear beside the live one.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Busy`], [`Error::PermissionDenied`]; on
/// Windows, where a segment goes with its last handle, [`Error::Unsupported`]
/// for a segment that exists.
///
/// ```
/// let name = format!("doc-remove-{}", std::process::id());
/// let seg = shmbox::SegmentOptions::new()
///     .lifetime(shmbox::Lifetime::Persistent)
///     .create(&name, 8)?;
/// drop(seg);
/// shmbox::remove(&name)?;
/// assert!(matches!(shmbox::remove(&name), Err(shmbox::Error::NotFound { .. })));
/// # Ok::<(), shmbox::Error>(())
/// ```
pub fn remove(name: impl AsRef<str>) -> Result<()> {
    sys::remove(&SegmentName::new(name.as_ref())?)
}

/// Removes every [`UntilLastClose`](Lifetime::UntilLastClose) segment that
/// no process holds any more, because its last holders died without closing
/// it, and returns their names.
///
/// shmbox starts no helper process to notice such deaths. [`Segment::open`],
/// [`Segment::create`], [`info`](crate::info) and [`list`](crate::list)
/// reclaim such segments on the way (`open`, `create` and `info` at most
/// once a second per process); call this, or run `shmbox gc`, to reclaim
/// them now. A segment is removed only once the kernel proves that nobody
/// holds it: every holder keeps a lock on it that the kernel drops when the
/// holder exits, however it exits.
///
/// On Windows the kernel frees a segment with its last handle, and this
/// returns an empty list.
///
/// # Errors
///
/// [`Error::Io`] if the segment directory cannot be read.
///
/// ```
/// let name = format!("doc-reclaim-{}", std::process::id());
/// let seg = shmbox::Segment::create(&name, 8)?;
/// // A live segment is never reclaimed.
/// assert!(!shmbox::reclaim()?.iter().any(|n| n.as_str() == name));
/// # drop(seg);
/// # Ok::<(), shmbox::Error>(())
/// ```
pub fn reclaim() -> Result<Vec<SegmentName>> {
    sys::reclaim()
}

/// The segment layer over whichever backend this build has: the real one,
/// or, under miri, the in-process one (`sys/memory.rs`), so that miri checks
/// the guard, the views and the lock-free reads for undefined behaviour and
/// data races.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{Error, Segment, SegmentOptions};

    fn unique(tag: &str) -> String {
        use crate::sync::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "unit-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A writer changes the data through the guard's view and its `Pod`
    /// accessors while a lock-free reader in another thread copies it: every
    /// copy the reader keeps is one whole write.
    #[test]
    fn guard_writes_and_a_lock_free_reader_in_another_thread() {
        const ROUNDS: u64 = if cfg!(miri) { 12 } else { 2000 };
        let seg = SegmentOptions::new()
            .timeout(Duration::from_secs(60))
            .create(unique("guard-reader"), 64)
            .unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for v in 1..=ROUNDS {
                    let mut guard = seg.lock().unwrap();
                    if v % 2 == 0 {
                        guard.write_pod(0, &[v; 8]).unwrap();
                    } else {
                        let mut data = guard.data_mut();
                        data.copy_from_slice(0, bytemuck::bytes_of(&[v; 8]))
                            .unwrap();
                    }
                }
            });
            let mut last = 0;
            while last < ROUNDS {
                let mut words = [0u64; 8];
                let copied = seg
                    .read_consistent_into(0, bytemuck::bytes_of_mut(&mut words))
                    .unwrap();
                assert!(words.iter().all(|&w| w == words[0]), "torn: {words:?}");
                assert_eq!(copied.generation, words[0], "{words:?}");
                assert!(words[0] >= last, "went back from {last} to {}", words[0]);
                last = words[0];
                std::thread::yield_now();
            }
        });
        let guard = seg.lock().unwrap();
        assert_eq!(guard.read_pod::<[u64; 8]>(0).unwrap(), [ROUNDS; 8]);
        assert_eq!(guard.data().to_vec().unwrap().len(), 64);
    }

    /// The views check every range, and the raw slices see what the views
    /// wrote.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "miri's weak-memory model cannot yet mix byte and word atomics on one \
                  location, even one after the other (it panics); the guard test above \
                  keeps to whole words"
    )]
    fn views_check_ranges_and_slices_agree_with_them() {
        let seg = Segment::create(unique("views"), 16).unwrap();
        let mut guard = seg.lock().unwrap();
        let mut data = guard.data_mut();
        data.fill(b'.').unwrap();
        data.slice_mut(4..8)
            .unwrap()
            .copy_from_slice(0, b"abcd")
            .unwrap();
        assert!(matches!(
            data.copy_from_slice(14, b"xyz"),
            Err(Error::OutOfBounds {
                offset: 14,
                len: 3,
                size: 16
            })
        ));
        assert!(data.slice(10..20).is_err());
        assert!(data.get(16).is_err());
        assert_eq!(data.get(5).unwrap(), b'b');
        // SAFETY: this test's segment; nothing else reads or writes it.
        let raw = unsafe { guard.as_slice() };
        assert_eq!(raw, b"....abcd........");
        // SAFETY: as above.
        let raw = unsafe { guard.as_mut_slice() };
        raw[0] = b'!';
        assert_eq!(guard.data().get(0).unwrap(), b'!');
        drop(guard);
        assert_eq!(seg.read(0, 5).unwrap(), b"!...a");
    }

    /// A guard taken in a `Drop` that runs while a panic unwinds, and
    /// written through there, commits (the write began during the panic, so
    /// the panic did not interrupt it). A write that a panic interrupts does
    /// not.
    #[test]
    fn a_guard_taken_while_unwinding_commits_and_an_interrupted_one_does_not() {
        struct WriteOnDrop<'a>(&'a Segment);
        impl Drop for WriteOnDrop<'_> {
            fn drop(&mut self) {
                let mut guard = self.0.lock().unwrap();
                guard.write(0, b"cleanup").unwrap();
            }
        }
        let seg = Segment::create(unique("unwinding"), 8).unwrap();
        let before = seg.generation();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _cleanup = WriteOnDrop(&seg);
            panic!("on purpose");
        }));
        assert!(unwound.is_err());
        assert_eq!(seg.generation(), before + 1, "the drop's write committed");
        assert_eq!(seg.read(0, 7).unwrap(), b"cleanup");

        let interrupted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut guard = seg.lock().unwrap();
            guard.write(0, b"half").unwrap();
            panic!("mid-write");
        }));
        assert!(interrupted.is_err());
        assert!(matches!(
            seg.read_consistent(0, 8),
            Err(Error::Inconsistent { .. })
        ));
    }

    /// Regression: a peer that scribbles on the lock word while this handle
    /// holds the lock made the unlock `debug_assert!` (a panic in `Drop`).
    /// It is an error now, and a dropped guard stays silent.
    #[test]
    fn a_lock_word_changed_under_the_holder_is_corrupt_not_a_panic() {
        let seg = Segment::create(unique("scribble"), 8).unwrap();
        let scribble = |seg: &Segment| {
            let word = &seg.header().lock_word;
            word.store(
                word.load(crate::sync::Ordering::Relaxed) ^ 0x5,
                crate::sync::Ordering::Relaxed,
            );
        };
        let mut guard = seg.lock().unwrap();
        guard.write(0, b"x").unwrap();
        scribble(&seg);
        match guard.unlock() {
            Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("lock word"), "{reason}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // The same through a drop: no panic.
        seg.header()
            .lock_word
            .store(0, crate::sync::Ordering::Relaxed);
        let guard = seg.lock().unwrap();
        scribble(&seg);
        drop(guard);
        seg.header()
            .lock_word
            .store(0, crate::sync::Ordering::Relaxed);
        assert!(seg.lock().is_ok());
    }
}
