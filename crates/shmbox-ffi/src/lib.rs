//! The C ABI of shmbox.
//!
//! Built as `libshmbox.so` and `libshmbox.a` on Linux and `shmbox.dll` on
//! Windows, declared in `include/shmbox.h` (generated from this file with
//! cbindgen; `tests/header.rs` fails when it is stale, and
//! `SHMBOX_BLESS=1 cargo test -p shmbox-ffi --test header` rewrites it).
//!
//! Every function is `extern "system"`: stdcall in a 32-bit Windows DLL,
//! which is what Visual FoxPro's `DECLARE ... IN shmbox.dll` calls, and the C
//! convention everywhere else. No panic crosses the boundary, and no handle
//! is ever dereferenced: a `shmbox_segment *` is a token looked up in a table
//! of open handles, so a NULL, closed or made-up one is an error, never a
//! crash (FoxPro programs close twice).
//!
//! # Safety
//!
//! This module reads the C strings and buffers its callers pass, and writes
//! the results they point to. Each `unsafe` block says what it relies on;
//! what callers must provide is stated in the header.
#![allow(unsafe_code)]
// The C names are the API.
#![allow(non_camel_case_types)]

mod handles;
mod status;

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

use libc::{intptr_t, size_t};
use shmbox_core::{Error, Segment, SegmentOptions};

use handles::{Handle, held};
pub use status::*;
use status::{Failure, fail};

/// An open segment. Opaque: only this library knows what it is, and it never
/// reads through the pointer.
#[derive(Debug)]
pub struct shmbox_segment {
    _opaque: [u8; 0],
}

/// `timeout_ms` meaning "wait for ever", as Win32's `INFINITE`.
pub const SHMBOX_INFINITE: u32 = 0xFFFF_FFFF;

/// Creates the segment `name` of `size` bytes, zeroed, and stores a handle
/// to it in `*out`. It fails with SHMBOX_ERR_ALREADY_EXISTS if the name is
/// taken. The segment lasts until the last process that has it open closes
/// it (or dies), as a Win32 file mapping does.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `out` is NULL or points to
/// writable storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn shmbox_create(
    name: *const c_char,
    size: size_t,
    out: *mut *mut shmbox_segment,
) -> c_int {
    status::guarded(|| {
        // SAFETY: the caller's contract for `name`.
        let name = unsafe { c_name(name) }?;
        let segment = SegmentOptions::new().create(name, size)?;
        // SAFETY: the caller's contract for `out`.
        unsafe { hand_out(segment, out) }
    })
}

/// Opens the existing segment `name`, whatever its size, and stores a handle
/// to it in `*out`. It fails with SHMBOX_ERR_NOT_FOUND if there is none.
///
/// # Safety
///
/// As for [`shmbox_create`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn shmbox_open(
    name: *const c_char,
    out: *mut *mut shmbox_segment,
) -> c_int {
    status::guarded(|| {
        // SAFETY: the caller's contract for `name`.
        let name = unsafe { c_name(name) }?;
        let segment = Segment::open(name)?;
        // SAFETY: the caller's contract for `out`.
        unsafe { hand_out(segment, out) }
    })
}

/// Opens the segment `name`, or creates it with `size` bytes if there is
/// none: what the FoxPro sample's `CreateFileMapping` does. An existing
/// segment of another size is SHMBOX_ERR_SIZE_MISMATCH.
///
/// # Safety
///
/// As for [`shmbox_create`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn shmbox_open_or_create(
    name: *const c_char,
    size: size_t,
    out: *mut *mut shmbox_segment,
) -> c_int {
    status::guarded(|| {
        // SAFETY: the caller's contract for `name`.
        let name = unsafe { c_name(name) }?;
        let segment = Segment::open_or_create(name, size)?;
        // SAFETY: the caller's contract for `out`.
        unsafe { hand_out(segment, out) }
    })
}

/// Closes a handle. A lock that the calling thread holds through it is
/// released first (and its write committed). NULL, and a handle closed
/// already, are ignored. Closing the last handle of a segment in any process
/// removes the segment.
#[unsafe(no_mangle)]
pub extern "system" fn shmbox_close(seg: *mut shmbox_segment) {
    // Nothing to report: a close always "works".
    let _ = status::guarded(|| {
        if !seg.is_null() {
            held::release(seg as usize);
            handles::close(seg as usize);
        }
        Ok(SHMBOX_OK)
    });
}

/// The segment's size in bytes: exactly what it was created with. 0 for a
/// NULL or closed handle (and the last error says so).
#[unsafe(no_mangle)]
pub extern "system" fn shmbox_size(seg: *const shmbox_segment) -> size_t {
    let mut size = 0;
    let _ = status::guarded(|| {
        size = handles::get(seg as usize)?.size();
        Ok(SHMBOX_OK)
    });
    size
}

/// Writes `len` bytes from `data` at `offset`, clamped to the segment's end,
/// and returns how many bytes were written, or a negative status. Without a
/// lock held, it takes the lock (waiting up to 5 s, as the sample does),
/// writes, commits and unlocks; between `shmbox_lock` and `shmbox_unlock` on
/// this thread and handle, it writes under that lock and commits at
/// `shmbox_unlock`. An offset past the end is SHMBOX_ERR_OUT_OF_RANGE.
///
/// # Safety
///
/// `data` is NULL only if `len` is 0; otherwise it points to `len` readable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn shmbox_write(
    seg: *mut shmbox_segment,
    offset: size_t,
    data: *const c_void,
    len: size_t,
) -> intptr_t {
    status::guarded_count(|| {
        let handle = handles::get(seg as usize)?;
        // SAFETY: the caller's contract for `data` and `len`.
        let data = unsafe { c_bytes(data, len) }?;
        let written = match held::with(seg as usize, |guard| guard.write(offset, data)) {
            Some(written) => written,
            None => handle.write(offset, data),
        };
        written.map_err(|e| about(&handle, e))
    })
}

/// Reads up to `len` bytes at `offset` into `buf`, clamped to the
/// segment's end, and returns how many bytes were read, or a negative
/// status. Without a lock held, it takes the lock (up to 5 s) and fails
/// with SHMBOX_ERR_INCONSISTENT if a writer died in the middle of a write;
/// under `shmbox_lock` it reads what is there (the lock's status said
/// whether a writer died).
///
/// # Safety
///
/// `buf` is NULL only if `len` is 0; otherwise it points to `len` writable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn shmbox_read(
    seg: *mut shmbox_segment,
    offset: size_t,
    buf: *mut c_void,
    len: size_t,
) -> intptr_t {
    status::guarded_count(|| {
        let handle = handles::get(seg as usize)?;
        // SAFETY: the caller's contract for `buf` and `len`.
        let buf = unsafe { c_bytes_mut(buf, len) }?;
        let read = match held::with(seg as usize, |guard| guard.read_into(offset, buf)) {
            Some(read) => read,
            None => handle.read_into(offset, buf),
        };
        read.map_err(|e| about(&handle, e))
    })
}

/// Takes the segment's lock for the calling thread, waiting up to
/// `timeout_ms` milliseconds (SHMBOX_INFINITE: for ever). Returns SHMBOX_OK,
/// or SHMBOX_OWNER_DIED when the previous holder died holding it (if it died
/// mid-write, the data may be torn: writing repairs it), or an error:
/// SHMBOX_ERR_TIMEOUT if a live process held it all that time. The lock is
/// not reentrant: this thread taking it again through the same handle is
/// SHMBOX_ERR_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub extern "system" fn shmbox_lock(seg: *mut shmbox_segment, timeout_ms: u32) -> c_int {
    status::guarded(|| {
        let handle = handles::get(seg as usize)?;
        held::lock(seg as usize, handle, timeout(timeout_ms))
    })
}

/// Commits what was written under the lock and releases it. Only the thread
/// that took the lock may release it: anything else is SHMBOX_ERR_NOT_OWNER.
#[unsafe(no_mangle)]
pub extern "system" fn shmbox_unlock(seg: *mut shmbox_segment) -> c_int {
    status::guarded(|| held::unlock(seg as usize))
}

/// Waits until a write is committed, by any process, after generation
/// `since` (see `shmbox_generation`), for up to `timeout_ms` milliseconds
/// (SHMBOX_INFINITE: for ever). Stores the new generation in `*generation`
/// unless it is NULL. Returns at once if the generation is not `since`.
///
/// # Safety
///
/// `generation` is NULL or points to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn shmbox_wait_for_change(
    seg: *mut shmbox_segment,
    since: u64,
    timeout_ms: u32,
    generation: *mut u64,
) -> c_int {
    status::guarded(|| {
        let handle = handles::get(seg as usize)?;
        let now = handle.wait_for_change(since, timeout(timeout_ms))?;
        if !generation.is_null() {
            // SAFETY: the caller's contract for `generation`.
            unsafe { generation.write(now) };
        }
        Ok(SHMBOX_OK)
    })
}

/// How many writes have been committed to the segment, by any process. 0
/// for a NULL or closed handle (and the last error says so).
#[unsafe(no_mangle)]
pub extern "system" fn shmbox_generation(seg: *const shmbox_segment) -> u64 {
    let mut generation = 0;
    let _ = status::guarded(|| {
        generation = handles::get(seg as usize)?.generation();
        Ok(SHMBOX_OK)
    });
    generation
}

/// Copies the calling thread's last error message into `buf` (at most
/// `len` bytes, always NUL-terminated when `len` is not 0), and returns the
/// size of buffer the whole message needs, its NUL included. A function
/// that succeeds leaves the last message as it was.
///
/// # Safety
///
/// `buf` is NULL only if `len` is 0; otherwise it points to `len` writable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn shmbox_last_error_message(buf: *mut c_char, len: size_t) -> size_t {
    let message = status::last_message();
    let needed = message.len() + 1;
    if !buf.is_null() && len > 0 {
        let n = message.len().min(len - 1);
        // SAFETY: `buf` has room for `len > n` bytes (the caller's
        // contract), and `message` is ours: the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), n);
            buf.add(n).write(0);
        }
    }
    needed
}

/// The library's version, as "MAJOR.MINOR.PATCH": a static string.
#[unsafe(no_mangle)]
pub extern "system" fn shmbox_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("the version has no NUL byte"),
        };
    VERSION.as_ptr()
}

/// The failure for `e`, an error on `handle`'s segment: its message names
/// the segment even where the library's does not (an offset out of range).
fn about(handle: &Handle, e: Error) -> Failure {
    let mut failure = Failure::from(e);
    let name = handle.name().as_str();
    if !failure.message.contains(name) {
        failure.message = format!("segment {name:?}: {}", failure.message);
    }
    failure
}

/// `timeout_ms` as a duration; SHMBOX_INFINITE waits for ever.
fn timeout(timeout_ms: u32) -> Duration {
    if timeout_ms == SHMBOX_INFINITE {
        Duration::MAX
    } else {
        Duration::from_millis(u64::from(timeout_ms))
    }
}

/// A segment name from C.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string that outlives the call.
unsafe fn c_name<'a>(name: *const c_char) -> Result<&'a str, Failure> {
    if name.is_null() {
        return Err(fail(
            SHMBOX_ERR_INVALID_ARGUMENT,
            "the segment name is NULL",
        ));
    }
    // SAFETY: the caller's contract.
    let name = unsafe { CStr::from_ptr(name) };
    name.to_str().map_err(|_| {
        fail(
            SHMBOX_ERR_INVALID_ARGUMENT,
            format!("the segment name {name:?} is not UTF-8"),
        )
    })
}

/// `len` bytes at `data` (none if `len` is 0).
///
/// # Safety
///
/// `data` points to `len` readable bytes that outlive the call, or `len`
/// is 0.
unsafe fn c_bytes<'a>(data: *const c_void, len: size_t) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(fail(
            SHMBOX_ERR_INVALID_ARGUMENT,
            "the data pointer is NULL",
        ));
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// `len` writable bytes at `buf` (none if `len` is 0).
///
/// # Safety
///
/// `buf` points to `len` writable bytes, used by nothing else during the
/// call, or `len` is 0.
unsafe fn c_bytes_mut<'a>(buf: *mut c_void, len: size_t) -> Result<&'a mut [u8], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(fail(
            SHMBOX_ERR_INVALID_ARGUMENT,
            "the buffer pointer is NULL",
        ));
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
}

/// Registers `segment` and stores its handle in `*out`.
///
/// # Safety
///
/// `out` is NULL or points to writable storage for one pointer.
unsafe fn hand_out(segment: Segment, out: *mut *mut shmbox_segment) -> Result<c_int, Failure> {
    if out.is_null() {
        return Err(fail(
            SHMBOX_ERR_INVALID_ARGUMENT,
            "the pointer for the new handle (out) is NULL",
        ));
    }
    let token = handles::open(Arc::new(segment));
    // SAFETY: the caller's contract for `out`.
    unsafe { out.write(token as *mut shmbox_segment) };
    Ok(SHMBOX_OK)
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            status: status::of(&e),
            message: e.to_string(),
        }
    }
}
