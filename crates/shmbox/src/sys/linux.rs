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
//!   last holders die instead, the reaper (see `reaper.rs`) removes it.
//!
//! # Safety
//!
//! This module maps memory, forks the reaper, and calls `fcntl` through libc
//! for byte-range OFD locks, which rustix does not offer. Each `unsafe` block
//! says why it holds.
#![allow(unsafe_code)]

#[path = "linux/reaper.rs"]
mod reaper;
#[path = "linux/sigbus.rs"]
#[allow(clippy::disallowed_types)] // a process-local registry, not shared memory
mod sigbus;

use std::ffi::{CStr, CString};
use std::io;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rustix::fs::{self, AtFlags, FallocateFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, ProtFlags};
use rustix::thread::futex;

use super::{Inspected, OpenSpec};
use crate::header::{HEADER_SIZE, Header, HeaderFields, HeaderProblem, problem_to_error};
use crate::lock::OWNER_MASK;
use crate::sync::{AtomicU32, Ordering};
use crate::{Error, Lifetime, Result, SegmentName};

/// Where segments live: the tmpfs that `shm_open` uses.
const SHM_DIR: &str = "/dev/shm";
/// Segment files are `shmbox.NAME`, so `list` finds only ours.
pub(crate) const FILE_PREFIX: &str = "shmbox.";

/// Byte-range locks lie beyond any real data (fcntl locks may lie past the end
/// of the file). Handle `id` holds byte `LIVENESS_BASE + id` while it is open.
const LIVENESS_BASE: i64 = 1 << 62;
/// The reaper of an `UntilLastClose` segment holds this byte.
const REAPER_BYTE: i64 = LIVENESS_BASE - 1;

/// The lock word alone is the lock (see `sys/mod.rs`).
pub(crate) const OS_MUTEX: bool = false;

/// How long an opener retries when the segment is being removed under it.
const REMOVAL_RETRY: Duration = Duration::from_millis(1);

/// An open, validated, mapped segment.
pub(crate) struct Mapping {
    base: NonNull<u8>,
    map_len: usize,
    capacity: usize,
    lifetime: Lifetime,
    lock_id: u32,
    path: CString,
    dev: u64,
    ino: u64,
    fd: OwnedFd,
    /// Catches SIGBUS from the file being cut short under the mapping.
    /// Dropped by hand, before the mapping goes.
    watch: ManuallyDrop<sigbus::Watch>,
}

// SAFETY: the mapping is shared memory meant to be used from many threads and
// processes. `Mapping` hands it out only as atomics and raw pointers; the safe
// wrappers in `segment.rs` decide who may touch which bytes. The descriptor
// and the path are ordinary owned values.
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

impl Mapping {
    /// The header at the start of the mapping.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `base` is the page-aligned start of a live mapping of at
        // least `HEADER_SIZE` bytes (checked before mapping), which outlives
        // `&self`. `Header` is `repr(C)` and made only of atomics, so shared
        // references to it are sound while other processes change it.
        unsafe { self.base.cast::<Header>().as_ref() }
    }

    /// The first byte of the data region, `capacity()` bytes long.
    #[inline]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: the mapping is `HEADER_SIZE + capacity` bytes long.
        unsafe { self.base.as_ptr().add(HEADER_SIZE) }
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
        self.watch.is_cut()
    }

    /// Sleeps while `word` (in this mapping) holds `expected`; `true` if
    /// `timeout` passed.
    #[inline]
    pub(crate) fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        futex_wait(word, expected, timeout)
    }

    /// Wakes up to `count` sleepers on `word` (in this mapping).
    #[inline]
    pub(crate) fn wake(&self, word: &AtomicU32, count: u32) {
        futex_wake(word, count);
    }

    /// Every holder of this lock is a shmbox handle, recorded in the word.
    #[inline]
    pub(crate) fn note_foreign_holder(&self, _fields: &mut HeaderFields) {}

    /// Never called: `OS_MUTEX` is false here.
    pub(crate) fn lock_os_mutex(&self, _timeout: Duration) -> Result<super::OsLocked> {
        unreachable!("the Linux backend has no OS mutex")
    }

    /// Never called: `OS_MUTEX` is false here.
    pub(crate) fn unlock_os_mutex(&self) {
        unreachable!("the Linux backend has no OS mutex")
    }

    /// Owner uid and permission bits of the segment's file.
    pub(crate) fn owner_and_mode(&self) -> (u32, u32) {
        match fs::fstat(&self.fd) {
            Ok(st) => (st.st_uid, st.st_mode & 0o7777),
            Err(_) => (u32::MAX, 0),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Unwatched first: once unmapped, the address range may be reused.
        // SAFETY: dropped once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.watch) };
        // SAFETY: `base`/`map_len` describe the mapping made in `map`, and no
        // reference into it outlives `self`: guards and slices borrow the
        // `Segment` that owns this `Mapping`.
        let _ = unsafe { mm::munmap(self.base.as_ptr().cast(), self.map_len) };
        if self.lifetime == Lifetime::UntilLastClose {
            // Exclusive only if no other handle holds its shared lock: then
            // this was the last one, and the segment's lifetime is over.
            if fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = unlink_if_same(&self.path, self.dev, self.ino);
            }
        }
        // Closing `fd` drops the flock and this handle's liveness lock.
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

/// Becomes a holder of an `UntilLastClose` segment.
fn join(name: &SegmentName, fd: &OwnedFd, path: &CStr, st: &fs::Stat) -> Result<Join> {
    match fs::flock(fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            // No holder is left: the last ones died, and so did the reaper.
            unlink_if_same(path, st.st_dev, st.st_ino)
                .map_err(|e| io_error(name, "removing a segment nobody holds", e))?;
            return Ok(Join::Stale);
        }
        Err(Errno::WOULDBLOCK) => {}
        Err(e) => return Err(io_error(name, "locking the segment", e)),
    }
    match fs::flock(fd, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Ok(Join::Retry),
        Err(e) => return Err(io_error(name, "locking the segment", e)),
    }
    // Removed between our open and our lock? Then it is not the live one.
    if !names_file(path, st.st_dev, st.st_ino) {
        return Ok(Join::Retry);
    }
    reaper::ensure(fd.as_fd(), path, st.st_dev, st.st_ino);
    Ok(Join::Joined)
}

/// Opens an existing segment.
pub(crate) fn open(name: &SegmentName, spec: &OpenSpec) -> Result<Mapping> {
    let path = path_of(name);
    let started = Instant::now();
    loop {
        let fd = open_file(name, &path, OFlags::RDWR)?;
        let (st, fields) = read_valid_header(name, &fd, spec)?;
        let lifetime = Lifetime::from_code(fields.lifetime).expect("validated");
        if lifetime == Lifetime::UntilLastClose {
            match join(name, &fd, &path, &st)? {
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
        return map_existing(name, fd, path, &st, &fields, lifetime);
    }
}

/// Maps `capacity` bytes of data after the header. The file must hold
/// exactly `HEADER_SIZE + capacity` bytes. The lock id is claimed later.
fn map(
    name: &SegmentName,
    fd: OwnedFd,
    path: CString,
    st: &fs::Stat,
    capacity: usize,
    lifetime: Lifetime,
) -> Result<Mapping> {
    let map_len = HEADER_SIZE + capacity;
    debug_assert_eq!(file_size(st), map_len as u64);
    // SAFETY: a fresh shared mapping of `fd`, at an address the kernel picks,
    // so it overlaps nothing. The file holds exactly `map_len` bytes (callers
    // check it against fstat), so every mapped page is backed and no access
    // raises SIGBUS, unless a process of the same user truncates the file.
    let ptr = unsafe {
        mm::mmap(
            std::ptr::null_mut(),
            map_len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            &fd,
            0,
        )
    }
    .map_err(|e| io_error(name, "mapping the segment", e))?;
    // A child made by fork must not inherit the mapping: it would keep this
    // handle's open file description, and with it the handle's locks, alive
    // after this process died. (The child cannot use the handle anyway.)
    // From here on an access may fault if the file is cut short.
    let watch = sigbus::watch(ptr.cast(), map_len);
    // SAFETY: advice on the mapping just made; it changes no contents.
    let _ = unsafe { mm::madvise(ptr, map_len, mm::Advice::LinuxDontFork) };
    Ok(Mapping {
        base: NonNull::new(ptr.cast()).expect("mmap never returns null on success"),
        map_len,
        capacity,
        lifetime,
        lock_id: 0,
        path,
        dev: st.st_dev,
        ino: st.st_ino,
        fd,
        watch: ManuallyDrop::new(watch),
    })
}

/// Maps a segment whose header copy `fields` was validated, checks that the
/// mapping says the same, and claims a lock id.
fn map_existing(
    name: &SegmentName,
    fd: OwnedFd,
    path: CString,
    st: &fs::Stat,
    fields: &HeaderFields,
    lifetime: Lifetime,
) -> Result<Mapping> {
    let capacity = usize::try_from(fields.capacity).map_err(|_| Error::Corrupt {
        name: name.to_string(),
        reason: "its capacity does not fit this machine's address space".into(),
    })?;
    let mut mapping = map(name, fd, path, st, capacity, lifetime)?;
    let h = mapping.header();
    let identity_changed = h.capacity.load(Ordering::Relaxed) != fields.capacity
        || h.format_version.load(Ordering::Relaxed) != fields.format_version
        || h.lifetime.load(Ordering::Relaxed) != fields.lifetime
        || h.header_size.load(Ordering::Relaxed) != fields.header_size;
    if mapping.is_cut() {
        return Err(truncated(name));
    }
    if identity_changed {
        return Err(Error::Corrupt {
            name: name.to_string(),
            reason: "its header changed while it was being opened".into(),
        });
    }
    mapping.lock_id =
        claim_lock_id(mapping.fd.as_fd(), &h.lock_word).map_err(|source| Error::Io {
            name: name.to_string(),
            operation: "claiming a lock id",
            source,
        })?;
    Ok(mapping)
}

/// Creates a new segment; fails with `AlreadyExists` if the name is taken.
pub(crate) fn create(name: &SegmentName, capacity: usize, spec: &OpenSpec) -> Result<Mapping> {
    let path = path_of(name);
    let map_len = HEADER_SIZE
        .checked_add(capacity)
        .filter(|&l| l <= isize::MAX as usize)
        .ok_or(Error::InvalidSize {
            size: capacity as u64,
            reason: "it is too large to map",
        })?;
    let mode = Mode::from_raw_mode(spec.mode);
    let fd = fs::open(
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
    fs::fchmod(&fd, mode).map_err(|e| io_error(name, "setting the segment's mode", e))?;
    // Allocate every page now: a tmpfs that runs out of space later would
    // raise SIGBUS on the first touch of a missing page.
    match fs::fallocate(&fd, FallocateFlags::empty(), 0, map_len as u64) {
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
    let st = fs::fstat(&fd).map_err(|e| io_error(name, "inspecting the segment", e))?;
    let lifetime = spec.lifetime;
    let mut mapping = map(name, fd, path, &st, capacity, lifetime)?;
    mapping
        .header()
        .initialise(capacity as u64, lifetime, 0, current_pid(), now_unix_ns());
    mapping.lock_id =
        claim_lock_id(mapping.fd.as_fd(), &mapping.header().lock_word).map_err(|source| {
            Error::Io {
                name: name.to_string(),
                operation: "claiming a lock id",
                source,
            }
        })?;
    if lifetime == Lifetime::UntilLastClose {
        // Hold it before it has a name, so it is never seen without a holder.
        fs::flock(&mapping.fd, FlockOperation::NonBlockingLockShared)
            .map_err(|e| io_error(name, "locking the segment", e))?;
    }
    link_into_place(name, &mapping.fd, &mapping.path)?;
    if lifetime == Lifetime::UntilLastClose {
        reaper::spawn(mapping.fd.as_fd(), &mapping.path, mapping.dev, mapping.ino);
    }
    Ok(mapping)
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
        .is_some_and(|f| f.lifetime == crate::header::LIFETIME_UNTIL_LAST_CLOSE);
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

/// Reads a segment's header and metadata without mapping it.
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
    if fields.lifetime == crate::header::LIFETIME_UNTIL_LAST_CLOSE
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
        owner_uid: st.st_uid,
        mode: st.st_mode & 0o7777,
        lock_owner_alive,
    })
}

/// Every valid segment in /dev/shm, sorted by name.
pub(crate) fn list() -> Result<Vec<(SegmentName, Inspected)>> {
    let entries = std::fs::read_dir(SHM_DIR).map_err(|e| Error::Io {
        name: String::new(),
        operation: "listing /dev/shm",
        source: e,
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(FILE_PREFIX))
            .and_then(|n| SegmentName::new(n).ok())
        else {
            continue;
        };
        if let Ok(inspected) = inspect(&name) {
            found.push((name, inspected));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

// ----- lock ids ------------------------------------------------------------

/// Picks a lock id no open handle uses, and holds its liveness byte.
fn claim_lock_id(fd: BorrowedFd<'_>, lock_word: &AtomicU32) -> io::Result<u32> {
    use std::hash::{BuildHasher, Hasher};
    let seed = std::hash::RandomState::new();
    for attempt in 0u64..1000 {
        let mut h = seed.build_hasher();
        h.write_u64(attempt);
        h.write_u32(current_pid());
        let id = (h.finish() as u32 & OWNER_MASK).max(1);
        let byte = LIVENESS_BASE + i64::from(id);
        if !ofd_try_lock(fd, byte)? {
            continue; // an open handle has it
        }
        if lock_word.load(Ordering::Acquire) & OWNER_MASK == id {
            // A handle with this id died holding the lock. The id must stay
            // dead until someone takes the lock over.
            ofd_unlock(fd, byte)?;
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

/// Milliseconds on the system-wide monotonic clock, wrapping; coarse.
pub(crate) fn monotonic_ms() -> u32 {
    let ts = clock(libc::CLOCK_MONOTONIC_COARSE);
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000) as u32
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
