//! Error types.
//!
//! Every failure is a variant of [`Error`] that names the condition. Where the
//! operating system reported it, the original [`io::Error`] is kept as the
//! [`source`](std::error::Error::source). Each message says what to do next.

use std::fmt;
use std::io;
use std::time::Duration;

/// A specialised `Result` for this crate.
///
/// ```
/// fn size_of(name: &str) -> shmbox::Result<usize> {
///     Ok(shmbox::info(name)?.size)
/// }
/// # assert!(matches!(size_of("shmbox-doc-no-such-segment"), Err(shmbox::Error::NotFound { .. })));
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an operation was waiting for when it timed out.
///
/// ```
/// use shmbox::WaitFor;
/// assert_eq!(WaitFor::Lock.to_string(), "the lock");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitFor {
    /// The segment's cross-process lock.
    Lock,
    /// A change committed by a writer ([`Segment::wait_for_change`](crate::Segment::wait_for_change)).
    Change,
    /// A write in progress to finish, so that a lock-free read sees whole data.
    ConsistentRead,
}

impl fmt::Display for WaitFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitFor::Lock => "the lock",
            WaitFor::Change => "a change",
            WaitFor::ConsistentRead => "a write in progress to finish",
        })
    }
}

/// Everything that can go wrong.
///
/// Match on the variant to handle a condition; print it for a message that
/// says what happened and what to do.
///
/// ```
/// use shmbox::{Error, Segment};
///
/// match Segment::open("shmbox-doc-surely-absent") {
///     Err(Error::NotFound { name }) => assert_eq!(name, "shmbox-doc-surely-absent"),
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name cannot name a segment.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A size of zero, or too large to map.
    #[error("invalid segment size {size}: {reason}")]
    InvalidSize {
        /// The size as given.
        size: u64,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Permission bits that cannot be used for a segment.
    #[error(
        "invalid mode {mode:#o}: only the permission bits 0o777 may be set, \
         and the owner must keep read and write access (0o600)"
    )]
    InvalidMode {
        /// The mode as given.
        mode: u32,
    },

    /// No segment has this name.
    #[error("no segment named {name:?} (create it first, or open it with open_or_create)")]
    NotFound {
        /// The segment's name.
        name: String,
    },

    /// Exclusive creation found a segment of this name.
    #[error("a segment named {name:?} already exists (open it, or remove it first)")]
    AlreadyExists {
        /// The segment's name.
        name: String,
    },

    /// The segment exists with another size than the one asked for.
    #[error(
        "segment {name:?} holds {existing} bytes, not the {requested} asked for \
         (open it without a size to use it as it is, or remove it and create it again)"
    )]
    SizeMismatch {
        /// The segment's name.
        name: String,
        /// Its size.
        existing: usize,
        /// The size asked for.
        requested: usize,
    },

    /// An offset past the end of the segment.
    #[error(
        "offset {offset} is past the end of the segment ({size} bytes): use an offset from 0 to {size}"
    )]
    OutOfRange {
        /// The offset as given.
        offset: usize,
        /// The segment's size.
        size: usize,
    },

    /// A range of bytes that does not lie within a view of the data (see
    /// [`SharedBytes`](crate::SharedBytes)): unlike the clamped
    /// [`Segment::write`](crate::Segment::write), exact copies need every
    /// byte to fit.
    #[error("bytes {offset}..{offset}+{len} do not lie within the {size} bytes at hand")]
    OutOfBounds {
        /// Where the range starts.
        offset: usize,
        /// How many bytes it covers.
        len: usize,
        /// How many bytes there are.
        size: usize,
    },

    /// The handle was inherited by a child made by `fork()`: its locks and
    /// its hold on the segment belong to the process that opened it, so it
    /// cannot be used here.
    #[error(
        "segment {name:?} was opened by process {opened_by}, and this process is a child \
         made by fork() since; a handle cannot cross fork() (open the segment again here)"
    )]
    Forked {
        /// The segment's name.
        name: String,
        /// The pid of the process that opened the handle.
        opened_by: u32,
    },

    /// A wait ran out of time.
    #[error("{}", timeout_message(name, *waiting_for, *timeout))]
    Timeout {
        /// The segment's name.
        name: String,
        /// What the operation was waiting for.
        waiting_for: WaitFor,
        /// How long it waited.
        timeout: Duration,
    },

    /// The segment was made by another format version of this crate.
    #[error(
        "segment {name:?} has format version {found}, but this build reads version {supported} \
         (open it with a matching version of shmbox)"
    )]
    IncompatibleVersion {
        /// The segment's name.
        name: String,
        /// The version in its header.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },

    /// The segment's creator has not finished initialising it.
    #[error(
        "segment {name:?} was still not initialised after {waited:?}; its creator may have died \
         while creating it (remove it and create it again)"
    )]
    NotInitialized {
        /// The segment's name.
        name: String,
        /// How long the opener waited.
        waited: Duration,
    },

    /// The file under the name is not a valid segment of this format.
    #[error(
        "segment {name:?} is not a valid shmbox segment: {reason} (remove it and create it again)"
    )]
    Corrupt {
        /// The segment's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The segment belongs to another user, so it is not trusted by default.
    #[error(
        "segment {name:?} belongs to uid {owner_uid}, not to this user (uid {our_uid}); \
         another user may have squatted the name (remove it, or allow other owners explicitly)"
    )]
    ForeignOwner {
        /// The segment's name.
        name: String,
        /// The uid that owns it.
        owner_uid: u32,
        /// The effective uid of this process.
        our_uid: u32,
    },

    /// Every user may write the segment, so it is not trusted by default.
    #[error(
        "segment {name:?} has mode {mode:04o}: any user can write to it, so its contents and \
         its lock cannot be trusted (remove the o+w bit with chmod, or allow such segments \
         explicitly)"
    )]
    WritableByOthers {
        /// The segment's name.
        name: String,
        /// Its permission bits.
        mode: u32,
    },

    /// The operating system refused access.
    #[error("permission denied for segment {name:?} (check its mode and owner)")]
    PermissionDenied {
        /// The segment's name.
        name: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },

    /// The segment's file was cut short (truncated) while this handle had it
    /// mapped. The handle survives, but what it reads or writes now means
    /// nothing: every operation on it fails with this error.
    #[error(
        "the file of segment {name:?} was cut short while it was open; another process \
         truncated it (close the segment, then remove it and create it again)"
    )]
    Truncated {
        /// The segment's name.
        name: String,
    },

    /// A writer died in the middle of a write, so the data may be torn.
    #[error(
        "the data of segment {name:?} may be torn: a writer died in the middle of a write after \
         generation {generation} (write to it, or lock it and call mark_consistent, to repair it)"
    )]
    Inconsistent {
        /// The segment's name.
        name: String,
        /// The last generation committed before the interrupted write.
        generation: u64,
    },

    /// The operation cannot proceed while other processes use the segment.
    #[error("segment {name:?} is busy: {reason}")]
    Busy {
        /// The segment's name.
        name: String,
        /// Why.
        reason: &'static str,
    },

    /// There is not enough shared memory for the segment.
    #[error(
        "not enough shared memory for segment {name:?} of {size} bytes (free some, or ask for less)"
    )]
    NoSpace {
        /// The segment's name.
        name: String,
        /// The size asked for.
        size: usize,
        /// The system's error.
        #[source]
        source: io::Error,
    },

    /// This platform or configuration lacks something the operation needs.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is missing.
        what: &'static str,
    },

    /// A location (`--url`) that names no place segments can be kept.
    #[error("invalid location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as given, any password hidden.
        location: String,
        /// Why it was refused.
        reason: String,
    },

    /// The lease of a remote segment's lock ran out while this handle held
    /// it: this process was paused, or cut off from the server, for longer
    /// than the lease, and another process may have taken the lock since.
    /// Nothing written under the lost lock landed (see docs/REMOTE.md).
    #[error(
        "the lock of segment {name:?} at {location} was lost: its lease ran out while this \
         process held it (paused or cut off for longer than the lease), and nothing written \
         under it landed (lock it again, and redo the write)"
    )]
    LeaseLost {
        /// The segment's name.
        name: String,
        /// Where it is kept, any password hidden.
        location: String,
    },

    /// A remote segment's server could not be used: refused, unreachable,
    /// timed out, restarted, or it rejected the credentials.
    #[error("{operation} of segment {name:?} at {location} failed: {reason}")]
    Remote {
        /// The segment's name (empty for operations on no one segment).
        name: String,
        /// Where, any password hidden.
        location: String,
        /// What the library was doing.
        operation: &'static str,
        /// What went wrong, and what to do.
        reason: String,
    },

    /// Any other error from the operating system.
    #[error("{operation} failed for segment {name:?}")]
    Io {
        /// The segment's name.
        name: String,
        /// What the library was doing.
        operation: &'static str,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

fn timeout_message(name: &str, waiting_for: WaitFor, timeout: Duration) -> String {
    let hint = match waiting_for {
        WaitFor::Lock => "another process holds it (try again, or wait longer)",
        WaitFor::Change => "no process committed a write meanwhile",
        WaitFor::ConsistentRead => "a live writer kept it busy (try again, or wait longer)",
    };
    format!("timed out after {timeout:?} waiting for {waiting_for} of segment {name:?}: {hint}")
}

impl Error {
    /// The name of the segment the error is about, when there is one.
    ///
    /// ```
    /// let err = shmbox::Segment::open("shmbox-doc-absent-2").unwrap_err();
    /// assert_eq!(err.segment_name(), Some("shmbox-doc-absent-2"));
    /// ```
    pub fn segment_name(&self) -> Option<&str> {
        match self {
            Error::InvalidName { name, .. }
            | Error::NotFound { name }
            | Error::AlreadyExists { name }
            | Error::SizeMismatch { name, .. }
            | Error::Timeout { name, .. }
            | Error::IncompatibleVersion { name, .. }
            | Error::NotInitialized { name, .. }
            | Error::Corrupt { name, .. }
            | Error::ForeignOwner { name, .. }
            | Error::WritableByOthers { name, .. }
            | Error::PermissionDenied { name, .. }
            | Error::Inconsistent { name, .. }
            | Error::Truncated { name }
            | Error::Forked { name, .. }
            | Error::Busy { name, .. }
            | Error::NoSpace { name, .. }
            | Error::LeaseLost { name, .. }
            | Error::Io { name, .. } => Some(name),
            Error::Remote { name, .. } => Some(name.as_str()).filter(|n| !n.is_empty()),
            Error::InvalidSize { .. }
            | Error::InvalidLocation { .. }
            | Error::InvalidMode { .. }
            | Error::OutOfRange { .. }
            | Error::OutOfBounds { .. }
            | Error::Unsupported { .. } => None,
        }
    }

    /// The closest [`io::ErrorKind`], for code that reports errors as `io::Error`.
    ///
    /// ```
    /// let err = shmbox::Segment::open("shmbox-doc-absent-3").unwrap_err();
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::InvalidName { .. }
            | Error::InvalidSize { .. }
            | Error::InvalidMode { .. }
            | Error::OutOfRange { .. }
            | Error::OutOfBounds { .. }
            | Error::InvalidLocation { .. } => io::ErrorKind::InvalidInput,
            Error::NotFound { .. } => io::ErrorKind::NotFound,
            Error::LeaseLost { .. } => io::ErrorKind::ConnectionAborted,
            Error::Remote { .. } => io::ErrorKind::Other,
            Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            Error::Timeout { .. } | Error::NotInitialized { .. } => io::ErrorKind::TimedOut,
            Error::SizeMismatch { .. }
            | Error::IncompatibleVersion { .. }
            | Error::Corrupt { .. }
            | Error::Truncated { .. }
            | Error::Inconsistent { .. } => io::ErrorKind::InvalidData,
            Error::ForeignOwner { .. }
            | Error::WritableByOthers { .. }
            | Error::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            Error::Busy { .. } => io::ErrorKind::ResourceBusy,
            Error::NoSpace { .. } => io::ErrorKind::StorageFull,
            Error::Unsupported { .. } | Error::Forked { .. } => io::ErrorKind::Unsupported,
            Error::Io { source, .. } => source.kind(),
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}
