//! In-process backend, built under miri only.
//!
//! miri cannot map files, lock byte ranges or wait on futexes, so the Linux
//! backend cannot run under it. This backend keeps each segment in the heap
//! of this process, named in a process-wide table, with the same header and
//! data layout; handles in different threads stand in for processes. Then
//! everything above `sys` (segments, guards, views, the lock, the seqlock
//! and notification) runs under miri's checks of memory accesses and data
//! races, unchanged.
//!
//! Waits return at once (after yielding), which the algorithms allow: a
//! futex wait may return early for any reason.
//!
//! # Safety
//!
//! The segment's memory is an allocation of 8-byte words that lives as long
//! as the last handle to it, and is reached through raw pointers and atomics
//! only, as shared memory is.
#![allow(unsafe_code)]
#![allow(clippy::disallowed_types)] // the table is process-local bookkeeping

use std::collections::{HashMap, HashSet};
use std::io;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Inspected, OpenSpec, RawLock};
use crate::header::{HEADER_SIZE, Header, HeaderFields};
use crate::lock::{self, Acquired, Unlocked};
use crate::sync::{AtomicU32, Ordering};
use crate::{Error, Lifetime, Result, SegmentName};

/// A segment's memory and its bookkeeping.
struct Region {
    words: NonNull<u64>,
    word_count: usize,
    capacity: usize,
    lifetime: Lifetime,
    /// Lock ids of open handles, and ids reserved by a takeover.
    ids: Mutex<Ids>,
}

#[derive(Default)]
struct Ids {
    open: HashSet<u32>,
    reserved: HashSet<u32>,
    next: u32,
}

// SAFETY: the memory is reached only through atomics and raw pointers by
// the layers above, as shared memory is; the bookkeeping is behind a mutex.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    fn new(capacity: usize, lifetime: Lifetime) -> Region {
        let word_count = (HEADER_SIZE + capacity).div_ceil(8);
        let words = Box::into_raw(vec![0u64; word_count].into_boxed_slice());
        Region {
            words: NonNull::new(words.cast::<u64>()).expect("a box is never null"),
            word_count,
            capacity,
            lifetime,
            ids: Mutex::new(Ids::default()),
        }
    }

    fn ids(&self) -> MutexGuard<'_, Ids> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn header(&self) -> &Header {
        // SAFETY: the allocation is 8-aligned, at least `HEADER_SIZE` bytes,
        // and lives as long as `self`. `Header` is made only of atomics.
        unsafe { self.words.cast::<Header>().as_ref() }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.words.as_ptr(), self.word_count);
        // SAFETY: the box made in `new`, freed once; no handle is left.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// The named segments of this process.
static SEGMENTS: Mutex<Option<HashMap<String, Arc<Region>>>> = Mutex::new(None);

fn table() -> MutexGuard<'static, Option<HashMap<String, Arc<Region>>>> {
    SEGMENTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An open segment.
pub(crate) struct Mapping {
    region: Arc<Region>,
    name: String,
    lock_id: u32,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("name", &self.name)
            .field("lock_id", &self.lock_id)
            .finish_non_exhaustive()
    }
}

impl Mapping {
    fn attach(name: &SegmentName, region: Arc<Region>) -> Mapping {
        let lock_id = {
            let mut ids = region.ids();
            let owner = region.header().lock_word.load(Ordering::Relaxed) & lock::OWNER_MASK;
            loop {
                ids.next = (ids.next % lock::OWNER_MASK) + 1;
                let id = ids.next;
                if !ids.open.contains(&id) && !ids.reserved.contains(&id) && id != owner {
                    ids.open.insert(id);
                    break id;
                }
            }
        };
        Mapping {
            region,
            name: name.as_str().to_owned(),
            lock_id,
        }
    }

    pub(crate) fn header(&self) -> &Header {
        self.region.header()
    }

    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: the allocation is `HEADER_SIZE + capacity` bytes or more.
        unsafe { self.region.words.as_ptr().cast::<u8>().add(HEADER_SIZE) }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.region.capacity
    }

    pub(crate) fn lifetime(&self) -> Lifetime {
        self.region.lifetime
    }

    pub(crate) fn lock_id(&self) -> u32 {
        self.lock_id
    }

    pub(crate) fn is_alive(&self, id: u32) -> bool {
        id == self.lock_id || self.region.ids().open.contains(&id)
    }

    pub(crate) fn is_cut(&self) -> bool {
        false
    }

    pub(crate) fn forked(&self) -> bool {
        false
    }

    pub(crate) fn owner_and_mode(&self) -> Option<(u32, u32)> {
        Some((0, 0o600))
    }

    pub(crate) fn note_foreign_holder(&self, _: &mut HeaderFields) {}

    pub(crate) fn parker(&self) -> OsParker<'_> {
        OsParker(self)
    }
}

impl RawLock for Mapping {
    fn lock(&self, timeout: Duration) -> Result<Option<Acquired>> {
        Ok(lock::lock(
            &self.header().lock_word,
            self.lock_id,
            Some(timeout),
            &self.parker(),
        ))
    }

    fn try_lock(&self) -> Result<Option<Acquired>> {
        Ok(lock::try_lock(
            &self.header().lock_word,
            self.lock_id,
            &self.parker(),
        ))
    }

    fn unlock(&self, committed: bool) -> Unlocked {
        let h = self.header();
        lock::unlock(
            &h.lock_word,
            &h.handoff_at_ms,
            self.lock_id,
            committed,
            &self.parker(),
        )
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let mut table = table();
        let last = {
            let mut ids = self.region.ids();
            ids.open.remove(&self.lock_id);
            ids.open.is_empty()
        };
        if last && self.region.lifetime == Lifetime::UntilLastClose {
            if let Some(map) = table.as_mut() {
                if map
                    .get(&self.name)
                    .is_some_and(|r| Arc::ptr_eq(r, &self.region))
                {
                    map.remove(&self.name);
                }
            }
        }
    }
}

/// Yields instead of sleeping; ids live in the region's table.
pub(crate) struct OsParker<'a>(&'a Mapping);

/// A dead id, reserved in the region's table until dropped.
pub(crate) struct Reservation<'a> {
    region: &'a Region,
    id: u32,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.region.ids().reserved.remove(&self.id);
    }
}

impl<'a> lock::Parker for OsParker<'a> {
    fn wait(&self, word: &AtomicU32, expected: u32, _timeout: Option<Duration>) -> bool {
        if word.load(Ordering::Acquire) == expected {
            std::thread::yield_now();
        }
        false
    }
    fn wake_one(&self, _: &AtomicU32) {}
    fn wake_all(&self, _: &AtomicU32) {}
    fn is_alive(&self, id: u32) -> bool {
        self.0.is_alive(id)
    }
    type Reservation<'r>
        = Reservation<'a>
    where
        Self: 'r;
    fn reserve_dead(&self, id: u32) -> Option<Reservation<'a>> {
        let region: &'a Region = &self.0.region;
        let mut ids = region.ids();
        if ids.open.contains(&id) || !ids.reserved.insert(id) {
            return None;
        }
        Some(Reservation { region, id })
    }
    fn shared_clock_ms(&self) -> u32 {
        monotonic_ms()
    }
}

fn not_found(name: &SegmentName) -> Error {
    Error::NotFound {
        name: name.to_string(),
    }
}

pub(crate) fn open(name: &SegmentName, _: &OpenSpec) -> Result<Mapping> {
    let table = table();
    let region = table
        .as_ref()
        .and_then(|map| map.get(name.as_str()))
        .cloned()
        .ok_or_else(|| not_found(name))?;
    Ok(Mapping::attach(name, region))
}

pub(crate) fn create(name: &SegmentName, capacity: usize, spec: &OpenSpec) -> Result<Mapping> {
    let mut table = table();
    let map = table.get_or_insert_with(HashMap::new);
    if map.contains_key(name.as_str()) {
        return Err(Error::AlreadyExists {
            name: name.to_string(),
        });
    }
    let region = Arc::new(Region::new(capacity, spec.lifetime));
    region.header().initialise(
        capacity as u64,
        spec.lifetime,
        0,
        current_pid(),
        now_unix_ns(),
    );
    map.insert(name.as_str().to_owned(), region.clone());
    Ok(Mapping::attach(name, region))
}

pub(crate) fn remove(name: &SegmentName) -> Result<()> {
    let mut table = table();
    let map = table.get_or_insert_with(HashMap::new);
    match map.get(name.as_str()) {
        None => Err(not_found(name)),
        Some(r) if r.lifetime == Lifetime::UntilLastClose && !r.ids().open.is_empty() => {
            Err(Error::Busy {
                name: name.to_string(),
                reason: "another handle has it open",
            })
        }
        Some(_) => {
            map.remove(name.as_str());
            Ok(())
        }
    }
}

pub(crate) fn inspect(name: &SegmentName) -> Result<Inspected> {
    let table = table();
    let region = table
        .as_ref()
        .and_then(|map| map.get(name.as_str()))
        .ok_or_else(|| not_found(name))?;
    let fields = region.header().fields();
    let owner = fields.lock_word & lock::OWNER_MASK;
    let lock_owner_alive = owner != 0 && region.ids().open.contains(&owner);
    Ok(Inspected {
        fields,
        owner_and_mode: Some((0, 0o600)),
        lock_owner_alive,
    })
}

pub(crate) fn info(name: &SegmentName) -> Result<Inspected> {
    inspect(name)
}

pub(crate) fn list() -> Result<Vec<(SegmentName, Inspected)>> {
    let names: Vec<String> = table()
        .as_ref()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default();
    let mut found: Vec<_> = names
        .into_iter()
        .filter_map(|n| SegmentName::new(n).ok())
        .filter_map(|n| inspect(&n).ok().map(|i| (n, i)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Handles here cannot die without closing: nothing to reclaim.
pub(crate) fn reclaim() -> Result<Vec<SegmentName>> {
    Ok(Vec::new())
}

pub(crate) fn install_sigbus_handler() -> io::Result<()> {
    Ok(())
}

pub(crate) fn monotonic_ms() -> u32 {
    static START: Mutex<Option<Instant>> = Mutex::new(None);
    let start = *START
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(Instant::now);
    start.elapsed().as_millis() as u32
}

pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// A wall clock that miri's isolation allows: a fixed start (the wall
/// clock is only recorded, never relied on) plus the monotonic time.
pub(crate) fn now_unix_ns() -> u64 {
    const START_NS: u64 = 1_700_000_000_000_000_000;
    START_NS + u64::from(monotonic_ms()) * 1_000_000
}

pub(crate) fn now_unix_s() -> u64 {
    now_unix_ns() / 1_000_000_000
}
