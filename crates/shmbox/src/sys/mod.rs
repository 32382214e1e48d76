//! The operating system, behind one private interface.
//!
//! Everything that calls the OS lives here, one file per platform, chosen by
//! `#[path]` as memmap2 does. Every backend provides the same items:
//!
//! - [`Mapping`]: an open, validated and mapped segment. It exposes the header
//!   and data region, the handle's lock id, whether the file was cut short
//!   (`is_cut`) and whether this process is a child that inherited the handle
//!   through `fork` (`forked`), and `parker()`, the OS side of the lock,
//!   seqlock and notification algorithms ([`crate::lock::Parker`]).
//! - [`RawLock`], implemented by `Mapping`: the segment's lock as the backend
//!   builds it. On Linux it is the header's lock word alone (`lock.rs`); on
//!   Windows the named mutex `sync_NAME` that the FoxPro sample uses, with
//!   the lock word taken under it. The layers above hold no OS branches.
//! - `create`, `open`, `remove`, `inspect`, `list` and `reclaim`, over
//!   [`OpenSpec`] and [`Inspected`].
//! - `install_sigbus_handler`, `monotonic_ms`, `current_pid`, `current_euid`,
//!   `now_unix_ns` and `now_unix_s`.
//!
//! On platforms without a backend, `stub.rs` compiles and returns
//! [`Error::Unsupported`](crate::Error::Unsupported) from every entry point.
//! Under miri, `memory.rs` keeps segments in this process's heap, so that the
//! layers above run under miri's checks.

use std::time::Duration;

use crate::Lifetime;
use crate::Result;
use crate::header::HeaderFields;
use crate::lock::{Acquired, Unlocked};

#[cfg_attr(all(target_os = "linux", not(miri)), path = "linux.rs")]
#[cfg_attr(all(windows, not(miri)), path = "windows.rs")]
#[cfg_attr(miri, path = "memory.rs")]
#[cfg_attr(not(any(target_os = "linux", windows, miri)), path = "stub.rs")]
mod imp;

pub(crate) use imp::*;

/// A segment's lock, as a backend builds it.
pub(crate) trait RawLock {
    /// Takes the lock if that is one uncontended atomic instruction, and says
    /// whether it did. `false` means only "use `lock`": a backend without
    /// such a fast path always says so.
    #[inline]
    fn lock_fast(&self) -> bool {
        false
    }
    /// Takes the lock, waiting up to `timeout`; `Ok(None)` if it stayed held
    /// by a live holder that long.
    fn lock(&self, timeout: Duration) -> Result<Option<Acquired>>;
    /// Takes the lock if no waiting is needed: it is free, or its holder
    /// died. `Ok(None)` if a live holder has it.
    fn try_lock(&self) -> Result<Option<Acquired>>;
    /// Releases the lock if that is one atomic instruction (nobody waits or
    /// watches), and says whether it did; `false` means only "use `unlock`".
    #[inline]
    fn unlock_fast(&self) -> bool {
        false
    }
    /// Releases the lock this handle holds; `committed` says whether a write
    /// was committed under it. Says whether watchers are to be woken, or
    /// that the lock was no longer this handle's.
    fn unlock(&self, committed: bool) -> Unlocked;
}

/// How to open or create a segment.
#[derive(Debug, Clone)]
pub(crate) struct OpenSpec {
    /// Lifetime of a segment that is created.
    pub(crate) lifetime: Lifetime,
    /// Permission bits of a segment that is created.
    #[cfg_attr(any(windows, miri), allow(dead_code))] // Windows objects have no mode bits
    pub(crate) mode: u32,
    /// Whether to trust a segment owned by another user.
    #[cfg_attr(any(windows, miri), allow(dead_code))] // nor owner uids
    pub(crate) allow_other_owner: bool,
    /// Whether to trust a segment that every user may write.
    #[cfg_attr(any(windows, miri), allow(dead_code))]
    pub(crate) allow_writable_by_others: bool,
    /// How long an opener waits for a creator to finish initialising.
    #[cfg_attr(miri, allow(dead_code))]
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
    /// Owner uid and permission bits, where the platform has them.
    pub(crate) owner_and_mode: Option<(u32, u32)>,
    /// Whether the lock id in the lock word (if any) belongs to a live handle.
    pub(crate) lock_owner_alive: bool,
}
