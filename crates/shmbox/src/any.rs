//! A segment wherever it is kept: on this machine, or on a server. The
//! command, the demos and anything else that takes a `--url` work with
//! these.

use std::time::Duration;

#[cfg(feature = "redis")]
use crate::remote::{RemoteGuard, RemoteSegment};
use crate::{
    Lifetime, Location, OwnerDied, Result, Segment, SegmentGuard, SegmentInfo, SegmentName,
    Snapshot,
};

/// A segment on this machine, or on a server (see [`Location`]). It offers
/// what both kinds share: sizes, clamped reads and writes, consistent reads,
/// the lock, change notification and info.
///
/// ```
/// use shmbox::{AnySegment, Location, SegmentOptions};
///
/// # let name = format!("doc-any-{}", std::process::id());
/// let seg: AnySegment = SegmentOptions::new().open_or_create_at(&Location::Local, &name, 16)?;
/// seg.write(0, b"anywhere")?;
/// assert_eq!(seg.read_consistent(0, 8)?.data, b"anywhere");
/// assert_eq!(seg.generation()?, 1);
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AnySegment {
    /// In this machine's shared memory.
    Local(Segment),
    /// On a Redis server.
    #[cfg(feature = "redis")]
    Remote(Box<RemoteSegment>),
}

/// The lock of an [`AnySegment`], held until dropped or unlocked.
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock at once"]
#[non_exhaustive]
pub enum AnyGuard<'a> {
    /// A local segment's guard.
    Local(SegmentGuard<'a>),
    /// A remote segment's guard.
    #[cfg(feature = "redis")]
    Remote(RemoteGuard<'a>),
}

macro_rules! each {
    ($value:expr, $s:ident => $body:expr) => {
        match $value {
            AnySegment::Local($s) => $body,
            #[cfg(feature = "redis")]
            AnySegment::Remote($s) => $body,
        }
    };
}

macro_rules! each_guard {
    ($value:expr, $g:ident => $body:expr) => {
        match $value {
            AnyGuard::Local($g) => $body,
            #[cfg(feature = "redis")]
            AnyGuard::Remote($g) => $body,
        }
    };
}

impl AnySegment {
    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        each!(self, s => s.name())
    }

    /// Where it is kept.
    pub fn location(&self) -> Location {
        match self {
            AnySegment::Local(_) => Location::Local,
            #[cfg(feature = "redis")]
            AnySegment::Remote(s) => Location::Redis(s.location().clone()),
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> usize {
        each!(self, s => s.size())
    }

    /// Its lifetime.
    pub fn lifetime(&self) -> Lifetime {
        each!(self, s => s.lifetime())
    }

    /// How long locking waits by default.
    pub fn timeout(&self) -> Duration {
        each!(self, s => s.timeout())
    }

    /// The number of writes committed so far (a round trip, remotely).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`](crate::Error::Remote) for a server that cannot be reached.
    pub fn generation(&self) -> Result<u64> {
        match self {
            AnySegment::Local(s) => Ok(s.generation()),
            #[cfg(feature = "redis")]
            AnySegment::Remote(s) => s.generation(),
        }
    }

    /// Writes under the lock, clamped to the size; see [`Segment::write`].
    ///
    /// # Errors
    ///
    /// As for [`Segment::write`], and [`Error::Remote`](crate::Error::Remote).
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<usize> {
        each!(self, s => s.write(offset, data))
    }

    /// Reads under the lock; see [`Segment::read`].
    ///
    /// # Errors
    ///
    /// As for [`Segment::read`], and [`Error::Remote`](crate::Error::Remote).
    pub fn read(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        each!(self, s => s.read(offset, len))
    }

    /// Reads without the lock, never torn; see [`Segment::read_consistent`].
    ///
    /// # Errors
    ///
    /// As for [`Segment::read_consistent`], and [`Error::Remote`](crate::Error::Remote).
    pub fn read_consistent(&self, offset: usize, len: usize) -> Result<Snapshot> {
        each!(self, s => s.read_consistent(offset, len))
    }

    /// Takes the lock, waiting up to [`timeout`](AnySegment::timeout).
    ///
    /// # Errors
    ///
    /// As for [`Segment::lock`], and [`Error::Remote`](crate::Error::Remote).
    pub fn lock(&self) -> Result<AnyGuard<'_>> {
        self.lock_timeout(self.timeout())
    }

    /// Takes the lock, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// As for [`Segment::lock_timeout`], and [`Error::Remote`](crate::Error::Remote).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<AnyGuard<'_>> {
        match self {
            AnySegment::Local(s) => s.lock_timeout(timeout).map(AnyGuard::Local),
            #[cfg(feature = "redis")]
            AnySegment::Remote(s) => s.lock_timeout(timeout).map(AnyGuard::Remote),
        }
    }

    /// Takes the lock if no live holder has it.
    ///
    /// # Errors
    ///
    /// As for [`Segment::try_lock`], and [`Error::Remote`](crate::Error::Remote).
    pub fn try_lock(&self) -> Result<Option<AnyGuard<'_>>> {
        match self {
            AnySegment::Local(s) => s.try_lock().map(|g| g.map(AnyGuard::Local)),
            #[cfg(feature = "redis")]
            AnySegment::Remote(s) => s.try_lock().map(|g| g.map(AnyGuard::Remote)),
        }
    }

    /// Waits for a commit after generation `since`; see
    /// [`Segment::wait_for_change`].
    ///
    /// # Errors
    ///
    /// As for [`Segment::wait_for_change`], and [`Error::Remote`](crate::Error::Remote).
    pub fn wait_for_change(&self, since: u64, timeout: Duration) -> Result<u64> {
        each!(self, s => s.wait_for_change(since, timeout))
    }

    /// The segment's metadata.
    ///
    /// # Errors
    ///
    /// As for [`Segment::info`], and [`Error::Remote`](crate::Error::Remote).
    pub fn info(&self) -> Result<SegmentInfo> {
        each!(self, s => s.info())
    }
}

impl AnyGuard<'_> {
    /// `Some` if the previous holder died holding the lock.
    pub fn owner_died(&self) -> Option<OwnerDied> {
        each_guard!(self, g => g.owner_died())
    }

    /// For a remote segment, the host of the holder that died.
    pub fn owner_died_host(&self) -> Option<&str> {
        match self {
            AnyGuard::Local(_) => None,
            #[cfg(feature = "redis")]
            AnyGuard::Remote(g) => g.owner_died_host(),
        }
    }

    /// False if a writer died mid-write and left the data torn.
    pub fn is_consistent(&self) -> bool {
        each_guard!(self, g => g.is_consistent())
    }

    /// Declares the data consistent: releasing commits a new generation.
    pub fn mark_consistent(&mut self) {
        each_guard!(self, g => g.mark_consistent())
    }

    /// Writes at `offset`, clamped; committed on release.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`](crate::Error::OutOfRange), and for a remote segment
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) or [`Error::Remote`](crate::Error::Remote).
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<usize> {
        each_guard!(self, g => g.write(offset, data))
    }

    /// Reads into `buf` from `offset`; returns how many bytes were read.
    ///
    /// # Errors
    ///
    /// As for [`write`](AnyGuard::write).
    ///
    /// ```
    /// # use shmbox::{Location, SegmentOptions};
    /// # let name = format!("doc-any-guard-read-{}", std::process::id());
    /// let seg = SegmentOptions::new().open_or_create_at(&Location::Local, &name, 8)?;
    /// seg.write(0, b"12345678")?;
    /// let guard = seg.lock()?;
    /// let mut buf = [0; 4];
    /// assert_eq!(guard.read_into(6, &mut buf)?, 2); // clamped at the end
    /// assert_eq!(&buf[..2], b"78");
    /// assert!(matches!(guard.read_into(9, &mut buf), Err(shmbox::Error::OutOfRange { .. })));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        each_guard!(self, g => g.read_into(offset, buf))
    }

    /// Releases the lock, committing what was written, and returns the
    /// generation.
    ///
    /// # Errors
    ///
    /// As for [`SegmentGuard::unlock`], and for a remote segment
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) (nothing landed) or [`Error::Remote`](crate::Error::Remote).
    pub fn unlock(self) -> Result<u64> {
        each_guard!(self, g => g.unlock())
    }
}

#[cfg(not(feature = "redis"))]
fn no_redis() -> crate::Error {
    crate::Error::Unsupported {
        what: "segments on a Redis server need shmbox built with its `redis` feature",
    }
}

/// [`info`](crate::info) at `location`.
///
/// # Errors
///
/// As for [`info`](crate::info), and [`Error::Remote`](crate::Error::Remote).
pub fn info_at(location: &Location, name: &str) -> Result<SegmentInfo> {
    match location {
        Location::Local => crate::info(name),
        #[cfg(feature = "redis")]
        Location::Redis(at) => crate::remote::info(at, name),
        #[cfg(not(feature = "redis"))]
        Location::Redis(_) => Err(no_redis()),
    }
}

/// [`list`](crate::list) at `location`.
///
/// # Errors
///
/// As for [`list`](crate::list), and [`Error::Remote`](crate::Error::Remote).
pub fn list_at(location: &Location) -> Result<Vec<SegmentInfo>> {
    match location {
        Location::Local => crate::list(),
        #[cfg(feature = "redis")]
        Location::Redis(at) => crate::remote::list(at),
        #[cfg(not(feature = "redis"))]
        Location::Redis(_) => Err(no_redis()),
    }
}

/// [`remove`](crate::remove) at `location`.
///
/// # Errors
///
/// As for [`remove`](crate::remove), and [`Error::Remote`](crate::Error::Remote).
pub fn remove_at(location: &Location, name: &str) -> Result<()> {
    match location {
        Location::Local => crate::remove(name),
        #[cfg(feature = "redis")]
        Location::Redis(at) => crate::remote::remove(at, name),
        #[cfg(not(feature = "redis"))]
        Location::Redis(_) => Err(no_redis()),
    }
}

/// How [`SegmentOptions`](crate::SegmentOptions) opens at a location.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    Open,
    Create,
    OpenOrCreate,
}

impl crate::SegmentOptions {
    fn at(
        &self,
        location: &Location,
        name: &str,
        size: usize,
        mode: OpenMode,
    ) -> Result<AnySegment> {
        match location {
            Location::Local => match mode {
                OpenMode::Open => self.open(name),
                OpenMode::Create => self.create(name, size),
                OpenMode::OpenOrCreate => self.open_or_create(name, size),
            }
            .map(AnySegment::Local),
            #[cfg(feature = "redis")]
            Location::Redis(at) => RemoteSegment::open(
                at,
                name,
                size,
                self.lifetime_option(),
                self.timeout_option(),
                match mode {
                    OpenMode::Open => crate::remote::Mode::Open,
                    OpenMode::Create => crate::remote::Mode::Create,
                    OpenMode::OpenOrCreate => crate::remote::Mode::OpenOrCreate,
                },
            )
            .map(|s| AnySegment::Remote(Box::new(s))),
            #[cfg(not(feature = "redis"))]
            Location::Redis(_) => {
                let _ = (name, size, mode);
                Err(no_redis())
            }
        }
    }

    /// Opens the existing segment `name` at `location`.
    ///
    /// For a remote segment, the lifetime and timeout apply; the mode and
    /// the trust settings do not (the server's access control applies).
    ///
    /// # Errors
    ///
    /// As for [`open`](crate::SegmentOptions::open), and
    /// [`Error::Remote`](crate::Error::Remote).
    pub fn open_at(&self, location: &Location, name: &str) -> Result<AnySegment> {
        self.at(location, name, 0, OpenMode::Open)
    }

    /// Creates the segment `name` of `size` bytes at `location`.
    ///
    /// # Errors
    ///
    /// As for [`create`](crate::SegmentOptions::create), and
    /// [`Error::Remote`](crate::Error::Remote).
    pub fn create_at(&self, location: &Location, name: &str, size: usize) -> Result<AnySegment> {
        self.at(location, name, size, OpenMode::Create)
    }

    /// Opens the segment `name` at `location`, or creates it with `size`
    /// bytes.
    ///
    /// # Errors
    ///
    /// As for [`open_or_create`](crate::SegmentOptions::open_or_create), and
    /// [`Error::Remote`](crate::Error::Remote).
    pub fn open_or_create_at(
        &self,
        location: &Location,
        name: &str,
        size: usize,
    ) -> Result<AnySegment> {
        self.at(location, name, size, OpenMode::OpenOrCreate)
    }
}
