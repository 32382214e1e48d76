//! Linux backend.
//!
//! A segment is the file `/dev/shm/shmbox.NAME` on the tmpfs that `shm_open`
//! also uses. It is made as an unnamed `O_TMPFILE`, sized, initialised and
//! only then linked under its name, so no opener ever sees it half-made.
//!
//! Kernel-managed locks on the file carry everything that must survive a
//! crash, because the kernel drops them when a process dies:
//!
//! - Every open handle holds a byte-range OFD lock at `LIVENESS_BASE + id`,
//!   where `id` is the handle's lock id. The lock word names the id of the
//!   holder, so a waiter proves a holder dead by finding that byte unlocked.
//!   Pids play no part, so pid reuse cannot fool it.
//! - Every handle of an `UntilLastClose` segment holds a shared `flock`. The
//!   last one to close gets the exclusive lock and removes the name. If the
//!   last holders die instead, the next shmbox call that looks (`open`,
//!   `create`, `info`, `list`, `reclaim`) gets the exclusive lock and removes
//!   it: no helper process is needed.
//!
//! **fork().** A child made by `fork` inherits every descriptor, and with it
//! every lock its open file description holds. So a handle's locks live on
//! an open file description of their own, the *anchor*, to which only a
//! one-page mapping marked `MADV_DONTFORK` refers once the handle is open:
//! a child inherits neither the mapping nor, therefore, the locks, and when
//! the parent dies the kernel drops them even while its children live. The
//! handle's other descriptor, which the data is mapped from and which asks
//! the kernel about other handles, holds no lock, so a child may keep it
//! without keeping anything alive. In the child, the handle only refuses to
//! work (`Error::Forked`; see `fork.rs`), and dropping it releases nothing of
//! the parent's.
//!
//! # Safety
//!
//! This module maps memory and calls `fcntl` through libc for byte-range OFD
//! locks, which rustix does not offer. Each `unsafe` block says why it holds.
#![allow(unsafe_code)]

#[path = "linux/fork.rs"]
mod fork;
#[path = "linux/sigbus.rs"]
#[allow(clippy::disallowed_types)] // a process-local registry, not shared memory
mod sigbus;

use std::ffi::{CStr, CString};
use std::io;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::fs::{self, AtFlags, FallocateFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, ProtFlags};
use rustix::thread::futex;

use super::{Inspected, OpenSpec, RawLock};
use crate::header::{
    HEADER_SIZE, Header, HeaderFields, HeaderProblem, LIFETIME_UNTIL_LAST_CLOSE, initial_bytes,
    problem_to_error,
};
use crate::lock::{self, Acquired, OWNER_MASK, Unlocked};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::{Error, Lifetime, Result, SegmentName};

/// Where segments live: the tmpfs that `shm_open` uses.
const SHM_DIR: &str = "/dev/shm";
/// Segment files are `shmbox.NAME`, so `list` finds only ours.
pub(crate) const FILE_PREFIX: &str = "shmbox.";

/// Byte-range locks lie beyond any real data (fcntl locks may lie past the end
/// of the file). Handle `id` holds byte `LIVENESS_BASE + id` while it is open.
const LIVENESS_BASE: i64 = 1 << 62;

/// How long an opener retries when the segment is being removed under it.
const REMOVAL_RETRY: Duration = Duration::from_millis(1);

/// `create`, `open` and `info` look for segments whose holders all died at
/// most this often per process; `list` and `reclaim` always look.
const SWEEP_INTERVAL_MS: u64 = 1000;

pub(crate) use sigbus::install as install_sigbus_handler;

/// An open, validated, mapped segment.
pub(crate) struct Mapping {
    /// The header and data, mapped from `fd`. Dropped by hand, first.
    region: ManuallyDrop<Region>,
    /// Holds this handle's kernel locks. Dropped by hand, and never in a
    /// child made by fork, where it does not exist.
    anchor: ManuallyDrop<Anchor>,
    capacity: usize,
    lifetime: Lifetime,
    lock_id: u32,
    path: CString,
    dev: u64,
    ino: u64,
    /// This handle's own open file description of the segment file: the
    /// region is mapped from it, and the kernel is asked about other
    /// handles through it. It holds no lock (but while a takeover reserves
    /// a dead id).
    fd: OwnedFd,
    fork: fork::ForkCheck,
    /// Makes this handle's threads take turns in `reserve_dead`: they share
    /// `fd`, and locks of one open file description do not exclude each other.
    reserving: Mutex<()>,
}

// SAFETY: the mapping is shared memory meant to be used from many threads and
// processes. `Mapping` hands it out only as atomics and raw pointers; the safe
// wrappers in `segment.rs` decide who may touch which bytes. The descriptor,
// the path and the mutex are ordinary owned values.
unsafe impl Send for Mapping {}
// SAFETY: as above; no method takes `&self` and mutates non-atomic state.
unsafe impl Sync for Mapping {}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .field("lifetime", &self.lifetime)
            .field("lock_id", &self.lock_id)
            .finish_non_exhaustive()
    }
}

/// A shared mapping of a whole segment file, watched for truncation.
struct Region {
    base: NonNull<u8>,
    len: usize,
    /// Dropped by hand, before the mapping goes.
    watch: ManuallyDrop<sigbus::Watch>,
}

impl Region {
    /// Maps `len` bytes of `fd` read-write and shared. The file must hold
    /// exactly `len` bytes.
    fn map(name: &SegmentName, fd: &OwnedFd, len: usize) -> Result<Region> {
        // SAFETY: a fresh shared mapping of `fd`, at an address the kernel
        // picks, so it overlaps nothing. The file holds exactly `len` bytes
        // (callers check it against fstat), so every mapped page is backed
        // and no access raises SIGBUS, unless a process of the same user
        // truncates the file (see `sigbus.rs`).
        let ptr = unsafe {
            mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| io_error(name, "mapping the segment", e))?;
        Ok(Region {
            base: NonNull::new(ptr.cast()).expect("mmap never returns null on success"),
            len,
            watch: ManuallyDrop::new(sigbus::watch(ptr.cast(), len)),
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: `base` is the page-aligned start of a live mapping of at
        // least `HEADER_SIZE` bytes (checked before mapping), which outlives
        // `&self`. `Header` is `repr(C)` and made only of atomics, so shared
        // references to it are sound while other processes change it.
        unsafe { self.base.cast::<Header>().as_ref() }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // Unwatched first: once unmapped, the address range may be reused.
        // SAFETY: dropped once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.watch) };
        // SAFETY: `base`/`len` describe the mapping made in `map`, and no
        // reference into it outlives the region: guards and views borrow the
        // `Segment` that owns it.
        let _ = unsafe { mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// The open file description that holds a handle's locks, its liveness byte
/// and (for `UntilLastClose`) its shared flock, kept open by nothing but a
/// one-page `PROT_NONE` mapping marked `MADV_DONTFORK`: `fork` does not copy
/// it, so the locks die with this process, whatever children it has. Its
/// descriptor is closed as soon as the mapping exists.
struct Anchor {
    ptr: NonNull<std::ffi::c_void>,
    len: usize,
}

impl Anchor {
    fn new(name: &SegmentName, lock_fd: OwnedFd) -> Result<Anchor> {
        let len = page_size();
        // SAFETY: a fresh mapping at an address the kernel picks, so it
        // overlaps nothing. PROT_NONE: nothing ever reads or writes it, so
        // it cannot fault, whatever the file's size.
        let ptr = unsafe {
            mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::empty(),
                MapFlags::SHARED,
                &lock_fd,
                0,
            )
        }
        .map_err(|e| io_error(name, "mapping the segment's lock anchor", e))?;
        let anchor = Anchor {
            ptr: NonNull::new(ptr).expect("mmap never returns null on success"),
            len,
        };
        // SAFETY: advice on the mapping just made; it changes no contents.
        unsafe { mm::madvise(ptr, len, mm::Advice::LinuxDontFork) }
            .map_err(|e| io_error(name, "marking the lock anchor MADV_DONTFORK", e))?;
        // The mapping holds the open file description from here on.
        drop(lock_fd);
        Ok(anchor)
    }
}

impl Drop for Anchor {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, never accessed; unmapping it
        // drops the last reference to its open file description, and with
        // it the handle's locks.
        let _ = unsafe { mm::munmap(self.ptr.as_ptr(), self.len) };
    }
}

impl Mapping {
    /// The header at the start of the mapping.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        self.region.header()
    }

    /// The first byte of the data region, `capacity()` bytes long.
    #[inline]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: the mapping is `HEADER_SIZE + capacity` bytes long.
        unsafe { self.region.base.as_ptr().add(HEADER_SIZE) }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn lifetime(&self) -> Lifetime {
        self.lifetime
    }

    #[inline]
    pub(crate) fn lock_id(&self) -> u32 {
        self.lock_id
    }

    /// Whether lock id `id` belongs to an open handle. Unknown means alive.
    pub(crate) fn is_alive(&self, id: u32) -> bool {
        id == self.lock_id
            || ofd_is_locked(self.fd.as_fd(), LIVENESS_BASE + i64::from(id)).unwrap_or(true)
    }

    /// Whether the file was cut short while mapped (see `sigbus.rs`): then
    /// part of the mapping is private zero pages, and nothing read from it
    /// or written to it since means anything.
    #[inline]
    pub(crate) fn is_cut(&self) -> bool {
        self.region.watch.is_cut()
    }

    /// Whether this process is a child, made by `fork`, of the process that
    /// opened the handle: then the handle must not be used (see `fork.rs`).
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        self.fork.forked()
    }

    /// The OS side of the lock, seqlock and notification algorithms.
    #[inline]
    pub(crate) fn parker(&self) -> OsParker<'_> {
        OsParker(self)
    }

    /// Every holder of this lock is a shmbox handle, recorded in the word.
    #[inline]
    pub(crate) fn note_foreign_holder(&self, _fields: &mut HeaderFields) {}

    /// Owner uid and permission bits of the segment's file.
    pub(crate) fn owner_and_mode(&self) -> Option<(u32, u32)> {
        fs::fstat(&self.fd)
            .ok()
            .map(|st| (st.st_uid, st.st_mode & 0o7777))
    }

    #[cold]
    fn lock_slow(&self, timeout: Duration) -> Option<Acquired> {
        lock::lock_slow(
            &self.header().lock_word,
            self.lock_id,
            Some(timeout),
            &self.parker(),
        )
    }
}

impl RawLock for Mapping {
    #[inline]
    fn lock_fast(&self) -> bool {
        lock::try_lock_fast(&self.header().lock_word, self.lock_id)
    }

    #[inline]
    fn unlock_fast(&self) -> bool {
        lock::unlock_fast(&self.header().lock_word, self.lock_id)
    }

    #[inline]
    fn lock(&self, timeout: Duration) -> Result<Option<Acquired>> {
        if lock::try_lock_fast(&self.header().lock_word, self.lock_id) {
            return Ok(Some(Acquired::Clean));
        }
        Ok(self.lock_slow(timeout))
    }

    fn try_lock(&self) -> Result<Option<Acquired>> {
        Ok(lock::try_lock(
            &self.header().lock_word,
            self.lock_id,
            &self.parker(),
        ))
    }

    #[inline]
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

/// Futexes and OFD locks for one handle.
pub(crate) struct OsParker<'a>(&'a Mapping);

/// A dead lock id, reserved on the handle's descriptor (`reserve_dead`).
pub(crate) struct Reservation<'a> {
    fd: BorrowedFd<'a>,
    byte: i64,
    _turn: MutexGuard<'a, ()>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let _ = ofd_unlock(self.fd, self.byte);
    }
}

impl<'a> lock::Parker for OsParker<'a> {
    #[inline]
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        futex_wait(word, expected, timeout)
    }
    fn wake_one(&self, word: &AtomicU32) {
        futex_wake(word, 1);
    }
    fn wake_all(&self, word: &AtomicU32) {
        // The kernel reads the count as a signed int: u32::MAX would be -1,
        // which wakes only one.
        futex_wake(word, i32::MAX as u32);
    }
    fn is_alive(&self, id: u32) -> bool {
        self.0.is_alive(id)
    }
    type Reservation<'r>
        = Reservation<'a>
    where
        Self: 'r;
    /// Takes the dead id's liveness byte on this handle's descriptor: a
    /// handle being opened cannot get the id while it is held (it needs the
    /// same byte), and the attempt fails if a live handle has it.
    fn reserve_dead(&self, id: u32) -> Option<Reservation<'a>> {
        if id == self.0.lock_id {
            return None;
        }
        let turn = self
            .0
            .reserving
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let byte = LIVENESS_BASE + i64::from(id);
        let fd = self.0.fd.as_fd();
        matches!(ofd_try_lock(fd, byte), Ok(true)).then_some(Reservation {
            fd,
            byte,
            _turn: turn,
        })
    }
    fn shared_clock_ms(&self) -> u32 {
        monotonic_ms()
    }
    fn lost(&self) -> bool {
        self.0.is_cut()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let forked = self.forked();
        // SAFETY: dropped once, here; nothing borrows the region any more.
        unsafe { ManuallyDrop::drop(&mut self.region) };
        if forked {
            // The anchor's mapping was not copied into this child, and its
            // address may hold something else now: leave it alone. The locks
            // are the parent's, and so is the decision to remove the name.
            return;
        }
        // SAFETY: dropped once, here. This drops the handle's locks.
        unsafe { ManuallyDrop::drop(&mut self.anchor) };
        if self.lifetime == Lifetime::UntilLastClose {
            // Exclusive only if no other handle holds its shared lock: then
            // this was the last one, and the segment's lifetime is over.
            if fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = unlink_if_same(&self.path, self.dev, self.ino);
                // At once: a child that inherited `fd` must not keep it.
                let _ = fs::flock(&self.fd, FlockOperation::Unlock);
            }
        }
    }
}

fn truncated(name: &SegmentName) -> Error {
    Error::Truncated {
        name: name.to_string(),
    }
}

/// `/dev/shm/shmbox.NAME`.
fn path_of(name: &SegmentName) -> CString {
    CString::new(format!("{SHM_DIR}/{FILE_PREFIX}{}", name.as_str()))
        .expect("segment names contain no NUL byte")
}

fn io_error(name: &SegmentName, operation: &'static str, e: Errno) -> Error {
    match e {
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied {
            name: name.to_string(),
            source: e.into(),
        },
        _ => Error::Io {
            name: name.to_string(),
            operation,
            source: e.into(),
        },
    }
}

/// Opens the file under `path` without following links or blocking on FIFOs.
fn open_file(name: &SegmentName, path: &CStr, access: OFlags) -> Result<OwnedFd> {
    let flags = access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    fs::open(path, flags, Mode::empty()).map_err(|e| match e {
        Errno::NOENT => Error::NotFound {
            name: name.to_string(),
        },
        Errno::LOOP => Error::Corrupt {
            name: name.to_string(),
            reason: "its file is a symbolic link, which shmbox never follows".into(),
        },
        // A directory, or a socket or device without a driver.
        Errno::ISDIR | Errno::NXIO => Error::Corrupt {
            name: name.to_string(),
            reason: "its file is not a regular file".into(),
        },
        e => io_error(name, "opening the segment", e),
    })
}

/// A second, independent open file description of the file `fd` refers to
/// (`dev`/`ino`): through `/proc/self/fd`, or by `path` when that names the
/// same file. Its locks are its own, not `fd`'s.
fn reopen(
    name: &SegmentName,
    fd: &OwnedFd,
    path: Option<&CStr>,
    dev: u64,
    ino: u64,
) -> Result<OwnedFd> {
    let same = |other: &OwnedFd| matches!(fs::fstat(other), Ok(st) if st.st_dev == dev && st.st_ino == ino);
    if let Some(path) = path {
        if let Ok(other) = open_file(name, path, OFlags::RDWR) {
            if same(&other) {
                return Ok(other);
            }
        }
    }
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let other = fs::open(
        proc_path.as_str(),
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => Error::Unsupported {
            what: "opening a segment needs /proc mounted",
        },
        e => io_error(name, "opening the segment a second time", e),
    })?;
    if !same(&other) {
        return Err(Error::Busy {
            name: name.to_string(),
            reason: "its file was replaced while this process opened it",
        });
    }
    Ok(other)
}

/// Who an opener trusts besides itself.
#[derive(Clone, Copy)]
struct Trust {
    other_owner: bool,
    writable_by_others: bool,
}

impl Trust {
    /// For reading a header without mapping it (`info`, `list`): anything.
    const INSPECT: Trust = Trust {
        other_owner: true,
        writable_by_others: true,
    };

    fn of(spec: &OpenSpec) -> Trust {
        Trust {
            other_owner: spec.allow_other_owner,
            writable_by_others: spec.allow_writable_by_others,
        }
    }
}

/// Checks that `fd` is a regular file owned by us and not writable by every
/// user (unless `trust` allows otherwise).
fn check_file(name: &SegmentName, fd: &OwnedFd, trust: Trust) -> Result<fs::Stat> {
    let st = fs::fstat(fd).map_err(|e| io_error(name, "inspecting the segment", e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::Corrupt {
            name: name.to_string(),
            reason: "its file is not a regular file".into(),
        });
    }
    let our_uid = current_euid();
    if st.st_uid != our_uid && !trust.other_owner {
        return Err(Error::ForeignOwner {
            name: name.to_string(),
            owner_uid: st.st_uid,
            our_uid,
        });
    }
    if st.st_mode & 0o002 != 0 && !trust.writable_by_others {
        return Err(Error::WritableByOthers {
            name: name.to_string(),
            mode: st.st_mode & 0o7777,
        });
    }
    Ok(st)
}

fn file_size(st: &fs::Stat) -> u64 {
    u64::try_from(st.st_size).unwrap_or(0)
}

/// Reads the header with `pread`, so nothing is mapped before it is valid.
/// `None` if the file is too short to hold one.
fn read_header(fd: &OwnedFd, size: u64) -> Option<HeaderFields> {
    if size < HEADER_SIZE as u64 {
        return None;
    }
    let mut bytes = [0u8; HEADER_SIZE];
    let mut done = 0;
    while done < HEADER_SIZE {
        match rustix::io::pread(fd, &mut bytes[done..], done as u64) {
            Ok(0) => return None,
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    Some(HeaderFields::parse(&bytes))
}

/// Writes all of `bytes` at `offset`.
fn write_all_at(fd: &OwnedFd, bytes: &[u8], offset: u64) -> rustix::io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        match rustix::io::pwrite(fd, &bytes[done..], offset + done as u64) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads and validates the header, waiting up to `init_timeout` for a creator
/// (of another implementation) that initialises in place.
fn read_valid_header(
    name: &SegmentName,
    fd: &OwnedFd,
    spec: &OpenSpec,
) -> Result<(fs::Stat, HeaderFields)> {
    let started = Instant::now();
    loop {
        let st = check_file(name, fd, Trust::of(spec))?;
        let size = file_size(&st);
        let verdict = match read_header(fd, size) {
            Some(fields) => fields.validate(size).map(|()| fields),
            None => Err(HeaderProblem::NotReady),
        };
        match verdict {
            Ok(fields) => return Ok((st, fields)),
            Err(HeaderProblem::NotReady) => {
                let waited = started.elapsed();
                if waited >= spec.init_timeout {
                    return Err(if size < HEADER_SIZE as u64 && size > 0 {
                        Error::Corrupt {
                            name: name.to_string(),
                            reason: format!(
                                "its file holds {size} bytes, less than the {HEADER_SIZE}-byte header"
                            ),
                        }
                    } else {
                        Error::NotInitialized {
                            name: name.to_string(),
                            waited,
                        }
                    });
                }
                // Only segments made in place by other implementations, or
                // whose creator died, get here: ours appear fully made.
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(problem) => return Err(problem_to_error(name.as_str(), problem)),
        }
    }
}

/// Whether `path` still names the file `dev`/`ino`.
fn names_file(path: &CStr, dev: u64, ino: u64) -> bool {
    matches!(fs::statat(fs::CWD, path, AtFlags::SYMLINK_NOFOLLOW),
        Ok(st) if st.st_dev == dev && st.st_ino == ino)
}

/// Removes `path` if it still names `dev`/`ino`. Callers hold the exclusive
/// flock on that file, so no other shmbox process removes or replaces it
/// between the check and the unlink.
fn unlink_if_same(path: &CStr, dev: u64, ino: u64) -> rustix::io::Result<bool> {
    if !names_file(path, dev, ino) {
        return Ok(false);
    }
    match fs::unlink(path) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What joining an `UntilLastClose` segment found.
enum Join {
    Joined,
    /// Nobody held it: its lifetime was over, and it has been removed.
    Stale,
    /// It was being removed at that moment; open the name again.
    Retry,
}

/// Becomes a holder of an `UntilLastClose` segment, with a shared flock on
/// `lock_fd`, the open file description that will become the anchor.
fn join(name: &SegmentName, lock_fd: &OwnedFd, path: &CStr, st: &fs::Stat) -> Result<Join> {
    match fs::flock(lock_fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            // No holder is left: the last ones died without closing it.
            unlink_if_same(path, st.st_dev, st.st_ino)
                .map_err(|e| io_error(name, "removing a segment nobody holds", e))?;
            return Ok(Join::Stale);
        }
        Err(Errno::WOULDBLOCK) => {}
        Err(e) => return Err(io_error(name, "locking the segment", e)),
    }
    match fs::flock(lock_fd, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Ok(Join::Retry),
        Err(e) => return Err(io_error(name, "locking the segment", e)),
    }
    // Removed between our open and our lock? Then it is not the live one.
    if !names_file(path, st.st_dev, st.st_ino) {
        return Ok(Join::Retry);
    }
    Ok(Join::Joined)
}

/// Opens an existing segment.
pub(crate) fn open(name: &SegmentName, spec: &OpenSpec) -> Result<Mapping> {
    sweep_now_and_then();
    let path = path_of(name);
    let started = Instant::now();
    loop {
        let fd = open_file(name, &path, OFlags::RDWR)?;
        let (st, fields) = read_valid_header(name, &fd, spec)?;
        let lifetime = Lifetime::from_code(fields.lifetime).expect("validated");
        let lock_fd = reopen(name, &fd, Some(&path), st.st_dev, st.st_ino)?;
        if lifetime == Lifetime::UntilLastClose {
            match join(name, &lock_fd, &path, &st)? {
                Join::Joined => {}
                Join::Stale => {
                    return Err(Error::NotFound {
                        name: name.to_string(),
                    });
                }
                Join::Retry => {
                    if started.elapsed() > spec.init_timeout {
                        return Err(Error::Busy {
                            name: name.to_string(),
                            reason: "it kept being removed while this process opened it",
                        });
                    }
                    std::thread::sleep(REMOVAL_RETRY);
                    continue;
                }
            }
        }
        return map_existing(name, fd, lock_fd, path, &st, &fields, lifetime);
    }
}

/// Maps a segment whose header copy `fields` was validated, checks that the
/// mapping says the same, claims a lock id on `lock_fd` and anchors it.
fn map_existing(
    name: &SegmentName,
    fd: OwnedFd,
    lock_fd: OwnedFd,
    path: CString,
    st: &fs::Stat,
    fields: &HeaderFields,
    lifetime: Lifetime,
) -> Result<Mapping> {
    let capacity = usize::try_from(fields.capacity).map_err(|_| Error::Corrupt {
        name: name.to_string(),
        reason: "its capacity does not fit this machine's address space".into(),
    })?;
    let map_len = HEADER_SIZE + capacity;
    debug_assert_eq!(file_size(st), map_len as u64);
    let region = Region::map(name, &fd, map_len)?;
    let h = region.header();
    let identity_changed = h.capacity.load(Ordering::Relaxed) != fields.capacity
        || h.format_version.load(Ordering::Relaxed) != fields.format_version
        || h.lifetime.load(Ordering::Relaxed) != fields.lifetime
        || h.header_size.load(Ordering::Relaxed) != fields.header_size;
    if region.watch.is_cut() {
        return Err(truncated(name));
    }
    if identity_changed {
        return Err(Error::Corrupt {
            name: name.to_string(),
            reason: "its header changed while it was being opened".into(),
        });
    }
    let lock_word = &h.lock_word;
    let lock_id =
        claim_lock_id(lock_fd.as_fd(), || lock_word.load(Ordering::Acquire)).map_err(|source| {
            Error::Io {
                name: name.to_string(),
                operation: "claiming a lock id",
                source,
            }
        })?;
    let anchor = Anchor::new(name, lock_fd)?;
    Ok(Mapping {
        region: ManuallyDrop::new(region),
        anchor: ManuallyDrop::new(anchor),
        capacity,
        lifetime,
        lock_id,
        path,
        dev: st.st_dev,
        ino: st.st_ino,
        fd,
        fork: fork::ForkCheck::now(),
        reserving: Mutex::new(()),
    })
}

/// Creates a new segment; fails with `AlreadyExists` if the name is taken.
pub(crate) fn create(name: &SegmentName, capacity: usize, spec: &OpenSpec) -> Result<Mapping> {
    // Memory that dead holders left is freed before more is taken.
    sweep_now_and_then();
    let path = path_of(name);
    let map_len = HEADER_SIZE
        .checked_add(capacity)
        .filter(|&l| l <= isize::MAX as usize)
        .ok_or(Error::InvalidSize {
            size: capacity as u64,
            reason: "it is too large to map",
        })?;
    let mode = Mode::from_raw_mode(spec.mode);
    // The unnamed file becomes the anchor: it holds the locks from the start.
    let lock_fd = fs::open(
        SHM_DIR,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        mode,
    )
    .map_err(|e| match e {
        Errno::NOENT => Error::Unsupported {
            what: "/dev/shm does not exist; mount a tmpfs there",
        },
        Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL => Error::Unsupported {
            what: "this kernel cannot make unnamed files (O_TMPFILE) in /dev/shm",
        },
        e => io_error(name, "creating the segment", e),
    })?;
    // The umask may have cleared bits of the mode asked for.
    fs::fchmod(&lock_fd, mode).map_err(|e| io_error(name, "setting the segment's mode", e))?;
    // Allocate every page now: a tmpfs that runs out of space later would
    // raise SIGBUS on the first touch of a missing page.
    match fs::fallocate(&lock_fd, FallocateFlags::empty(), 0, map_len as u64) {
        Ok(()) => {}
        Err(e @ (Errno::NOSPC | Errno::NOMEM | Errno::FBIG)) => {
            return Err(Error::NoSpace {
                name: name.to_string(),
                size: capacity,
                source: e.into(),
            });
        }
        Err(e) => return Err(io_error(name, "allocating the segment", e)),
    }
    let lifetime = spec.lifetime;
    let header = initial_bytes(capacity as u64, lifetime, 0, current_pid(), now_unix_ns());
    write_all_at(&lock_fd, &header, 0)
        .map_err(|e| io_error(name, "writing the segment's header", e))?;
    let st = fs::fstat(&lock_fd).map_err(|e| io_error(name, "inspecting the segment", e))?;
    // The segment is new: nobody holds its lock, and every id is free.
    let lock_id = claim_lock_id(lock_fd.as_fd(), || 0).map_err(|source| Error::Io {
        name: name.to_string(),
        operation: "claiming a lock id",
        source,
    })?;
    if lifetime == Lifetime::UntilLastClose {
        // Held before it has a name, so it is never seen without a holder.
        fs::flock(&lock_fd, FlockOperation::NonBlockingLockShared)
            .map_err(|e| io_error(name, "locking the segment", e))?;
    }
    // The handle's own open file description, its mapping and its anchor,
    // all before the name: if anything fails, the unnamed file just goes.
    let (fd, linked) = match reopen_unnamed(&lock_fd) {
        Ok(fd) => (fd, false),
        // Without /proc an unnamed file cannot be opened again: name it
        // first (which then needs CAP_DAC_READ_SEARCH), and open the name.
        Err(Errno::NOENT) => {
            link_into_place(name, &lock_fd, &path)?;
            match reopen(name, &lock_fd, Some(&path), st.st_dev, st.st_ino) {
                Ok(fd) => (fd, true),
                Err(e) => {
                    unlink_if_same(&path, st.st_dev, st.st_ino).ok();
                    return Err(e);
                }
            }
        }
        Err(e) => return Err(io_error(name, "opening the new segment a second time", e)),
    };
    let assembled = Region::map(name, &fd, map_len).and_then(|region| {
        let anchor = Anchor::new(name, lock_fd)?;
        Ok((region, anchor))
    });
    let (region, anchor) = match assembled {
        Ok(parts) => parts,
        Err(e) => {
            if linked {
                // Only without /proc, where the name came first: take it
                // back. (A process that opened it meanwhile keeps a whole
                // segment, under no name.)
                unlink_if_same(&path, st.st_dev, st.st_ino).ok();
            }
            return Err(e);
        }
    };
    if !linked {
        // Through the handle's own descriptor: `lock_fd` is the anchor's now.
        link_into_place(name, &fd, &path)?;
    }
    Ok(Mapping {
        region: ManuallyDrop::new(region),
        anchor: ManuallyDrop::new(anchor),
        capacity,
        lifetime,
        lock_id,
        path,
        dev: st.st_dev,
        ino: st.st_ino,
        fd,
        fork: fork::ForkCheck::now(),
        reserving: Mutex::new(()),
    })
}

/// Opens a second open file description of an unnamed file, through
/// `/proc/self/fd`; `NOENT` without /proc.
fn reopen_unnamed(fd: &OwnedFd) -> rustix::io::Result<OwnedFd> {
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    fs::open(
        proc_path.as_str(),
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Gives the unnamed file its name, atomically; fails if the name is taken.
fn link_into_place(name: &SegmentName, fd: &OwnedFd, path: &CStr) -> Result<()> {
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let linked = match fs::linkat(
        fs::CWD,
        proc_path.as_str(),
        fs::CWD,
        path,
        AtFlags::SYMLINK_FOLLOW,
    ) {
        // Without /proc, AT_EMPTY_PATH does the same (it needs CAP_DAC_READ_SEARCH).
        Err(Errno::NOENT) => fs::linkat(fd, "", fs::CWD, path, AtFlags::EMPTY_PATH),
        other => other,
    };
    linked.map_err(|e| match e {
        Errno::EXIST => Error::AlreadyExists {
            name: name.to_string(),
        },
        Errno::NOENT => Error::Unsupported {
            what: "naming a new segment needs /proc mounted, or CAP_DAC_READ_SEARCH",
        },
        e => io_error(name, "naming the segment", e),
    })
}

/// Removes a segment's name. An `UntilLastClose` segment that another handle
/// holds is refused: it is removed when the last holder closes it.
pub(crate) fn remove(name: &SegmentName) -> Result<()> {
    let path = path_of(name);
    let fd = open_file(name, &path, OFlags::RDONLY)?;
    let st = fs::fstat(&fd).map_err(|e| io_error(name, "inspecting the segment", e))?;
    let size = file_size(&st);
    let until_last_close = read_header(&fd, size)
        .filter(|f| f.validate(size).is_ok())
        .is_some_and(|f| f.lifetime == LIFETIME_UNTIL_LAST_CLOSE);
    if until_last_close {
        match fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                return Err(Error::Busy {
                    name: name.to_string(),
                    reason: "another process has it open; an UntilLastClose segment is \
                             removed when the last process closes it",
                });
            }
            Err(e) => return Err(io_error(name, "locking the segment", e)),
        }
    }
    match unlink_if_same(&path, st.st_dev, st.st_ino) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::NotFound {
            name: name.to_string(),
        }),
        Err(e) => Err(io_error(name, "removing the segment", e)),
    }
}

/// Reads a segment's header and metadata without mapping it. An
/// `UntilLastClose` segment that nobody holds any more is removed on the way
/// and reported as not found.
pub(crate) fn inspect(name: &SegmentName) -> Result<Inspected> {
    let path = path_of(name);
    let fd = open_file(name, &path, OFlags::RDONLY)?;
    let st = check_file(name, &fd, Trust::INSPECT)?;
    let size = file_size(&st);
    let fields = read_header(&fd, size).ok_or_else(|| Error::Corrupt {
        name: name.to_string(),
        reason: format!("its file holds {size} bytes, less than the {HEADER_SIZE}-byte header"),
    })?;
    fields
        .validate(size)
        .map_err(|p| problem_to_error(name.as_str(), p))?;
    if fields.lifetime == LIFETIME_UNTIL_LAST_CLOSE
        && fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok()
    {
        // Every holder is gone: it is over, whatever the name still says.
        let _ = unlink_if_same(&path, st.st_dev, st.st_ino);
        return Err(Error::NotFound {
            name: name.to_string(),
        });
    }
    let owner = fields.lock_word & OWNER_MASK;
    let lock_owner_alive =
        owner != 0 && ofd_is_locked(fd.as_fd(), LIVENESS_BASE + i64::from(owner)).unwrap_or(true);
    Ok(Inspected {
        fields,
        owner_and_mode: Some((st.st_uid, st.st_mode & 0o7777)),
        lock_owner_alive,
    })
}

/// Describes a segment after a sweep (at most once per `SWEEP_INTERVAL_MS`).
pub(crate) fn info(name: &SegmentName) -> Result<Inspected> {
    sweep_now_and_then();
    inspect(name)
}

/// The names of the segment files in /dev/shm.
fn segment_names() -> Result<Vec<SegmentName>> {
    let entries = std::fs::read_dir(SHM_DIR).map_err(|e| Error::Io {
        name: String::new(),
        operation: "listing /dev/shm",
        source: e,
    })?;
    Ok(entries
        .flatten()
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|f| f.strip_prefix(FILE_PREFIX))
                .and_then(|n| SegmentName::new(n).ok())
        })
        .collect())
}

/// Every valid segment in /dev/shm, sorted by name. `UntilLastClose`
/// segments that nobody holds any more are removed on the way.
pub(crate) fn list() -> Result<Vec<(SegmentName, Inspected)>> {
    let mut found: Vec<_> = segment_names()?
        .into_iter()
        .filter_map(|name| inspect(&name).ok().map(|i| (name, i)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Removes every `UntilLastClose` segment that no process holds any more
/// (its last holders died without closing it), and returns their names.
pub(crate) fn reclaim() -> Result<Vec<SegmentName>> {
    let mut removed: Vec<_> = segment_names()?
        .into_iter()
        .filter(reclaim_if_dead)
        .collect();
    removed.sort();
    Ok(removed)
}

/// Removes the segment if it is an `UntilLastClose` one that nobody holds.
fn reclaim_if_dead(name: &SegmentName) -> bool {
    let path = path_of(name);
    let Ok(fd) = open_file(name, &path, OFlags::RDONLY) else {
        return false;
    };
    let Ok(st) = check_file(name, &fd, Trust::INSPECT) else {
        return false;
    };
    let size = file_size(&st);
    let until_last_close = read_header(&fd, size)
        .filter(|f| f.validate(size).is_ok())
        .is_some_and(|f| f.lifetime == LIFETIME_UNTIL_LAST_CLOSE);
    until_last_close
        && fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok()
        && matches!(unlink_if_same(&path, st.st_dev, st.st_ino), Ok(true))
}

/// `reclaim`, unless this process swept less than `SWEEP_INTERVAL_MS` ago:
/// `create`, `open` and `info` call it, so that memory that dead holders
/// left is freed by the next shmbox call on the machine, without making
/// every call pay for a scan of /dev/shm.
fn sweep_now_and_then() {
    static NEXT_SWEEP_MS: AtomicU64 = AtomicU64::new(0);
    let now = monotonic_ms_u64();
    let next = NEXT_SWEEP_MS.load(Ordering::Relaxed);
    if now < next
        || NEXT_SWEEP_MS
            .compare_exchange(
                next,
                now + SWEEP_INTERVAL_MS,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
    {
        return;
    }
    let _ = reclaim();
}

// ----- lock ids ------------------------------------------------------------

/// Picks a lock id no open handle uses, and holds its liveness byte on
/// `lock_fd`. `lock_owner` reads the owner in the segment's lock word.
fn claim_lock_id(lock_fd: BorrowedFd<'_>, lock_owner: impl Fn() -> u32) -> io::Result<u32> {
    use std::hash::{BuildHasher, Hasher};
    let seed = std::hash::RandomState::new();
    for attempt in 0u64..1000 {
        let mut h = seed.build_hasher();
        h.write_u64(attempt);
        h.write_u32(current_pid());
        let id = (h.finish() as u32 & OWNER_MASK).max(1);
        let byte = LIVENESS_BASE + i64::from(id);
        if !ofd_try_lock(lock_fd, byte)? {
            continue; // an open handle has it, or a takeover reserves it
        }
        if lock_owner() & OWNER_MASK == id {
            // A handle with this id died holding the lock. The id must stay
            // dead until someone takes the lock over.
            ofd_unlock(lock_fd, byte)?;
            continue;
        }
        return Ok(id);
    }
    Err(io::Error::other("no free lock id after 1000 tries"))
}

fn ofd_lock_op(
    fd: BorrowedFd<'_>,
    cmd: libc::c_int,
    kind: libc::c_int,
    byte: i64,
) -> io::Result<libc::flock> {
    // SAFETY: `flock` is a plain C struct; all zeroes is a valid value.
    let mut fl: libc::flock = unsafe { MaybeUninit::zeroed().assume_init() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    // l_pid stays 0, as OFD locks require.
    // SAFETY: `fd` is a live descriptor and `fl` a valid, exclusively
    // borrowed `struct flock`, which is what these fcntl commands take.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut fl) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fl)
    }
}

/// Takes an exclusive OFD lock on one byte; `false` if another holds it.
fn ofd_try_lock(fd: BorrowedFd<'_>, byte: i64) -> io::Result<bool> {
    match ofd_lock_op(fd, libc::F_OFD_SETLK, libc::F_WRLCK, byte) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn ofd_unlock(fd: BorrowedFd<'_>, byte: i64) -> io::Result<()> {
    ofd_lock_op(fd, libc::F_OFD_SETLK, libc::F_UNLCK, byte).map(drop)
}

/// Whether another open file description holds a lock on `byte`.
fn ofd_is_locked(fd: BorrowedFd<'_>, byte: i64) -> io::Result<bool> {
    let fl = ofd_lock_op(fd, libc::F_OFD_GETLK, libc::F_WRLCK, byte)?;
    Ok(i32::from(fl.l_type) != libc::F_UNLCK)
}

// ----- futex and process facts ---------------------------------------------

/// Sleeps while `word` holds `expected`. Returns `true` if `timeout` passed.
/// The futex is not `PRIVATE`: the word lies in memory shared by processes.
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    matches!(
        futex::wait(word.as_std(), futex::Flags::empty(), expected, ts.as_ref()),
        Err(Errno::TIMEDOUT)
    )
}

/// Wakes up to `count` handles asleep on `word`.
fn futex_wake(word: &AtomicU32, count: u32) {
    let _ = futex::wake(word.as_std(), futex::Flags::empty(), count);
}

/// The page size, from the C library: rustix's own reading of the auxiliary
/// vector crashes under valgrind, which the benchmarks' instruction counts
/// use.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf only reads a system value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|&p| p > 0)
        .unwrap_or(4096)
}

/// Milliseconds on the system-wide monotonic clock, wrapping; coarse.
pub(crate) fn monotonic_ms() -> u32 {
    monotonic_ms_u64() as u32
}

fn monotonic_ms_u64() -> u64 {
    let ts = clock(libc::CLOCK_MONOTONIC_COARSE);
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000)
}

/// `clock_gettime` through the C library's vDSO path. (rustix's own vDSO
/// parser does not run under valgrind, which the reliability suite uses.)
#[inline]
fn clock(id: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid timespec to fill.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts
}

pub(crate) fn current_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

pub(crate) fn current_euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Wall-clock time in nanoseconds since 1970, for creation times.
pub(crate) fn now_unix_ns() -> u64 {
    let ts = clock(libc::CLOCK_REALTIME);
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Wall-clock time in whole seconds since 1970, for write times: read on
/// every write, and `time(2)` costs a quarter of even the coarse
/// `clock_gettime`.
#[inline]
pub(crate) fn now_unix_s() -> u64 {
    // SAFETY: `time` with a null pointer only returns the time.
    let t = unsafe { libc::time(std::ptr::null_mut()) };
    u64::try_from(t).unwrap_or(0)
}
