//! Fallback backend for platforms without one yet: everything compiles, and
//! every entry point returns [`Error::Unsupported`].

use std::time::Duration;

use super::{Inspected, OpenSpec, RawLock};
use crate::header::{Header, HeaderFields};
use crate::lock::{Acquired, Parker, Unlocked};
use crate::sync::AtomicU32;
use crate::{Error, Lifetime, Result, SegmentName};

const UNSUPPORTED: Error = Error::Unsupported {
    what: "shmbox has no backend for this platform yet",
};

/// Never made on this platform: `open` and `create` always fail.
#[derive(Debug)]
pub(crate) struct Mapping(());

const NEVER: &str = "no Mapping is ever made on this platform";

impl Mapping {
    pub(crate) fn header(&self) -> &Header {
        unreachable!("{NEVER}")
    }
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        unreachable!("{NEVER}")
    }
    pub(crate) fn capacity(&self) -> usize {
        unreachable!("{NEVER}")
    }
    pub(crate) fn lifetime(&self) -> Lifetime {
        unreachable!("{NEVER}")
    }
    pub(crate) fn lock_id(&self) -> u32 {
        unreachable!("{NEVER}")
    }
    pub(crate) fn is_alive(&self, _id: u32) -> bool {
        unreachable!("{NEVER}")
    }
    pub(crate) fn is_cut(&self) -> bool {
        unreachable!("{NEVER}")
    }
    pub(crate) fn forked(&self) -> bool {
        unreachable!("{NEVER}")
    }
    pub(crate) fn owner_and_mode(&self) -> Option<(u32, u32)> {
        unreachable!("{NEVER}")
    }
    pub(crate) fn note_foreign_holder(&self, _: &mut HeaderFields) {
        unreachable!("{NEVER}")
    }
    pub(crate) fn parker(&self) -> OsParker {
        unreachable!("{NEVER}")
    }
}

impl RawLock for Mapping {
    fn lock(&self, _: Duration) -> Result<Option<Acquired>> {
        unreachable!("{NEVER}")
    }
    fn try_lock(&self) -> Result<Option<Acquired>> {
        unreachable!("{NEVER}")
    }
    fn unlock(&self, _: bool) -> Unlocked {
        unreachable!("{NEVER}")
    }
}

/// Never made either.
pub(crate) struct OsParker(());

impl Parker for OsParker {
    fn wait(&self, _: &AtomicU32, _: u32, _: Option<Duration>) -> bool {
        unreachable!("{NEVER}")
    }
    fn wake_one(&self, _: &AtomicU32) {
        unreachable!("{NEVER}")
    }
    fn wake_all(&self, _: &AtomicU32) {
        unreachable!("{NEVER}")
    }
    fn is_alive(&self, _: u32) -> bool {
        unreachable!("{NEVER}")
    }
    type Reservation<'r> = ();
    fn reserve_dead(&self, _: u32) -> Option<()> {
        unreachable!("{NEVER}")
    }
    fn shared_clock_ms(&self) -> u32 {
        unreachable!("{NEVER}")
    }
}

pub(crate) fn open(_: &SegmentName, _: &OpenSpec) -> Result<Mapping> {
    Err(UNSUPPORTED)
}

pub(crate) fn create(_: &SegmentName, _: usize, _: &OpenSpec) -> Result<Mapping> {
    Err(UNSUPPORTED)
}

pub(crate) fn remove(_: &SegmentName) -> Result<()> {
    Err(UNSUPPORTED)
}

pub(crate) fn inspect(_: &SegmentName) -> Result<Inspected> {
    Err(UNSUPPORTED)
}

pub(crate) fn info(_: &SegmentName) -> Result<Inspected> {
    Err(UNSUPPORTED)
}

pub(crate) fn list() -> Result<Vec<(SegmentName, Inspected)>> {
    Err(UNSUPPORTED)
}

pub(crate) fn reclaim() -> Result<Vec<SegmentName>> {
    Err(UNSUPPORTED)
}

pub(crate) fn install_sigbus_handler() -> std::io::Result<()> {
    Ok(())
}

pub(crate) fn monotonic_ms() -> u32 {
    0
}

pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

pub(crate) fn now_unix_s() -> u64 {
    now_unix_ns() / 1_000_000_000
}

pub(crate) fn now_unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
