//! Fallback backend for platforms without one yet: everything compiles, and
//! every entry point returns [`Error::Unsupported`].

use std::time::Duration;

use super::{Inspected, OpenSpec};
use crate::header::Header;
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
    pub(crate) fn owner_and_mode(&self) -> (u32, u32) {
        unreachable!("{NEVER}")
    }
    pub(crate) fn wait(&self, _: &AtomicU32, _: u32, _: Option<Duration>) -> bool {
        unreachable!("{NEVER}")
    }
    pub(crate) fn wake(&self, _: &AtomicU32, _: u32) {
        unreachable!("{NEVER}")
    }
    pub(crate) fn note_foreign_holder(&self, _: &mut crate::header::HeaderFields) {
        unreachable!("{NEVER}")
    }
    pub(crate) fn lock_os_mutex(&self, _: Duration) -> Result<super::OsLocked> {
        unreachable!("{NEVER}")
    }
    pub(crate) fn unlock_os_mutex(&self) {
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

pub(crate) fn list() -> Result<Vec<(SegmentName, Inspected)>> {
    Err(UNSUPPORTED)
}

pub(crate) const OS_MUTEX: bool = false;

pub(crate) fn monotonic_ms() -> u32 {
    0
}

pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

pub(crate) fn current_euid() -> u32 {
    0
}

pub(crate) fn now_unix_s() -> u64 {
    now_unix_ns() / 1_000_000_000
}

pub(crate) fn now_unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
