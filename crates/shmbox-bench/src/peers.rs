//! The locks shmbox is compared with, each in a shared mapping.
//!
//! # Safety
//!
//! The pthread mutex lives in shared memory that outlives it; it is
//! initialised once, by the process that created the mapping.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::mapping::{SharedMap, futex_wait, futex_wake};

/// The floor: a futex mutex (Drepper's "mutex2") and nothing else. 0 free,
/// 1 locked, 2 locked with waiters. No owner, no recovery.
pub struct FutexLock<'a>(pub &'a AtomicU32);

impl FutexLock<'_> {
    #[inline]
    pub fn lock(&self) {
        if self
            .0
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        while self.0.swap(2, Ordering::Acquire) != 0 {
            futex_wait(self.0, 2);
        }
    }

    #[inline]
    pub fn unlock(&self) {
        if self.0.swap(0, Ordering::Release) == 2 {
            futex_wake(self.0, 1);
        }
    }
}

/// A glibc robust, process-shared pthread mutex at the start of a mapping.
pub struct RobustMutex(*mut libc::pthread_mutex_t);

impl RobustMutex {
    /// Bytes the mutex takes at the start of the mapping.
    pub const SIZE: usize = 64;

    /// Initialises the mutex at the start of `map` (once, by its creator).
    pub fn init(map: &SharedMap) -> io::Result<RobustMutex> {
        assert!(size_of::<libc::pthread_mutex_t>() <= Self::SIZE);
        let mutex = map.ptr().cast::<libc::pthread_mutex_t>();
        // SAFETY: `attr` is initialised before use and destroyed after; the
        // mutex memory is inside the mapping, aligned (page start), unused.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            check(libc::pthread_mutexattr_init(&mut attr))?;
            check(libc::pthread_mutexattr_setpshared(
                &mut attr,
                libc::PTHREAD_PROCESS_SHARED,
            ))?;
            check(libc::pthread_mutexattr_setrobust(
                &mut attr,
                libc::PTHREAD_MUTEX_ROBUST,
            ))?;
            check(libc::pthread_mutex_init(mutex, &attr))?;
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        Ok(RobustMutex(mutex))
    }

    /// The mutex another process initialised in `map`.
    pub fn attach(map: &SharedMap) -> RobustMutex {
        RobustMutex(map.ptr().cast())
    }

    #[inline]
    pub fn lock(&self) {
        // SAFETY: an initialised process-shared mutex in a live mapping.
        let r = unsafe { libc::pthread_mutex_lock(self.0) };
        if r == libc::EOWNERDEAD {
            // SAFETY: as above; this thread now owns it.
            unsafe { libc::pthread_mutex_consistent(self.0) };
        }
    }

    #[inline]
    pub fn unlock(&self) {
        // SAFETY: as above, held by this thread.
        unsafe { libc::pthread_mutex_unlock(self.0) };
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// An exclusive OFD lock on byte 0 of the mapping's file: two system calls
/// per lock and unlock, and the kernel releases it when a holder dies.
pub struct OfdLock(libc::c_int);

impl OfdLock {
    pub fn new(map: &SharedMap) -> OfdLock {
        OfdLock(map.file().as_raw_fd())
    }

    fn op(&self, cmd: libc::c_int, kind: libc::c_int) {
        // SAFETY: all zeroes is a valid `flock`.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_len = 1;
        // SAFETY: a live descriptor and a valid `flock`.
        unsafe { libc::fcntl(self.0, cmd, &mut fl) };
    }

    #[inline]
    pub fn lock(&self) {
        self.op(libc::F_OFD_SETLKW, libc::F_WRLCK);
    }

    #[inline]
    pub fn unlock(&self) {
        self.op(libc::F_OFD_SETLK, libc::F_UNLCK);
    }
}

/// Copies 64 bytes into the mapping at `offset`, as a lock's critical
/// section would (a plain copy: the lock keeps writers apart).
#[inline]
pub fn write_64(map: &SharedMap, offset: usize, payload: &[u8; 64]) {
    assert!(offset + 64 <= map.len());
    // SAFETY: inside the mapping; callers hold the lock that guards it.
    unsafe { std::ptr::copy_nonoverlapping(payload.as_ptr(), map.ptr().add(offset), 64) };
}
