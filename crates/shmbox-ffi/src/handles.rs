//! The table of open handles, and the locks each thread holds.
//!
//! A handle given to C is a token (1, 2, 3, ...) cast to a pointer, never
//! an address: looking it up in the table is how every call finds its
//! segment, so a NULL, closed or made-up handle is refused, and a closed
//! one is never mistaken for a later handle (tokens are not reused).
//!
//! A lock held across calls is an `ArcSegmentGuard` in a thread-local
//! list: the thread that took it releases it, on `shmbox_unlock`,
//! `shmbox_close` or its exit.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use shmbox_core::{ArcSegmentGuard, Segment};

use crate::status::{
    Failure, SHMBOX_ERR_INVALID_ARGUMENT, SHMBOX_ERR_NOT_OWNER, SHMBOX_OK, SHMBOX_OWNER_DIED, fail,
};

/// What a token stands for.
pub(crate) type Handle = Arc<Segment>;

static OPEN: Mutex<BTreeMap<usize, Handle>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicUsize = AtomicUsize::new(1);

fn table() -> std::sync::MutexGuard<'static, BTreeMap<usize, Handle>> {
    OPEN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers a handle and returns its token.
pub(crate) fn open(handle: Handle) -> usize {
    let mut table = table();
    let token = loop {
        let token = NEXT.fetch_add(1, Ordering::Relaxed);
        // 0 is NULL; after a wrap (2^32 opens in a 32-bit process), skip
        // tokens still in use.
        if token != 0 && !table.contains_key(&token) {
            break token;
        }
    };
    table.insert(token, handle);
    token
}

/// The handle behind a token.
pub(crate) fn get(token: usize) -> Result<Handle, Failure> {
    if token == 0 {
        return Err(fail(
            SHMBOX_ERR_INVALID_ARGUMENT,
            "the segment handle is NULL",
        ));
    }
    table().get(&token).cloned().ok_or_else(|| {
        fail(
            SHMBOX_ERR_INVALID_ARGUMENT,
            format!(
                "{token:#x} is not an open segment handle (it was closed, or never came from \
                 shmbox_create, shmbox_open or shmbox_open_or_create)"
            ),
        )
    })
}

/// Forgets a token; the segment closes once no call is using it.
pub(crate) fn close(token: usize) {
    let removed = table().remove(&token);
    drop(removed);
}

/// The locks the calling thread holds across calls.
pub(crate) mod held {
    use super::*;

    /// A lock taken by `shmbox_lock`, until `shmbox_unlock`.
    struct Held {
        token: usize,
        guard: ArcSegmentGuard,
    }

    thread_local! {
        /// Dropped when the thread exits, which releases what it holds.
        static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
    }

    fn name(handle: &Handle) -> &str {
        handle.name().as_str()
    }

    /// Takes the lock of `token`'s segment for this thread.
    pub(crate) fn lock(
        token: usize,
        handle: Handle,
        timeout: std::time::Duration,
    ) -> Result<c_int, Failure> {
        if HELD.with(|held| held.borrow().iter().any(|h| h.token == token)) {
            return Err(fail(
                SHMBOX_ERR_INVALID_ARGUMENT,
                format!(
                    "this thread already holds the lock of segment {:?} through this handle \
                     (the lock is not reentrant: call shmbox_unlock first)",
                    name(&handle)
                ),
            ));
        }
        let guard = handle.lock_arc_timeout(timeout)?;
        let status = if guard.owner_died().is_some() {
            SHMBOX_OWNER_DIED
        } else {
            SHMBOX_OK
        };
        HELD.with(|held| held.borrow_mut().push(Held { token, guard }));
        Ok(status)
    }

    /// Runs `f` on the guard this thread holds for `token`, if it holds one.
    pub(crate) fn with<R>(token: usize, f: impl FnOnce(&mut ArcSegmentGuard) -> R) -> Option<R> {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            let entry = held.iter_mut().find(|h| h.token == token)?;
            Some(f(&mut entry.guard))
        })
    }

    /// Commits and releases the lock this thread holds for `token`.
    pub(crate) fn unlock(token: usize) -> Result<c_int, Failure> {
        let entry = HELD.with(|held| {
            let mut held = held.borrow_mut();
            let at = held.iter().position(|h| h.token == token)?;
            Some(held.swap_remove(at))
        });
        let Some(entry) = entry else {
            let what = match super::get(token) {
                Ok(handle) => format!("segment {:?}", name(&handle)),
                Err(e) => return Err(e),
            };
            return Err(fail(
                SHMBOX_ERR_NOT_OWNER,
                format!(
                    "this thread does not hold the lock of {what} through this handle \
                     (only the thread that called shmbox_lock may call shmbox_unlock)"
                ),
            ));
        };
        entry.guard.unlock()?;
        Ok(SHMBOX_OK)
    }

    /// Releases (and commits) what this thread holds for `token`, if
    /// anything: `shmbox_close` calls it.
    pub(crate) fn release(token: usize) {
        let entry = HELD.with(|held| {
            let mut held = held.borrow_mut();
            let at = held.iter().position(|h| h.token == token)?;
            Some(held.swap_remove(at))
        });
        drop(entry);
    }
}
