//! Status codes, the per-thread last error, and the wall that keeps panics
//! on the Rust side.

use std::cell::RefCell;
use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};

use libc::intptr_t;
use shmbox_core::Error;

/// Success.
pub const SHMBOX_OK: c_int = 0;
/// `shmbox_lock`: acquired; the previous holder died holding it.
pub const SHMBOX_OWNER_DIED: c_int = 1;
/// No segment has this name.
pub const SHMBOX_ERR_NOT_FOUND: c_int = -1;
/// A segment of this name exists already.
pub const SHMBOX_ERR_ALREADY_EXISTS: c_int = -2;
/// The segment exists with another size.
pub const SHMBOX_ERR_SIZE_MISMATCH: c_int = -3;
/// The lock stayed held, or nothing changed, for the whole timeout.
pub const SHMBOX_ERR_TIMEOUT: c_int = -4;
/// An offset past the end of the segment.
pub const SHMBOX_ERR_OUT_OF_RANGE: c_int = -5;
/// NULL, a closed handle, a bad name or size.
pub const SHMBOX_ERR_INVALID_ARGUMENT: c_int = -6;
/// The system refused access, or the segment belongs to another user, or
/// every user may write it.
pub const SHMBOX_ERR_PERMISSION: c_int = -7;
/// The name holds something that is not a valid segment of this format.
pub const SHMBOX_ERR_CORRUPT: c_int = -8;
/// The data was left torn by a writer that died.
pub const SHMBOX_ERR_INCONSISTENT: c_int = -9;
/// Unlock without holding the lock on this thread.
pub const SHMBOX_ERR_NOT_OWNER: c_int = -10;
/// Anything else: the message says what.
pub const SHMBOX_ERR_OTHER: c_int = -100;

/// A failed call: its status and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: c_int,
    pub(crate) message: String,
}

pub(crate) fn fail(status: c_int, message: impl Into<String>) -> Failure {
    Failure {
        status,
        message: message.into(),
    }
}

/// The status for a library error.
pub(crate) fn of(e: &Error) -> c_int {
    match e {
        Error::NotFound { .. } => SHMBOX_ERR_NOT_FOUND,
        Error::AlreadyExists { .. } => SHMBOX_ERR_ALREADY_EXISTS,
        Error::SizeMismatch { .. } => SHMBOX_ERR_SIZE_MISMATCH,
        Error::Timeout { .. } => SHMBOX_ERR_TIMEOUT,
        Error::OutOfRange { .. } | Error::OutOfBounds { .. } => SHMBOX_ERR_OUT_OF_RANGE,
        Error::InvalidName { .. } | Error::InvalidSize { .. } | Error::InvalidMode { .. } => {
            SHMBOX_ERR_INVALID_ARGUMENT
        }
        Error::PermissionDenied { .. }
        | Error::ForeignOwner { .. }
        | Error::WritableByOthers { .. } => SHMBOX_ERR_PERMISSION,
        Error::Corrupt { .. }
        | Error::IncompatibleVersion { .. }
        | Error::NotInitialized { .. }
        | Error::Truncated { .. } => SHMBOX_ERR_CORRUPT,
        Error::Inconsistent { .. } => SHMBOX_ERR_INCONSISTENT,
        _ => SHMBOX_ERR_OTHER,
    }
}

thread_local! {
    /// The calling thread's last error message.
    static LAST: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn last_message() -> String {
    LAST.with(|last| last.borrow().clone())
}

fn remember(message: String) {
    LAST.with(|last| *last.borrow_mut() = message);
}

/// Runs `body`, turning its failure or panic into a status and remembering
/// the message.
pub(crate) fn guarded(body: impl FnOnce() -> Result<c_int, Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(failure)) => {
            remember(failure.message);
            failure.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            remember(format!(
                "internal error in shmbox: {what} (please report it)"
            ));
            SHMBOX_ERR_OTHER
        }
    }
}

/// As `guarded`, for calls that return a byte count or a negative status.
pub(crate) fn guarded_count(body: impl FnOnce() -> Result<usize, Failure>) -> intptr_t {
    let mut count = 0;
    let status = guarded(|| {
        count = body()?;
        Ok(SHMBOX_OK)
    });
    if status == SHMBOX_OK {
        // Counts never exceed the segment's size, which fits an isize.
        count as intptr_t
    } else {
        status as intptr_t
    }
}
