//! Raw shared mappings of /dev/shm files, for the peers shmbox is measured
//! against (a minimal futex lock, a robust pthread mutex, raw_sync, OFD locks).
//!
//! # Safety
//!
//! The mapping is plain shared memory; callers place atomics and C mutexes
//! in it at aligned offsets they choose, and use only those.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

/// A file in /dev/shm, mapped shared and read-write.
pub struct SharedMap {
    ptr: *mut u8,
    len: usize,
    path: PathBuf,
    file: File,
    owner: bool,
}

// SAFETY: the mapping is shared memory meant for many threads and processes;
// all access goes through atomics or the callers' own locks.
unsafe impl Send for SharedMap {}
// SAFETY: as above.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// Creates `/dev/shm/shmbox-bench-TAG-PID-N` of `len` zero bytes.
    pub fn create(tag: &str, len: usize) -> io::Result<SharedMap> {
        let path = PathBuf::from(format!("/dev/shm/{}", crate::unique_name(tag)));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.set_len(len as u64)?;
        Self::map(file, path, len, true)
    }

    /// Maps an existing file made by `create` (in another process).
    pub fn open(path: &Path) -> io::Result<SharedMap> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len() as usize;
        Self::map(file, path.to_owned(), len, false)
    }

    fn map(file: File, path: PathBuf, len: usize, owner: bool) -> io::Result<SharedMap> {
        // SAFETY: a fresh shared mapping of a file of exactly `len` bytes.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMap {
            ptr: ptr.cast(),
            len,
            path,
            file,
            owner,
        })
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// The 32-bit word at `offset` (a multiple of 4).
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.len);
        // SAFETY: aligned, inside the mapping, and only ever accessed
        // atomically; the mapping lives as long as `&self`.
        unsafe { AtomicU32::from_ptr(self.ptr.add(offset).cast()) }
    }

    /// The 64-bit word at `offset` (a multiple of 8).
    pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.len);
        // SAFETY: as for `u32_at`.
        unsafe { AtomicU64::from_ptr(self.ptr.add(offset).cast()) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: unmaps what `map` mapped; no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `futex(FUTEX_WAIT)` on a word of shared memory (not private).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: the futex system call reads the word at a valid address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// `futex(FUTEX_WAIT)` for at most `timeout`; may return early.
pub fn futex_wait_for(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the futex system call reads the word at a valid address and
    // the relative timeout from `ts`, which outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

/// `futex(FUTEX_WAKE)` of up to `count` waiters.
pub fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count) };
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Runs this thread (and the threads it starts) on CPU `cpu` only.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET and
    // sched_setaffinity take it by pointer.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Lets this process run on every CPU again.
pub fn unpin() -> io::Result<()> {
    // SAFETY: as above, with every CPU the set can hold.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
