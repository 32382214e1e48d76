//! Describing segments: `info`, `list` and what they return.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::header::HeaderFields;
use crate::lock::OWNER_MASK;
use crate::sys;
#[cfg(doc)]
use crate::{Error, Segment};
use crate::{Lifetime, Result, SegmentName};

/// A time a header recorded, if plausible: not 0 (never set) and not past
/// the year 9999 (a corrupt or hostile header may hold any value, and such a
/// time cannot be added to the epoch or printed; found by fuzzing).
fn recorded_time(since_epoch: Duration) -> Option<SystemTime> {
    const END_OF_9999: Duration = Duration::from_secs(253_402_300_799);
    (!since_epoch.is_zero() && since_epoch <= END_OF_9999).then(|| UNIX_EPOCH + since_epoch)
}

/// The state of a segment's lock, as [`info`] saw it.
///
/// ```
/// use shmbox::LockState;
/// # let name = format!("doc-lockstate-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// assert_eq!(shmbox::info(&name)?.lock, LockState::Free);
/// let guard = seg.lock()?;
/// assert!(matches!(shmbox::info(&name)?.lock, LockState::Held { .. }));
/// # drop(guard);
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// A live handle holds it; `pid` is the process it recorded.
    Held {
        /// The holder's pid.
        pid: Option<u32>,
    },
    /// A handle that no longer exists holds it: its process died. The next
    /// locker takes it over.
    Abandoned {
        /// The dead holder's pid.
        pid: Option<u32>,
    },
}

/// A segment's header and metadata, from [`info`], [`list`] or
/// [`Segment::info`].
///
/// ```
/// # let name = format!("doc-info-struct-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 64)?;
/// let info = shmbox::info(&name)?;
/// assert_eq!((info.size, info.lifetime, info.generation), (64, shmbox::Lifetime::UntilLastClose, 0));
/// assert_eq!(info.lock, shmbox::LockState::Free);
/// # drop(seg);
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The segment's name.
    pub name: SegmentName,
    /// Its size in bytes.
    pub size: usize,
    /// The format version of its header.
    pub format_version: u32,
    /// Its lifetime.
    pub lifetime: Lifetime,
    /// Committed writes so far.
    pub generation: u64,
    /// False if a writer died mid-write and nobody has repaired the data.
    pub consistent: bool,
    /// A live writer is in the middle of a write: a lock-free read now
    /// waits for its commit.
    pub writing: bool,
    /// Who holds the lock.
    pub lock: LockState,
    /// The process that committed the last write.
    pub last_writer_pid: Option<u32>,
    /// When the last write was committed, to the second; `None` if never,
    /// or if the header holds an impossible time.
    pub last_write: Option<SystemTime>,
    /// The process that created the segment.
    pub creator_pid: Option<u32>,
    /// When it was created; `None` if the header holds no plausible time.
    pub created: Option<SystemTime>,
    /// How many times the lock was taken over from a dead holder.
    pub owner_deaths: u32,
    /// The uid that owns the segment; `None` on Windows, whose objects
    /// have no owner uid.
    pub owner_uid: Option<u32>,
    /// Its permission bits; `None` on Windows, whose objects have none.
    pub mode: Option<u32>,
    /// For a segment on a server: where, and which hosts hold and wrote it.
    pub remote: Option<RemoteDetails>,
}

/// What [`SegmentInfo`] says of a segment kept on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteDetails {
    /// Where it is kept (any password hidden).
    pub location: String,
    /// The host of the lock's holder, if it is held or abandoned.
    pub lock_holder_host: Option<String>,
    /// The host that committed the last write.
    pub last_writer_host: Option<String>,
    /// The host that created it.
    pub creator_host: Option<String>,
    /// How many handles hold an until-last-close segment open (their leases
    /// still run); 0 for a persistent one.
    pub open_handles: u64,
}

impl SegmentInfo {
    pub(crate) fn new(
        name: SegmentName,
        f: &HeaderFields,
        owner_and_mode: Option<(u32, u32)>,
        lock_owner_alive: bool,
    ) -> SegmentInfo {
        let mid_write = f.seq & 1 == 1;
        let pid = |p: u32| Some(p).filter(|&p| p != 0);
        let lock = match (f.lock_word & OWNER_MASK, lock_owner_alive) {
            (0, _) => LockState::Free,
            (_, true) => LockState::Held {
                pid: pid(f.lock_owner_pid),
            },
            (_, false) => LockState::Abandoned {
                pid: pid(f.lock_owner_pid),
            },
        };
        SegmentInfo {
            name,
            size: f.capacity as usize,
            format_version: f.format_version,
            lifetime: Lifetime::from_code(f.lifetime).unwrap_or_default(),
            generation: f.seq >> 1,
            consistent: !mid_write || lock_owner_alive,
            writing: mid_write && lock_owner_alive,
            lock,
            last_writer_pid: pid(f.last_writer_pid),
            last_write: recorded_time(Duration::from_secs(f.last_write_unix_s)),
            creator_pid: pid(f.creator_pid),
            created: recorded_time(Duration::from_nanos(f.created_unix_ns)),
            owner_deaths: f.owner_deaths,
            owner_uid: owner_and_mode.map(|(uid, _)| uid),
            mode: owner_and_mode.map(|(_, mode)| mode),
            remote: None,
        }
    }

    /// The pid of the live process holding the lock, if any.
    ///
    /// ```
    /// # let name = format!("doc-info-owner-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let guard = seg.lock()?;
    /// assert_eq!(shmbox::info(&name)?.lock_owner_pid(), Some(std::process::id()));
    /// # drop(guard);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn lock_owner_pid(&self) -> Option<u32> {
        match self.lock {
            LockState::Held { pid } => pid,
            _ => None,
        }
    }
}

/// Describes a segment without opening it for use. It may belong to another
/// user. Like [`list`], it removes on the way segments whose holders all
/// died (see [`Lifetime::UntilLastClose`]).
///
/// # Errors
///
/// [`Error::NotFound`] if there is none (or its lifetime is over);
/// [`Error::Corrupt`] or [`Error::IncompatibleVersion`] if it is not a valid
/// segment of this format.
///
/// ```
/// # let name = format!("doc-info-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 128)?;
/// seg.write(0, b"hi")?;
/// let info = shmbox::info(&name)?;
/// assert_eq!((info.size, info.generation), (128, 1));
/// # Ok::<(), shmbox::Error>(())
/// ```
pub fn info(name: impl AsRef<str>) -> Result<SegmentInfo> {
    let name = SegmentName::new(name.as_ref())?;
    let i = sys::info(&name)?;
    Ok(SegmentInfo::new(
        name,
        &i.fields,
        i.owner_and_mode,
        i.lock_owner_alive,
    ))
}

/// Every valid segment of this format on the machine, sorted by name.
/// Files that are not valid segments are left out; [`info`] says what is
/// wrong with one. [`UntilLastClose`](Lifetime::UntilLastClose) segments
/// whose holders all died are removed on the way, and not listed.
///
/// # Errors
///
/// [`Error::Io`] if the segment directory (on Windows, the session's
/// object directory) cannot be read. On Windows this lists the segments
/// that some shmbox process has open, in this session and in `Global\`;
/// a block that only other programs hold is not listed, but [`info`]
/// describes it by name.
///
/// ```
/// # let name = format!("doc-list-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// assert!(shmbox::list()?.iter().any(|i| i.name.as_str() == name));
/// # drop(seg);
/// # Ok::<(), shmbox::Error>(())
/// ```
pub fn list() -> Result<Vec<SegmentInfo>> {
    Ok(sys::list()?
        .into_iter()
        .map(|(name, i)| SegmentInfo::new(name, &i.fields, i.owner_and_mode, i.lock_owner_alive))
        .collect())
}
