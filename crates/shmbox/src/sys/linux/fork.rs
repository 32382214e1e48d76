//! Telling a child made by `fork()` from the process that opened a handle.
//!
//! A child that keeps running without `exec` inherits a copy of every handle,
//! but not the handle's kernel state: its locks belong to the parent (see
//! `Anchor` in `linux.rs`), so the child must not lock, unlock or close the
//! segment through it. Every operation first asks [`ForkCheck::forked`].
//!
//! The question must cost next to nothing, because it precedes every write
//! and read, and `getpid()` is a system call. So one private page, marked
//! `MADV_WIPEONFORK`, holds a random token: the kernel hands every child that
//! page filled with zeroes (grandchildren too: the mark is inherited). A
//! handle records the token when it is opened and compares it with the page:
//! one load. A child that opens a segment of its own arms the page again
//! with a new token, which its inherited handles do not hold.
//!
//! Where the kernel lacks `MADV_WIPEONFORK` (before Linux 4.14), or the page
//! cannot be made, a handle records its pid instead and compares it with
//! `getpid()` on every operation.
//!
//! # Safety
//!
//! This module maps the page and reads it through a shared reference that
//! lives as long as the process; each `unsafe` block says why it holds.
#![allow(unsafe_code)]
#![allow(clippy::disallowed_types)] // process-local memory, not a shared segment

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::mm::{self, Advice, MapFlags, ProtFlags};

/// The marker page's token word, if the page could be made.
static MARKER: OnceLock<Option<&'static AtomicU64>> = OnceLock::new();

/// How a handle recognises that it was inherited across `fork()`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForkCheck {
    /// The marker page, or `None` to compare pids.
    marker: Option<&'static AtomicU64>,
    /// The page's token, or the pid, when the handle was opened.
    token: u64,
}

impl ForkCheck {
    /// The check for a handle opened now, in this process.
    pub(crate) fn now() -> ForkCheck {
        match *MARKER.get_or_init(make_marker) {
            Some(marker) => ForkCheck {
                marker: Some(marker),
                token: arm(marker),
            },
            None => ForkCheck {
                marker: None,
                token: u64::from(super::current_pid()),
            },
        }
    }

    /// Whether this process is not the one that opened the handle: a child
    /// made by `fork()` since.
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        match self.marker {
            // Relaxed: a child sees the page zeroed before its first
            // instruction; nothing else changes it to another token.
            Some(marker) => marker.load(Ordering::Relaxed) != self.token,
            None => u64::from(super::current_pid()) != self.token,
        }
    }
}

/// This process's token: the page's, or a new one if the page is blank (a
/// child made by fork, or the first handle of the process).
fn arm(marker: &AtomicU64) -> u64 {
    let current = marker.load(Ordering::Relaxed);
    if current != 0 {
        return current;
    }
    let fresh = random_token();
    match marker.compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => fresh,
        // Another thread armed it first.
        Err(theirs) => theirs,
    }
}

/// 64 random bits, never 0: a token that no ancestor's handle holds.
fn random_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u32(super::current_pid());
    h.finish() | 1
}

fn make_marker() -> Option<&'static AtomicU64> {
    let len = super::page_size();
    // SAFETY: a new private anonymous mapping at an address the kernel
    // picks: it overlaps nothing.
    let page = unsafe {
        mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .ok()?;
    // SAFETY: advice on the page just made; it changes no contents now.
    if unsafe { mm::madvise(page, len, Advice::LinuxWipeOnFork) }.is_err() {
        // SAFETY: the page just made, never handed out.
        let _ = unsafe { mm::munmap(page, len) };
        return None;
    }
    // SAFETY: the page is page-aligned, zero-filled, and never unmapped:
    // it lives as long as the process, so a `'static` reference is valid.
    // Only atomics access it; the kernel zeroes it in a child before the
    // child runs, which no access of this process can overlap.
    Some(unsafe { &*page.cast::<AtomicU64>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_opened_here_is_not_forked() {
        let check = ForkCheck::now();
        assert!(!check.forked());
        assert_eq!(ForkCheck::now().token, check.token, "one token per process");
    }

    #[test]
    fn a_child_made_by_fork_sees_every_inherited_handle_as_forked() {
        let check = ForkCheck::now();
        let pid_check = ForkCheck {
            marker: None,
            token: u64::from(crate::sys::current_pid()),
        };
        // SAFETY: the child makes only the checks (loads and getpid), a
        // fork of its own and `_exit`; it allocates nothing and takes no lock.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let mut code = 0;
            if !check.forked() || !pid_check.forked() {
                code |= 1;
            }
            // The child's own handles are not forked, inherited ones stay so.
            let mine = ForkCheck::now();
            if mine.forked() || !check.forked() || mine.token == check.token {
                code |= 2;
            }
            // A grandchild sees the child's handles as forked too.
            // SAFETY: as above.
            let grandchild = unsafe { libc::fork() };
            if grandchild == 0 {
                // SAFETY: `_exit` ends the process at once.
                unsafe { libc::_exit(i32::from(!mine.forked() || !check.forked())) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(grandchild, &mut status, 0) };
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                code |= 4;
            }
            // SAFETY: `_exit` ends the process at once.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "failed checks (bits)");
        assert!(!check.forked(), "the parent's handles stay usable");
    }
}
