//! The operating system, behind one private interface.
//!
//! Everything that calls the OS lives here, one file per platform, chosen by
//! `#[path]` as memmap2 does. Every backend provides the same items:
//!
//! - [`Mapping`]: an open, validated and mapped segment. It exposes the header
//!   and data region, the handle's lock id, and `is_alive(id)` for the lock.
//! - `create`, `open`, `remove`, `inspect` and `list`, over [`OpenSpec`] and
//!   [`Inspected`].
//! - `futex_wait` and `futex_wake` on a 32-bit word of a mapping, shared
//!   between processes.
//! - `current_pid`, `current_euid`, `now_unix_ns` and `now_unix_s`.
//!
//! On platforms without a backend, `stub.rs` compiles and returns
//! [`Error::Unsupported`](crate::Error::Unsupported) from every entry point.

use std::time::Duration;

use crate::Lifetime;
use crate::header::HeaderFields;

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(not(target_os = "linux"), path = "stub.rs")]
mod imp;

pub(crate) use imp::*;

/// How to open or create a segment.
#[derive(Debug, Clone)]
pub(crate) struct OpenSpec {
    /// Lifetime of a segment that is created.
    pub(crate) lifetime: Lifetime,
    /// Permission bits of a segment that is created.
    pub(crate) mode: u32,
    /// Whether to trust a segment owned by another user.
    pub(crate) allow_other_owner: bool,
    /// Whether to trust a segment that every user may write.
    pub(crate) allow_writable_by_others: bool,
    /// How long an opener waits for a creator to finish initialising.
    pub(crate) init_timeout: Duration,
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
