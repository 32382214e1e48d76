//! The operating system, behind one private interface.
//!
//! Everything that calls the OS lives here, one file per platform, chosen by
//! `#[path]` as memmap2 does. Every backend provides the same items:
//!
//! - [`Mapping`]: an open, validated and mapped segment. It exposes the header
//!   and data region, the handle's lock id, `is_alive(id)` for the lock, and
//!   `wait`/`wake` on a 32-bit word of its header, shared between processes
//!   (a futex on Linux).
//! - `OS_MUTEX`: whether the lock is an OS object that the backend takes
//!   first (`Mapping::lock_os_mutex`, `unlock_os_mutex`). On Windows it is the
//!   named mutex `sync_NAME` that the FoxPro sample uses, so that shmbox and
//!   such programs exclude each other; the header's lock word is then taken
//!   only under it. On Linux the lock word alone is the lock.
//! - `create`, `open`, `remove`, `inspect` and `list`, over [`OpenSpec`] and
//!   [`Inspected`].
//! - `monotonic_ms`, `current_pid`, `current_euid`, `now_unix_ns` and
//!   `now_unix_s`.
//!
//! On platforms without a backend, `stub.rs` compiles and returns
//! [`Error::Unsupported`](crate::Error::Unsupported) from every entry point.

use std::time::Duration;

use crate::Lifetime;
use crate::header::HeaderFields;

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(windows, path = "windows.rs")]
#[cfg_attr(not(any(target_os = "linux", windows)), path = "stub.rs")]
mod imp;

pub(crate) use imp::*;

/// How to open or create a segment.
#[derive(Debug, Clone)]
pub(crate) struct OpenSpec {
    /// Lifetime of a segment that is created.
    pub(crate) lifetime: Lifetime,
    /// Permission bits of a segment that is created.
    #[cfg_attr(windows, allow(dead_code))] // Windows objects have no mode bits
    pub(crate) mode: u32,
    /// Whether to trust a segment owned by another user.
    #[cfg_attr(windows, allow(dead_code))] // nor owner uids
    pub(crate) allow_other_owner: bool,
    /// Whether to trust a segment that every user may write.
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) allow_writable_by_others: bool,
    /// How long an opener waits for a creator to finish initialising.
    pub(crate) init_timeout: Duration,
    /// The size the caller expects (`open_or_create`), if any. Only a
    /// backend that cannot learn a size exactly uses it: Windows, for a
    /// mapping that another program made, under Wine (which reports sizes
    /// rounded up to a page).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) expected_size: Option<usize>,
}

/// A segment's header and file metadata, read without mapping it.
#[derive(Debug, Clone)]
pub(crate) struct Inspected {
    pub(crate) fields: HeaderFields,
    pub(crate) owner_uid: u32,
    pub(crate) mode: u32,
    /// Whether the lock id in the lock word (if any) belongs to a live handle.
    pub(crate) lock_owner_alive: bool,
}

/// What taking a backend's OS mutex (`OS_MUTEX`) came to.
#[cfg_attr(not(windows), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OsLocked {
    /// Taken from a free or cleanly released mutex.
    Acquired,
    /// Taken, but its previous owner ended without releasing it.
    Abandoned,
    /// Held by someone else for the whole timeout.
    TimedOut,
}
