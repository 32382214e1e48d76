//! A lock guard that owns a reference to its segment: for guards kept in
//! structs, and for bindings that hold a lock across calls from another
//! language.
//!
//! # Safety
//!
//! `ArcSegmentGuard` keeps a `SegmentGuard<'static>` beside the `Arc` whose
//! segment it borrows. The borrow is never handed out with its `'static`
//! lifetime, and the guard is dropped before the `Arc`.
#![allow(unsafe_code)]

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;

use crate::{OwnerDied, Result, Segment, SegmentGuard, SharedBytes, SharedBytesMut};

/// A [`SegmentGuard`] that holds an [`Arc`] of its segment instead of
/// borrowing it, like `lock_api`'s `ArcMutexGuard`: it has no lifetime, so
/// it can be stored in a struct or kept across calls from C or Python.
///
/// It does what a [`SegmentGuard`] does, by the same names, and like it is
/// not `Send`: the thread that took the lock releases it.
///
/// ```
/// use std::sync::Arc;
///
/// struct Session {
///     guard: shmbox::ArcSegmentGuard, // no lifetime to thread through
/// }
///
/// # let name = format!("doc-arc-guard-{}", std::process::id());
/// let seg = Arc::new(shmbox::Segment::open_or_create(&name, 8)?);
/// let mut session = Session { guard: seg.lock_arc()? };
/// session.guard.write(0, b"held")?;
/// assert!(seg.try_lock()?.is_none()); // still held
/// drop(session); // commits and unlocks
/// assert_eq!(seg.read(0, 4)?, b"held");
/// # Ok::<(), shmbox::Error>(())
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct ArcSegmentGuard {
    /// Borrows `*segment`. Dropped by hand, before `segment`.
    guard: ManuallyDrop<SegmentGuard<'static>>,
    segment: Arc<Segment>,
}

impl fmt::Debug for ArcSegmentGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.guard, f)
    }
}

impl Drop for ArcSegmentGuard {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, while `segment` still holds the
        // segment it borrows; `unlock` takes it out without running this.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
    }
}

impl ArcSegmentGuard {
    /// Turns `lock`, which locks `*segment`, into an owned guard.
    fn new(
        segment: &Arc<Segment>,
        lock: impl FnOnce(&Segment) -> Result<SegmentGuard<'_>>,
    ) -> Result<ArcSegmentGuard> {
        let segment = Arc::clone(segment);
        let guard = lock(&segment)?;
        // SAFETY: the guard borrows the segment inside the `Arc` allocation,
        // which does not move and lives as long as the `segment` field; the
        // guard is dropped before that field (see `Drop` and `unlock`), and
        // its `'static` lifetime never escapes: every method below hands
        // out borrows of `self`, never of `'static`.
        let guard =
            unsafe { std::mem::transmute::<SegmentGuard<'_>, SegmentGuard<'static>>(guard) };
        Ok(ArcSegmentGuard {
            guard: ManuallyDrop::new(guard),
            segment,
        })
    }

    /// The segment this guard locks.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let name = format!("doc-arc-guard-segment-{}", std::process::id());
    /// let seg = Arc::new(shmbox::Segment::open_or_create(&name, 8)?);
    /// let guard = seg.lock_arc()?;
    /// assert!(Arc::ptr_eq(guard.segment(), &seg));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }

    /// As [`SegmentGuard::owner_died`].
    pub fn owner_died(&self) -> Option<OwnerDied> {
        self.guard.owner_died()
    }

    /// As [`SegmentGuard::is_consistent`].
    pub fn is_consistent(&self) -> bool {
        self.guard.is_consistent()
    }

    /// As [`SegmentGuard::mark_consistent`]: starts a write, which commits
    /// when the guard is released.
    pub fn mark_consistent(&mut self) {
        self.guard.mark_consistent()
    }

    /// As [`SegmentGuard::data`].
    pub fn data(&self) -> SharedBytes<'_> {
        self.guard.data()
    }

    /// As [`SegmentGuard::data_mut`].
    pub fn data_mut(&mut self) -> SharedBytesMut<'_> {
        self.guard.data_mut()
    }

    /// As [`SegmentGuard::write`].
    ///
    /// # Errors
    ///
    /// As for [`SegmentGuard::write`].
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<usize> {
        self.guard.write(offset, data)
    }

    /// As [`SegmentGuard::read_into`].
    ///
    /// # Errors
    ///
    /// As for [`SegmentGuard::read_into`].
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        self.guard.read_into(offset, buf)
    }

    /// As [`SegmentGuard::read_pod`].
    ///
    /// # Errors
    ///
    /// As for [`SegmentGuard::read_pod`].
    pub fn read_pod<T: Pod>(&self, offset: usize) -> Result<T> {
        self.guard.read_pod(offset)
    }

    /// As [`SegmentGuard::write_pod`].
    ///
    /// # Errors
    ///
    /// As for [`SegmentGuard::write_pod`].
    pub fn write_pod<T: Pod>(&mut self, offset: usize, value: &T) -> Result<()> {
        self.guard.write_pod(offset, value)
    }

    /// As [`SegmentGuard::unlock`]: commits any write and releases the
    /// lock, returning the generation after the commit.
    ///
    /// # Errors
    ///
    /// As for [`SegmentGuard::unlock`].
    pub fn unlock(self) -> Result<u64> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: taken once, and `this` is never dropped, so its `Drop`
        // does not drop the guard again.
        let guard = unsafe { ManuallyDrop::take(&mut this.guard) };
        let result = guard.unlock();
        // SAFETY: read once from a value that is never used or dropped
        // again; the guard that borrowed the segment is gone.
        drop(unsafe { std::ptr::read(&this.segment) });
        result
    }
}

impl Segment {
    /// Takes the lock as [`lock`](Segment::lock) does, for a guard that
    /// owns a reference to the segment (see [`ArcSegmentGuard`]).
    ///
    /// # Errors
    ///
    /// As for [`lock`](Segment::lock).
    pub fn lock_arc(self: &Arc<Self>) -> Result<ArcSegmentGuard> {
        ArcSegmentGuard::new(self, Segment::lock)
    }

    /// Takes the lock as [`lock_timeout`](Segment::lock_timeout) does, for
    /// an [`ArcSegmentGuard`].
    ///
    /// # Errors
    ///
    /// As for [`lock_timeout`](Segment::lock_timeout).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let name = format!("doc-lock-arc-timeout-{}", std::process::id());
    /// let seg = Arc::new(shmbox::Segment::open_or_create(&name, 8)?);
    /// let held = seg.lock_arc()?;
    /// let other = Arc::new(shmbox::Segment::open(&name)?);
    /// assert!(matches!(
    ///     other.lock_arc_timeout(Duration::from_millis(10)),
    ///     Err(shmbox::Error::Timeout { .. })
    /// ));
    /// # drop(held);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn lock_arc_timeout(self: &Arc<Self>, timeout: Duration) -> Result<ArcSegmentGuard> {
        ArcSegmentGuard::new(self, |segment| segment.lock_timeout(timeout))
    }
}
