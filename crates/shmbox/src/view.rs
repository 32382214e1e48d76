//! Views of a segment's data under the lock, which copy bytes in and out
//! and never hand out a reference to them.
//!
//! # Safety
//!
//! The views hold ranges of the data region that their constructors checked,
//! and pass them to `shared_bytes`, whose copies are defined while other
//! processes (or threads, through lock-free reads) access the same bytes.
#![allow(unsafe_code)]

use std::fmt;
use std::ops::{Bound, Deref, RangeBounds};

use bytemuck::Pod;

use crate::shared_bytes::{copy_from_shared, copy_to_shared};
use crate::{Error, Result, Segment};

/// A view of bytes of a segment, for reading them while its lock is held:
/// from [`SegmentGuard::data`](crate::SegmentGuard::data).
///
/// Bytes in shared memory can change under any reference to them (another
/// process may ignore the lock), so a view never gives out `&[u8]` or `&T`:
/// it copies out, with accesses that are defined while others write. The
/// copies are plain `memcpy` speed.
///
/// ```
/// # let name = format!("doc-shared-bytes-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 16)?;
/// seg.write(0, b"hello, world")?;
/// let guard = seg.lock()?;
/// let data = guard.data();
/// assert_eq!(data.len(), 16);
/// assert_eq!(data.get(4)?, b'o');
/// let mut word = [0u8; 5];
/// data.copy_to_slice(7, &mut word)?;
/// assert_eq!(&word, b"world");
/// assert_eq!(data.slice(0..5)?.to_vec()?, b"hello");
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct SharedBytes<'a> {
    segment: &'a Segment,
    /// First byte of the view, from the start of the data region.
    start: usize,
    len: usize,
}

impl fmt::Debug for SharedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBytes")
            .field("segment", self.segment.name())
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> SharedBytes<'a> {
    /// The whole data region of `segment`. The caller holds its lock.
    #[inline]
    pub(crate) fn whole(segment: &'a Segment) -> SharedBytes<'a> {
        SharedBytes {
            segment,
            start: 0,
            len: segment.size(),
        }
    }

    /// How many bytes the view covers.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-len-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 10)?;
    /// assert_eq!(seg.lock()?.data().len(), 10);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view covers no bytes.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-empty-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 10)?;
    /// assert!(seg.lock()?.data().slice(3..3)?.is_empty());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The byte at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] if `index >= len()`; [`Error::Forked`] or
    /// [`Error::Truncated`] as for the segment.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-get-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// seg.write(0, b"abcd")?;
    /// let guard = seg.lock()?;
    /// assert_eq!(guard.data().get(2)?, b'c');
    /// assert!(matches!(guard.data().get(4), Err(shmbox::Error::OutOfBounds { .. })));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn get(&self, index: usize) -> Result<u8> {
        let mut byte = [0];
        self.copy_to_slice(index, &mut byte)?;
        Ok(byte[0])
    }

    /// Copies `dst.len()` bytes from `offset` of the view into `dst`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] unless `offset + dst.len() <= len()` (nothing
    /// is copied then); [`Error::Forked`] or [`Error::Truncated`] as for the
    /// segment.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-copy-to-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// seg.write(0, b"01234567")?;
    /// let guard = seg.lock()?;
    /// let mut buf = [0u8; 3];
    /// guard.data().copy_to_slice(5, &mut buf)?;
    /// assert_eq!(&buf, b"567");
    /// assert!(guard.data().copy_to_slice(6, &mut buf).is_err());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn copy_to_slice(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        let at = self.range(offset, dst.len())?;
        // SAFETY: `range` checked that the bytes lie in the data region of
        // the live mapping, which `self.segment` keeps alive.
        unsafe { copy_from_shared(self.segment.mapping().data_ptr().add(at), dst) };
        self.segment.intact()
    }

    /// A copy of the whole view.
    ///
    /// # Errors
    ///
    /// [`Error::Forked`] or [`Error::Truncated`] as for the segment.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-to-vec-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 3)?;
    /// seg.write(0, b"xyz")?;
    /// assert_eq!(seg.lock()?.data().to_vec()?, b"xyz");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut out = vec![0; self.len];
        self.copy_to_slice(0, &mut out)?;
        Ok(out)
    }

    /// The part of the view within `range` (offsets into the view).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] if the range does not lie within the view.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-slice-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// seg.write(0, b"abcdefgh")?;
    /// let guard = seg.lock()?;
    /// let tail = guard.data().slice(4..)?;
    /// assert_eq!(tail.to_vec()?, b"efgh");
    /// assert_eq!(tail.slice(..2)?.to_vec()?, b"ef");
    /// assert!(guard.data().slice(6..9).is_err());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Result<SharedBytes<'a>> {
        let (start, len) = bounds(range, self.len)?;
        Ok(SharedBytes {
            segment: self.segment,
            start: self.start + start,
            len,
        })
    }

    /// Reads a plain-old-data value from `offset`, whatever its alignment
    /// there: a struct in shared memory in one call.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] unless `size_of::<T>()` bytes fit at `offset`;
    /// [`Error::Forked`] or [`Error::Truncated`] as for the segment.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-read-pod-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 16)?;
    /// seg.write(4, &7u64.to_ne_bytes())?;
    /// assert_eq!(seg.lock()?.data().read_pod::<u64>(4)?, 7);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn read_pod<T: Pod>(&self, offset: usize) -> Result<T> {
        let mut value = T::zeroed();
        self.copy_to_slice(offset, bytemuck::bytes_of_mut(&mut value))?;
        Ok(value)
    }

    /// The position in the data region of `len` bytes at `offset` of the
    /// view, once checked to lie within it; also checks that the handle may
    /// be used in this process.
    #[inline]
    fn range(&self, offset: usize, len: usize) -> Result<usize> {
        self.segment.usable()?;
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.start + offset),
            _ => Err(Error::OutOfBounds {
                offset,
                len,
                size: self.len,
            }),
        }
    }
}

/// A view of bytes of a segment, for reading and changing them while its
/// lock is held: from [`SegmentGuard::data_mut`](crate::SegmentGuard::data_mut).
/// Everything a [`SharedBytes`] reads, it reads too.
///
/// As [`SharedBytes`], it copies in and out and gives out no references.
/// Changes commit when the guard is released.
///
/// ```
/// # let name = format!("doc-shared-bytes-mut-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// let mut guard = seg.lock()?;
/// let mut data = guard.data_mut();
/// data.fill(b'-')?;
/// data.copy_from_slice(2, b"hi")?;
/// data.set(7, b'!')?;
/// assert_eq!(data.to_vec()?, b"--hi---!");
/// drop(guard);
/// assert_eq!(seg.read(0, 8)?, b"--hi---!");
/// # Ok::<(), shmbox::Error>(())
/// ```
pub struct SharedBytesMut<'a> {
    bytes: SharedBytes<'a>,
}

impl fmt::Debug for SharedBytesMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBytesMut")
            .field("segment", self.bytes.segment.name())
            .field("start", &self.bytes.start)
            .field("len", &self.bytes.len)
            .finish()
    }
}

/// Reading through a `SharedBytesMut` is reading through a `SharedBytes` of
/// the same bytes. (A `SharedBytes` copied out of it aliases it, which is
/// harmless: every access to the bytes is a copy that tolerates others.)
impl<'a> Deref for SharedBytesMut<'a> {
    type Target = SharedBytes<'a>;

    fn deref(&self) -> &SharedBytes<'a> {
        &self.bytes
    }
}

impl<'a> SharedBytesMut<'a> {
    /// The whole data region of `segment`. The caller holds its lock and
    /// has begun a write.
    #[inline]
    pub(crate) fn whole(segment: &'a Segment) -> SharedBytesMut<'a> {
        SharedBytesMut {
            bytes: SharedBytes::whole(segment),
        }
    }

    /// Sets the byte at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] if `index >= len()`; [`Error::Forked`] or
    /// [`Error::Truncated`] as for the segment.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-set-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 2)?;
    /// let mut guard = seg.lock()?;
    /// guard.data_mut().set(1, b'z')?;
    /// assert!(guard.data_mut().set(2, b'z').is_err());
    /// assert_eq!(guard.data().to_vec()?, b"\0z");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn set(&mut self, index: usize, byte: u8) -> Result<()> {
        self.copy_from_slice(index, &[byte])
    }

    /// Copies `src` into the view at `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] unless `offset + src.len() <= len()` (nothing
    /// is copied then); [`Error::Forked`] or [`Error::Truncated`] as for the
    /// segment.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-copy-from-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// let mut guard = seg.lock()?;
    /// guard.data_mut().copy_from_slice(1, b"ab")?;
    /// assert!(guard.data_mut().copy_from_slice(3, b"ab").is_err());
    /// assert_eq!(guard.data().to_vec()?, b"\0ab\0");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn copy_from_slice(&mut self, offset: usize, src: &[u8]) -> Result<()> {
        let at = self.bytes.range(offset, src.len())?;
        // SAFETY: `range` checked that the bytes lie in the data region of
        // the live, writable mapping, which `self.bytes.segment` keeps alive.
        unsafe { copy_to_shared(self.bytes.segment.mapping().data_ptr().add(at), src) };
        self.bytes.segment.intact()
    }

    /// Sets every byte of the view to `byte`.
    ///
    /// # Errors
    ///
    /// [`Error::Forked`] or [`Error::Truncated`] as for the segment.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-fill-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 3)?;
    /// let mut guard = seg.lock()?;
    /// guard.data_mut().fill(7)?;
    /// assert_eq!(guard.data().to_vec()?, [7, 7, 7]);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn fill(&mut self, byte: u8) -> Result<()> {
        let chunk = [byte; 256];
        let mut offset = 0;
        while offset < self.bytes.len {
            let n = (self.bytes.len - offset).min(chunk.len());
            self.copy_from_slice(offset, &chunk[..n])?;
            offset += n;
        }
        self.bytes.segment.usable()
    }

    /// Writes a plain-old-data value at `offset`, whatever its alignment
    /// there.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] unless `size_of::<T>()` bytes fit at `offset`;
    /// [`Error::Forked`] or [`Error::Truncated`] as for the segment.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-write-pod-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 16)?;
    /// let mut guard = seg.lock()?;
    /// guard.data_mut().write_pod(3, &[1u16, 2, 3])?;
    /// assert_eq!(guard.data().read_pod::<[u16; 3]>(3)?, [1, 2, 3]);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn write_pod<T: Pod>(&mut self, offset: usize, value: &T) -> Result<()> {
        self.copy_from_slice(offset, bytemuck::bytes_of(value))
    }

    /// The part of the view within `range`, for changing.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] if the range does not lie within the view.
    ///
    /// ```
    /// # let name = format!("doc-shared-bytes-slice-mut-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 6)?;
    /// let mut guard = seg.lock()?;
    /// let mut data = guard.data_mut();
    /// data.slice_mut(2..4)?.fill(b'#')?;
    /// assert_eq!(data.to_vec()?, b"\0\0##\0\0");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn slice_mut(&mut self, range: impl RangeBounds<usize>) -> Result<SharedBytesMut<'_>> {
        Ok(SharedBytesMut {
            bytes: self.bytes.slice(range)?,
        })
    }
}

/// `range` within `0..len` as `(start, len)`, or `OutOfBounds`.
fn bounds(range: impl RangeBounds<usize>, len: usize) -> Result<(usize, usize)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => Some(s),
        Bound::Excluded(&s) => s.checked_add(1),
        Bound::Unbounded => Some(0),
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => Some(len),
    };
    match (start, end) {
        (Some(s), Some(e)) if s <= e && e <= len => Ok((s, e - s)),
        _ => Err(Error::OutOfBounds {
            offset: start.unwrap_or(usize::MAX),
            len: match (start, end) {
                (Some(s), Some(e)) => e.saturating_sub(s),
                _ => 0,
            },
            size: len,
        }),
    }
}
