//! `SegmentInfo`: what `shmbox info` shows, as a Python object.

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use shmbox::LockState;

/// A segment's header and metadata, from ``SharedMemory.info()``,
/// ``shmbox.info(name)`` or ``shmbox.list()``. Times are seconds since the
/// epoch, as ``time.time()`` gives them.
#[pyclass(module = "shmbox", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    /// The segment's name.
    name: String,
    /// Its size in bytes.
    size: usize,
    /// ``"until-last-close"`` or ``"persistent"``.
    lifetime: &'static str,
    /// Writes committed so far.
    generation: u64,
    /// False if a writer died mid-write and nobody has repaired the data.
    consistent: bool,
    /// A live writer is in the middle of a write.
    writing: bool,
    /// ``"free"``, ``"held"`` (by a live process) or ``"abandoned"`` (its
    /// holder died; the next locker takes it over).
    lock: &'static str,
    /// The pid the lock's holder recorded, if it is held or abandoned.
    lock_pid: Option<u32>,
    /// The process that committed the last write.
    last_writer_pid: Option<u32>,
    /// When the last write was committed (to the second), or None.
    last_write: Option<f64>,
    /// The process that created the segment.
    creator_pid: Option<u32>,
    /// When it was created, or None.
    created: Option<f64>,
    /// How many times the lock was taken over from a dead holder.
    owner_deaths: u32,
    /// The uid that owns it (None on Windows).
    owner_uid: Option<u32>,
    /// Its permission bits (None on Windows).
    mode: Option<u32>,
    /// The format version of its header.
    format_version: u32,
}

fn unix_seconds(time: Option<SystemTime>) -> Option<f64> {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

impl From<shmbox::SegmentInfo> for SegmentInfo {
    fn from(info: shmbox::SegmentInfo) -> SegmentInfo {
        let (lock, lock_pid) = match info.lock {
            LockState::Free => ("free", None),
            LockState::Held { pid } => ("held", pid),
            LockState::Abandoned { pid } => ("abandoned", pid),
            _ => ("unknown", None),
        };
        SegmentInfo {
            name: info.name.as_str().to_owned(),
            size: info.size,
            lifetime: match info.lifetime {
                shmbox::Lifetime::Persistent => "persistent",
                _ => "until-last-close",
            },
            generation: info.generation,
            consistent: info.consistent,
            writing: info.writing,
            lock,
            lock_pid,
            last_writer_pid: info.last_writer_pid,
            last_write: unix_seconds(info.last_write),
            creator_pid: info.creator_pid,
            created: unix_seconds(info.created),
            owner_deaths: info.owner_deaths,
            owner_uid: info.owner_uid,
            mode: info.mode,
            format_version: info.format_version,
        }
    }
}

#[pymethods]
impl SegmentInfo {
    fn __repr__(&self) -> String {
        format!(
            "SegmentInfo(name={:?}, size={}, lifetime={:?}, generation={}, lock={:?})",
            self.name, self.size, self.lifetime, self.generation, self.lock
        )
    }
}
