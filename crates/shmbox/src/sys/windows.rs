//! Windows backend, interoperable with the Win32 programs (the FoxPro sample
//! among them) that share a block through `CreateFileMapping` and guard it
//! with the mutex `"sync_" + name`.
//!
//! A segment `NAME` is four named kernel objects, all in the session's
//! namespace unless the name starts with `Global\` (see `SegmentName`):
//!
//! | object                | kind         | holds                                      |
//! |-----------------------|--------------|--------------------------------------------|
//! | `NAME`                | file mapping | the data, exactly: byte 0 is data byte 0   |
//! | `sync_NAME`           | mutex        | the lock, as the sample uses it            |
//! | `shmbox/NAME`         | file mapping | the 256-byte header of docs/FORMAT.md      |
//! | `shmbox/NAME/notify`  | semaphore    | where change waiters sleep                 |
//!
//! The data mapping stays raw, so a program that knows only the sample's
//! calls reads and writes the same bytes. shmbox's extras (generation,
//! seqlock, last writer, change notification, lock owner) live in the header
//! mapping, marked `FLAG_DETACHED_DATA`. A name with `/` can never be a
//! segment's own name, so the companions cannot collide with another segment.
//!
//! **Lock.** shmbox takes `sync_NAME` with `WaitForSingleObject`, then the
//! header's lock word under it (`lock::take_under_os_mutex`), which records
//! the owner and carries the WATCHERS bit of the notification protocol.
//! `WAIT_ABANDONED` (the previous owner ended without releasing) becomes the
//! owner-died report, whoever that owner was. A Windows mutex belongs to a
//! thread and may be taken again by it; before it waits, shmbox asks the
//! mutex whether this very thread owns it (`NtQueryMutant`), so that a
//! second lock from the same thread times out as it does on Linux instead of
//! silently nesting. Asking the object, not comparing names, makes that
//! right however the name was spelled (`Global\X`, `global\X`, or `X` in
//! session 0, are one mutex).
//!
//! **Notification.** `WaitOnAddress` does not cross processes, so waiters
//! sleep on the semaphore, counted in the header's `notify_sleepers`: a
//! futex for the notify word built from them (`sem_futex.rs`, loom-checked).
//!
//! **Lifetime.** A kernel object lives while any process has a handle to it,
//! which is `Lifetime::UntilLastClose`, crash-safe by construction.
//! `Persistent` cannot be built without a process that outlives its creator,
//! and is refused with `Error::Unsupported`; so is `remove`. If programs that
//! know nothing of shmbox keep the data mapping open after every shmbox
//! process has closed, the header goes and the next shmbox opener starts a
//! new one: the generation starts again at 0.
//!
//! **Foreign writers.** A program that writes under the mutex without shmbox
//! does not move the seqlock: `read_consistent` and `wait_for_change` see its
//! writes only as far as the seqlock lets them (no generation, possibly torn
//! against such a writer). Locked reads (`read`, `lock`) are exact.
//!
//! **Access.** Objects get the creator's default security descriptor: the
//! creating user, SYSTEM and Administrators. `SegmentOptions::mode` and the
//! ownership checks of the Linux backend do not apply.
//!
//! # Safety
//!
//! This module calls Win32 and two ntdll functions (`NtQuerySection`, for the
//! exact size of a mapping that another program made, and `NtQueryMutant`,
//! to tell whether the mutex is held without taking it). Each `unsafe` block
//! says why it holds.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_FILE_NOT_FOUND, ERROR_INVALID_HANDLE,
    ERROR_PRIVILEGE_NOT_HELD, GetLastError, HANDLE, INVALID_HANDLE_VALUE, UNICODE_STRING,
    WAIT_ABANDONED, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_ALL_ACCESS, FILE_MAP_READ, MEMORY_MAPPED_VIEW_ADDRESS,
    MapViewOfFile, OpenFileMappingW, PAGE_READWRITE, UnmapViewOfFile,
};
use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
use windows_sys::Win32::System::SystemInformation::GetTickCount64;
use windows_sys::Win32::System::Threading::{
    CreateMutexW, CreateSemaphoreW, GetCurrentProcessId, INFINITE, OpenMutexW, ReleaseMutex,
    ReleaseSemaphore, WaitForSingleObject,
};

use super::{Inspected, OpenSpec, RawLock};
use crate::header::{
    FLAG_DETACHED_DATA, FORMAT_VERSION, HEADER_SIZE, Header, HeaderFields, HeaderProblem,
    INIT_READY, LIFETIME_UNTIL_LAST_CLOSE, MAGIC, max_capacity, problem_to_error,
};
use crate::lock::{self, Acquired, OWNER_MASK, Unlocked};
use crate::sem_futex::{self, Semaphore};
use crate::sync::{AtomicU32, Ordering};
use crate::{Error, Lifetime, Result, SegmentName};

/// Access to a section that also lets `NtQuerySection` read its size.
const SECTION_QUERY: u32 = 0x0001;
/// Access to a mutex that lets `NtQueryMutant` read its state.
const MUTANT_QUERY_STATE: u32 = 0x0001;
/// Access that lets a handle be waited on.
const SYNCHRONIZE: u32 = 0x0010_0000;

/// Reported as the lock word's owner when the mutex is held by a program
/// that is not shmbox (so it recorded no owner). Never handed out as an id.
const FOREIGN_OWNER: u32 = OWNER_MASK;

/// The page size of every Windows machine this targets (x86-64, ARM64).
const PAGE: u64 = 4096;

/// How often an opener looks again while another process initialises the
/// header.
const INIT_POLL: Duration = Duration::from_millis(1);

// ----- ntdll ----------------------------------------------------------------

/// `SECTION_BASIC_INFORMATION`.
#[repr(C)]
struct SectionBasicInformation {
    base_address: *mut c_void,
    allocation_attributes: u32,
    maximum_size: i64,
}

/// `MUTANT_BASIC_INFORMATION`.
#[repr(C)]
struct MutantBasicInformation {
    current_count: i32,
    owned_by_caller: u8,
    abandoned_state: u8,
}

/// `OBJECT_ATTRIBUTES`.
#[repr(C)]
struct ObjectAttributes {
    length: u32,
    root_directory: HANDLE,
    object_name: *const UNICODE_STRING,
    attributes: u32,
    security_descriptor: *const c_void,
    security_quality_of_service: *const c_void,
}

/// `OBJECT_DIRECTORY_INFORMATION`.
#[repr(C)]
struct ObjectDirectoryInformation {
    name: UNICODE_STRING,
    type_name: UNICODE_STRING,
}

/// `DIRECTORY_QUERY` access to an object directory.
const DIRECTORY_QUERY: u32 = 0x0001;

#[link(name = "ntdll")]
unsafe extern "system" {
    fn NtOpenDirectoryObject(
        directory: *mut HANDLE,
        access: u32,
        attributes: *const ObjectAttributes,
    ) -> i32;
    fn NtQueryDirectoryObject(
        directory: HANDLE,
        buffer: *mut c_void,
        length: u32,
        single_entry: u8,
        restart_scan: u8,
        context: *mut u32,
        returned: *mut u32,
    ) -> i32;
    fn NtQuerySection(
        section: HANDLE,
        class: u32,
        info: *mut c_void,
        info_len: usize,
        returned: *mut usize,
    ) -> i32;
    fn NtQueryMutant(
        mutant: HANDLE,
        class: u32,
        info: *mut c_void,
        info_len: u32,
        returned: *mut u32,
    ) -> i32;
}

// ----- names and handles ----------------------------------------------------

/// The names of a segment's objects, NUL-terminated UTF-16.
struct ObjectNames {
    data: Vec<u16>,
    mutex: Vec<u16>,
    header: Vec<u16>,
    notify: Vec<u16>,
    /// The mutex's name, for messages.
    mutex_name: String,
}

impl ObjectNames {
    fn of(name: &SegmentName) -> ObjectNames {
        let (namespace, base) = name.namespace_and_base();
        // The prefix is a keyword, matched in any case: spell it as Windows
        // documents it, so that every spelling reaches the same objects
        // (Wine, unlike Windows, would not find `global\`).
        let namespace = if namespace.is_empty() {
            ""
        } else if namespace.eq_ignore_ascii_case("Global\\") {
            "Global\\"
        } else {
            "Local\\"
        };
        let wide = |s: String| s.encode_utf16().chain(Some(0)).collect::<Vec<u16>>();
        ObjectNames {
            data: wide(format!("{namespace}{base}")),
            mutex: wide(format!("{namespace}sync_{base}")),
            header: wide(format!("{namespace}shmbox/{base}")),
            notify: wide(format!("{namespace}shmbox/{base}/notify")),
            mutex_name: format!("{namespace}sync_{base}"),
        }
    }
}

/// Wraps a handle a Win32 call returned, or `None` for its failure value (0).
fn owned(handle: HANDLE) -> Option<OwnedHandle> {
    // SAFETY: a non-null handle just returned to us, owned by nobody else;
    // `OwnedHandle` closes it once.
    (!handle.is_null()).then(|| unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) })
}

fn raw(handle: &OwnedHandle) -> HANDLE {
    handle.as_raw_handle() as HANDLE
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn io_error(name: &SegmentName, operation: &'static str, e: io::Error) -> Error {
    match e.raw_os_error().map(|c| c as u32) {
        Some(ERROR_ACCESS_DENIED | ERROR_PRIVILEGE_NOT_HELD) => Error::PermissionDenied {
            name: name.to_string(),
            source: e,
        },
        Some(ERROR_INVALID_HANDLE) => Error::Corrupt {
            name: name.to_string(),
            reason: format!(
                "the name of one of its objects is taken by a kernel object of \
                 another kind ({operation})"
            ),
        },
        _ => Error::Io {
            name: name.to_string(),
            operation,
            source: e,
        },
    }
}

fn not_found(name: &SegmentName) -> Error {
    Error::NotFound {
        name: name.to_string(),
    }
}

/// A pagefile-backed section: created (`existed` false) or opened.
struct Section {
    handle: OwnedHandle,
    existed: bool,
}

/// Creates the section `object` of `size` bytes, or opens it if it exists.
fn create_section(name: &SegmentName, object: &[u16], size: u64) -> Result<Section> {
    // SAFETY: `object` is NUL-terminated UTF-16; a null security descriptor
    // means the default one; INVALID_HANDLE_VALUE asks for the paging file.
    let handle = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            (size >> 32) as u32,
            size as u32,
            object.as_ptr(),
        )
    };
    // SAFETY: no call in between could have changed the thread's last error.
    let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
    let handle =
        owned(handle).ok_or_else(|| io_error(name, "creating a file mapping", last_error()))?;
    Ok(Section { handle, existed })
}

/// Opens the existing section `object`; `Ok(None)` if there is none.
fn open_section(name: &SegmentName, object: &[u16], access: u32) -> Result<Option<OwnedHandle>> {
    // SAFETY: `object` is NUL-terminated UTF-16.
    let handle = unsafe { OpenFileMappingW(access | SECTION_QUERY, 0, object.as_ptr()) };
    match owned(handle) {
        Some(h) => Ok(Some(h)),
        None => {
            let e = last_error();
            if e.raw_os_error() == Some(ERROR_FILE_NOT_FOUND as i32) {
                Ok(None)
            } else {
                Err(io_error(name, "opening a file mapping", e))
            }
        }
    }
}

/// The exact size a section was created with (not rounded to pages).
fn section_size(name: &SegmentName, section: &OwnedHandle) -> Result<u64> {
    let mut info = SectionBasicInformation {
        base_address: std::ptr::null_mut(),
        allocation_attributes: 0,
        maximum_size: 0,
    };
    // SAFETY: class 0 is SectionBasicInformation, whose buffer is `info`, of
    // the size passed; the handle has SECTION_QUERY access.
    let status = unsafe {
        NtQuerySection(
            raw(section),
            0,
            (&raw mut info).cast(),
            size_of::<SectionBasicInformation>(),
            std::ptr::null_mut(),
        )
    };
    if status < 0 {
        return Err(Error::Io {
            name: name.to_string(),
            operation: "reading the size of a file mapping",
            source: io::Error::other(format!("NtQuerySection failed: NTSTATUS {status:#x}")),
        });
    }
    u64::try_from(info.maximum_size).map_err(|_| Error::Corrupt {
        name: name.to_string(),
        reason: format!("its file mapping reports a size of {}", info.maximum_size),
    })
}

/// A mapped view of a whole section.
struct View(NonNull<u8>);

impl View {
    fn map(name: &SegmentName, section: &OwnedHandle, access: u32) -> Result<View> {
        // SAFETY: maps the whole section (length 0) at an address the system
        // picks, so it overlaps nothing.
        let view = unsafe { MapViewOfFile(raw(section), access, 0, 0, 0) };
        NonNull::new(view.Value.cast::<u8>())
            .map(View)
            .ok_or_else(|| io_error(name, "mapping a view of a file mapping", last_error()))
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: the view made in `View::map`, unmapped once; nothing that
        // borrows into it outlives the `Mapping` that owns this view.
        unsafe {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
                Value: self.0.as_ptr().cast(),
            })
        };
    }
}

// ----- the mapping -----------------------------------------------------------

/// An open, validated, mapped segment.
///
/// Fields drop in declaration order, and the order matters: the header
/// (view, then section) goes before the data. When this is the last handle,
/// the header object then disappears while the data object still exists, so
/// a process that creates the data object anew never finds the old header
/// (which could describe another size, or an old generation) beside it.
pub(crate) struct Mapping {
    header: View,
    _header_section: OwnedHandle,
    notify: OwnedHandle,
    data: View,
    _data_section: OwnedHandle,
    mutex: OwnedHandle,
    capacity: usize,
    lock_id: u32,
    mutex_name: String,
}

// SAFETY: the views are shared memory meant to be used from many threads and
// processes; `Mapping` hands them out only as atomics and raw pointers, and
// the safe wrappers in `segment.rs` decide who may touch which bytes. The
// handles may be used from any thread (the mutex's ownership is per thread,
// which `SegmentGuard` respects by not being `Send`).
unsafe impl Send for Mapping {}
// SAFETY: as above; no method takes `&self` and mutates non-atomic state.
unsafe impl Sync for Mapping {}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("mutex", &self.mutex_name)
            .field("capacity", &self.capacity)
            .field("lock_id", &self.lock_id)
            .finish_non_exhaustive()
    }
}

/// Milliseconds for a Win32 wait: rounded up, `INFINITE` for very long.
fn wait_ms(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => INFINITE,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).map_or(INFINITE, |ms| ms.min(INFINITE - 1))
        }
    }
}

impl Mapping {
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the header view maps a section of at least `HEADER_SIZE`
        // bytes (checked before mapping), page-aligned, for as long as
        // `self` lives. `Header` is `repr(C)` and made only of atomics, so
        // shared references to it are sound while other processes change it.
        unsafe { self.header.0.cast::<Header>().as_ref() }
    }

    #[inline]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.data.0.as_ptr()
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn lifetime(&self) -> Lifetime {
        Lifetime::UntilLastClose
    }

    #[inline]
    pub(crate) fn lock_id(&self) -> u32 {
        self.lock_id
    }

    /// Whether lock id `id` belongs to a live holder. Only a holder of the
    /// mutex can be recorded in the lock word, so a recorded owner is alive
    /// exactly when the mutex is held (or unknown: then alive).
    pub(crate) fn is_alive(&self, id: u32) -> bool {
        id == self.lock_id || mutex_is_held(&self.mutex).unwrap_or(true)
    }

    /// Sections cannot be cut short under a view.
    #[inline]
    pub(crate) fn is_cut(&self) -> bool {
        false
    }

    /// There is no `fork` on Windows.
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        false
    }

    /// Windows objects have no owner uid or mode bits.
    pub(crate) fn owner_and_mode(&self) -> Option<(u32, u32)> {
        None
    }

    /// The notify semaphore and the mutex's state, for the algorithms.
    #[inline]
    pub(crate) fn parker(&self) -> OsParker<'_> {
        OsParker(self)
    }

    /// Marks `fields` as locked by a holder that is not shmbox (pid unknown)
    /// when the mutex is held but no shmbox owner is recorded.
    pub(crate) fn note_foreign_holder(&self, fields: &mut HeaderFields) {
        let held = || mutex_is_held(&self.mutex).unwrap_or(false);
        if fields.lock_word & OWNER_MASK == 0 && held() {
            fields.lock_word |= FOREIGN_OWNER;
            fields.lock_owner_pid = 0;
        }
    }
}

impl RawLock for Mapping {
    /// Takes `sync_NAME`, waiting up to `timeout`, then the lock word under
    /// it.
    fn lock(&self, timeout: Duration) -> Result<Option<Acquired>> {
        if mutex_owned_by_this_thread(&self.mutex) {
            // The mutex would let this thread in again; on Linux the second
            // lock waits for the first, so it times out here too.
            std::thread::sleep(timeout);
            return Ok(None);
        }
        // SAFETY: a live mutex handle owned by `self`.
        let abandoned =
            match unsafe { WaitForSingleObject(raw(&self.mutex), wait_ms(Some(timeout))) } {
                WAIT_OBJECT_0 => false,
                WAIT_ABANDONED => true,
                WAIT_TIMEOUT => return Ok(None),
                _ => {
                    return Err(Error::Io {
                        name: self.mutex_name.clone(),
                        operation: "waiting for the segment's mutex",
                        source: last_error(),
                    });
                }
            };
        let h = self.header();
        let stale_shmbox_owner = lock::take_under_os_mutex(&h.lock_word, self.lock_id);
        if abandoned && !stale_shmbox_owner {
            // The owner that died was not a shmbox handle (a program that
            // uses the mutex directly): the recorded pid is not its.
            h.lock_owner_pid.store(0, Ordering::Relaxed);
        }
        Ok(Some(if abandoned || stale_shmbox_owner {
            Acquired::OwnerDied
        } else {
            Acquired::Clean
        }))
    }

    fn try_lock(&self) -> Result<Option<Acquired>> {
        self.lock(Duration::ZERO)
    }

    /// Clears the lock word (reading WATCHERS), then releases `sync_NAME`,
    /// which this thread took in `lock`.
    fn unlock(&self, committed: bool) -> Unlocked {
        let h = self.header();
        let unlocked = lock::unlock(
            &h.lock_word,
            &h.handoff_at_ms,
            self.lock_id,
            committed,
            &self.parker(),
        );
        // Released whatever the word said: this thread owns the mutex, and
        // nobody else could release it.
        // SAFETY: a live mutex handle that this thread holds (guards are not
        // `Send`, so the unlock runs on the locking thread).
        let released = unsafe { ReleaseMutex(raw(&self.mutex)) };
        debug_assert!(released != 0, "ReleaseMutex failed: {}", last_error());
        unlocked
    }
}

/// The notify semaphore and the segment mutex, for the algorithms.
pub(crate) struct OsParker<'a>(&'a Mapping);

impl lock::Parker for OsParker<'_> {
    /// Sleeps on the notify semaphore while `word` (the header's notify word)
    /// holds `expected` (see `sem_futex.rs`).
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        let semaphore = Win32Semaphore(&self.0.notify);
        sem_futex::wait(
            &self.0.header().notify_sleepers,
            word,
            expected,
            timeout,
            &semaphore,
        )
    }

    /// Wakes the sleepers on the notify semaphore: all of them (only
    /// notification sleeps here, and it wakes all).
    fn wake_one(&self, word: &AtomicU32) {
        self.wake_all(word);
    }

    fn wake_all(&self, _word: &AtomicU32) {
        sem_futex::wake_all(
            &self.0.header().notify_sleepers,
            &Win32Semaphore(&self.0.notify),
        );
    }

    fn is_alive(&self, id: u32) -> bool {
        self.0.is_alive(id)
    }

    type Reservation<'r>
        = ()
    where
        Self: 'r;

    /// Unused here: the mutex, not the word, decides who holds the lock,
    /// and a word's stale owner is replaced under it.
    fn reserve_dead(&self, id: u32) -> Option<()> {
        (!self.0.is_alive(id)).then_some(())
    }

    fn shared_clock_ms(&self) -> u32 {
        monotonic_ms()
    }
}

/// The named notify semaphore, for `sem_futex`.
struct Win32Semaphore<'a>(&'a OwnedHandle);

impl Semaphore for Win32Semaphore<'_> {
    fn acquire(&self, timeout: Option<Duration>) -> bool {
        // SAFETY: a live semaphore handle owned by the mapping.
        unsafe { WaitForSingleObject(raw(self.0), wait_ms(timeout)) == WAIT_OBJECT_0 }
    }

    fn release(&self, units: u32) {
        let units = i32::try_from(units).unwrap_or(i32::MAX);
        // SAFETY: a live semaphore handle. It fails only if the count would
        // pass its maximum of 2^31 - 1, which leaves enough for every sleeper.
        unsafe { ReleaseSemaphore(raw(self.0), units, std::ptr::null_mut()) };
    }
}

/// Whether someone holds the mutex, asked without taking it.
fn mutex_is_held(mutex: &OwnedHandle) -> Option<bool> {
    let mut info = MutantBasicInformation {
        current_count: 0,
        owned_by_caller: 0,
        abandoned_state: 0,
    };
    // SAFETY: class 0 is MutantBasicInformation, whose buffer is `info`, of
    // the size passed; the handle has MUTANT_QUERY_STATE access.
    let status = unsafe {
        NtQueryMutant(
            raw(mutex),
            0,
            (&raw mut info).cast(),
            size_of::<MutantBasicInformation>() as u32,
            std::ptr::null_mut(),
        )
    };
    // The count is 1 when free and drops by one per (recursive) acquisition.
    (status >= 0).then_some(info.current_count <= 0)
}

/// Whether the calling thread owns the mutex (asked of the object itself).
fn mutex_owned_by_this_thread(mutex: &OwnedHandle) -> bool {
    let mut info = MutantBasicInformation {
        current_count: 0,
        owned_by_caller: 0,
        abandoned_state: 0,
    };
    // SAFETY: as in `mutex_is_held`.
    let status = unsafe {
        NtQueryMutant(
            raw(mutex),
            0,
            (&raw mut info).cast(),
            size_of::<MutantBasicInformation>() as u32,
            std::ptr::null_mut(),
        )
    };
    status >= 0 && info.owned_by_caller != 0
}

// ----- opening and creating ---------------------------------------------------

fn refuse_persistent(spec: &OpenSpec) -> Result<()> {
    if spec.lifetime == Lifetime::Persistent {
        return Err(Error::Unsupported {
            what: "persistent segments on Windows: a named object lasts only while some \
                   process has it open, so keep a process holding an until-last-close \
                   segment instead",
        });
    }
    Ok(())
}

fn check_capacity(capacity: usize) -> Result<()> {
    if capacity == 0 || capacity as u64 > max_capacity() {
        return Err(Error::InvalidSize {
            size: capacity as u64,
            reason: "it is zero or too large to map",
        });
    }
    Ok(())
}

/// Creates a segment; `AlreadyExists` if its data mapping exists, whoever
/// made it.
pub(crate) fn create(name: &SegmentName, capacity: usize, spec: &OpenSpec) -> Result<Mapping> {
    refuse_persistent(spec)?;
    check_capacity(capacity)?;
    let names = ObjectNames::of(name);
    let data = create_section(name, &names.data, capacity as u64)?;
    if data.existed {
        return Err(Error::AlreadyExists {
            name: name.to_string(),
        });
    }
    join(name, names, data.handle, capacity, spec, true)
}

/// Opens an existing segment: one that shmbox made, or a bare data mapping
/// that another program made (shmbox then adds its header).
pub(crate) fn open(name: &SegmentName, spec: &OpenSpec) -> Result<Mapping> {
    let names = ObjectNames::of(name);
    let data =
        open_section(name, &names.data, FILE_MAP_ALL_ACCESS)?.ok_or_else(|| not_found(name))?;
    let size = section_size(name, &data)?;
    if size == 0 || size > max_capacity() {
        return Err(Error::Corrupt {
            name: name.to_string(),
            reason: format!("its file mapping holds {size} bytes, which cannot be mapped"),
        });
    }
    join(name, names, data, size as usize, spec, false)
}

/// Maps the data and attaches (creating if needed) the header, mutex and
/// semaphore. `size` is the data mapping's size as the system reports it:
/// exact on Windows, rounded up to a page under Wine. The capacity is the
/// header's, if there is one; else `size`, or the caller's expected size if
/// `size` is what rounding it would give. `fresh_data`: this process has just
/// created the data mapping.
fn join(
    name: &SegmentName,
    names: ObjectNames,
    data_section: OwnedHandle,
    size: usize,
    spec: &OpenSpec,
    fresh_data: bool,
) -> Result<Mapping> {
    let data = View::map(name, &data_section, FILE_MAP_ALL_ACCESS)?;
    let header_section = create_section(name, &names.header, HEADER_SIZE as u64)?;
    if header_section.existed && section_size(name, &header_section.handle)? < HEADER_SIZE as u64 {
        return Err(Error::Corrupt {
            name: name.to_string(),
            reason: format!("its header object is smaller than {HEADER_SIZE} bytes"),
        });
    }
    let header = View::map(name, &header_section.handle, FILE_MAP_ALL_ACCESS)?;
    // SAFETY: as in `Mapping::header`: at least HEADER_SIZE bytes, aligned.
    let h = unsafe { header.0.cast::<Header>().as_ref() };
    let capacity = if header_section.existed && !fresh_data {
        wait_until_ready(name, h, size, spec.init_timeout)?;
        h.capacity.load(Ordering::Relaxed) as usize
    } else {
        if header_section.existed {
            // The data is new, so no handle of the old segment is left: this
            // header outlived it (its last handle was closing, or a program
            // still holds the header object). It describes the old data, so
            // start it again; openers that see it meanwhile wait for READY.
            h.init_state.store(0, Ordering::Release);
            for word in [
                &h.lock_word,
                &h.lock_owner_pid,
                &h.owner_deaths,
                &h.handoff_at_ms,
            ] {
                word.store(0, Ordering::Relaxed);
            }
            h.last_writer_pid.store(0, Ordering::Relaxed);
            h.notify_sleepers.store(0, Ordering::Relaxed);
            h.seq.store(0, Ordering::Relaxed);
            h.last_write_unix_s.store(0, Ordering::Relaxed);
        }
        let capacity = match spec.expected_size {
            Some(expected) if (expected as u64).next_multiple_of(PAGE) == size as u64 => expected,
            _ => size,
        };
        h.initialise(
            capacity as u64,
            Lifetime::UntilLastClose,
            FLAG_DETACHED_DATA,
            current_pid(),
            now_unix_ns(),
        );
        capacity
    };
    // SAFETY: NUL-terminated names; default security; the semaphore starts
    // empty with the largest maximum; the mutex is not taken on creation,
    // exactly as the FoxPro sample's CreateMutex(0, 0, "sync_" + name).
    let notify =
        owned(unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, names.notify.as_ptr()) })
            .ok_or_else(|| io_error(name, "creating the notify semaphore", last_error()))?;
    // SAFETY: as above.
    let mutex = owned(unsafe { CreateMutexW(std::ptr::null(), 0, names.mutex.as_ptr()) })
        .ok_or_else(|| io_error(name, "creating the mutex sync_NAME", last_error()))?;
    Ok(Mapping {
        header,
        _header_section: header_section.handle,
        notify,
        data,
        _data_section: data_section,
        mutex,
        capacity,
        lock_id: new_lock_id(),
        mutex_name: names.mutex_name,
    })
}

/// Waits for another process to finish initialising the header, then checks
/// it against the data mapping's size.
fn wait_until_ready(
    name: &SegmentName,
    h: &Header,
    size: usize,
    init_timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let fields = h.fields();
        match fields.validate_detached(size as u64, PAGE) {
            Ok(()) => return Ok(()),
            Err(HeaderProblem::NotReady) if started.elapsed() < init_timeout => {
                std::thread::sleep(INIT_POLL);
            }
            // A header that outlived its data, about to be started again by
            // the process that made the data anew (see `join`).
            Err(HeaderProblem::Corrupt(_))
                if fields.capacity != size as u64 && started.elapsed() < init_timeout =>
            {
                std::thread::sleep(INIT_POLL);
            }
            Err(HeaderProblem::NotReady) => {
                return Err(Error::NotInitialized {
                    name: name.to_string(),
                    waited: started.elapsed(),
                });
            }
            Err(p) => return Err(problem_to_error(name.as_str(), p)),
        }
    }
}

/// A lock id for a new handle. Under the mutex only one handle can record
/// itself as owner, so ids need only differ between handles that are open at
/// once; 29 random bits make a clash between two of them negligible, and a
/// clash could only blur `info`, never the lock.
fn new_lock_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::hash::RandomState::new().build_hasher();
    // Each RandomState of a process has other keys, so each handle a new id.
    h.write_u32(current_pid());
    let id = h.finish() as u32 & OWNER_MASK;
    if id == 0 || id == FOREIGN_OWNER {
        1
    } else {
        id
    }
}

/// There is no name to remove: a Windows object goes with its last handle.
pub(crate) fn remove(name: &SegmentName) -> Result<()> {
    let names = ObjectNames::of(name);
    if open_section(name, &names.data, FILE_MAP_READ)?.is_none() {
        return Err(not_found(name));
    }
    Err(Error::Unsupported {
        what: "removing a segment by name on Windows: it goes when the last process \
               that has it open closes it",
    })
}

/// Reads a segment's header (or, for a bare data mapping that another program
/// made, what can be known of it) without joining it.
pub(crate) fn inspect(name: &SegmentName) -> Result<Inspected> {
    let names = ObjectNames::of(name);
    let data = open_section(name, &names.data, FILE_MAP_READ)?.ok_or_else(|| not_found(name))?;
    let capacity = section_size(name, &data)?;
    let mut fields = match open_section(name, &names.header, FILE_MAP_READ)? {
        Some(header_section) => {
            if section_size(name, &header_section)? < HEADER_SIZE as u64 {
                return Err(Error::Corrupt {
                    name: name.to_string(),
                    reason: format!("its header object is smaller than {HEADER_SIZE} bytes"),
                });
            }
            let view = View::map(name, &header_section, FILE_MAP_READ)?;
            // SAFETY: as in `Mapping::header`; this view is read-only and
            // `Header` is only ever loaded from here.
            let fields = unsafe { view.0.cast::<Header>().as_ref() }.fields();
            fields
                .validate_detached(capacity, PAGE)
                .map_err(|p| problem_to_error(name.as_str(), p))?;
            fields
        }
        // No shmbox process has it open: all there is, is the data.
        None => HeaderFields {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            header_size: HEADER_SIZE as u32,
            capacity,
            lifetime: LIFETIME_UNTIL_LAST_CLOSE,
            flags: FLAG_DETACHED_DATA,
            init_state: INIT_READY,
            creator_pid: 0,
            created_unix_ns: 0,
            lock_word: 0,
            lock_owner_pid: 0,
            owner_deaths: 0,
            seq: 0,
            last_writer_pid: 0,
            last_write_unix_s: 0,
        },
    };
    // SAFETY: a NUL-terminated name; the handle is only queried.
    let mutex =
        owned(unsafe { OpenMutexW(SYNCHRONIZE | MUTANT_QUERY_STATE, 0, names.mutex.as_ptr()) });
    let held = mutex.as_ref().and_then(mutex_is_held).unwrap_or(false);
    if held && fields.lock_word & OWNER_MASK == 0 {
        // A program that is not shmbox holds it, and recorded nothing.
        fields.lock_word |= FOREIGN_OWNER;
        fields.lock_owner_pid = 0;
    }
    // A shmbox owner is alive exactly when the mutex is held (`is_alive`).
    Ok(Inspected {
        fields,
        owner_and_mode: None,
        lock_owner_alive: held,
    })
}

/// `inspect`: the kernel frees dead segments itself, there is no sweep.
pub(crate) fn info(name: &SegmentName) -> Result<Inspected> {
    inspect(name)
}

/// Nothing to do: a segment goes with the last handle to it, which the
/// kernel closes when a process dies.
pub(crate) fn reclaim() -> Result<Vec<SegmentName>> {
    Ok(Vec::new())
}

/// Sections cannot be cut short under a view: nothing to install.
pub(crate) fn install_sigbus_handler() -> io::Result<()> {
    Ok(())
}

/// The segments of this session and the global namespace that some shmbox
/// process has open (their header objects name them), sorted by name. A
/// block that only programs without shmbox hold has no header object and is
/// not listed; `inspect` still describes it by name.
pub(crate) fn list() -> Result<Vec<(SegmentName, Inspected)>> {
    let mut session = 0;
    // SAFETY: a valid out-pointer; on failure `session` stays 0.
    unsafe { ProcessIdToSessionId(current_pid(), &mut session) };
    let mut directories = vec![(String::from("\\BaseNamedObjects"), "Global\\")];
    if session != 0 {
        directories.insert(0, (format!("\\Sessions\\{session}\\BaseNamedObjects"), ""));
    } else {
        // Session 0's own namespace is the global one.
        directories[0].1 = "";
    }
    let mut found = Vec::new();
    for (i, (directory, namespace)) in directories.iter().enumerate() {
        let entries = match directory_entries(directory) {
            Ok(entries) => entries,
            // The session's own directory must be readable; the global one
            // may be closed to this user.
            Err(e) if i == 0 => {
                return Err(Error::Io {
                    name: String::new(),
                    operation: "listing the session's named objects",
                    source: e,
                });
            }
            Err(_) => continue,
        };
        for (object, kind) in entries {
            let Some(base) = object.strip_prefix("shmbox/") else {
                continue;
            };
            if kind != "Section" || base.contains('/') {
                continue;
            }
            let Ok(name) = SegmentName::new(format!("{namespace}{base}")) else {
                continue;
            };
            if let Ok(inspected) = inspect(&name) {
                found.push((name, inspected));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// The names and type names of the objects in an object directory.
fn directory_entries(path: &str) -> io::Result<Vec<(String, String)>> {
    let wide: Vec<u16> = path.encode_utf16().collect();
    let byte_len = u16::try_from(wide.len() * 2).map_err(io::Error::other)?;
    let path_string = UNICODE_STRING {
        Length: byte_len,
        MaximumLength: byte_len,
        Buffer: wide.as_ptr().cast_mut(),
    };
    let attributes = ObjectAttributes {
        length: size_of::<ObjectAttributes>() as u32,
        root_directory: std::ptr::null_mut(),
        object_name: &path_string,
        attributes: 0,
        security_descriptor: std::ptr::null(),
        security_quality_of_service: std::ptr::null(),
    };
    let mut handle: HANDLE = std::ptr::null_mut();
    // SAFETY: valid out-pointer and attributes, whose name outlives the call.
    let status = unsafe { NtOpenDirectoryObject(&mut handle, DIRECTORY_QUERY, &attributes) };
    if status < 0 {
        return Err(io::Error::other(format!(
            "NtOpenDirectoryObject({path}) failed: NTSTATUS {status:#x}"
        )));
    }
    let directory = owned(handle).ok_or_else(|| io::Error::other("no directory handle"))?;
    let mut entries = Vec::new();
    // u64 elements: the entry holds pointers, so the buffer is aligned.
    let mut buffer = vec![0u64; 1024];
    let mut context = 0u32;
    let mut restart = 1u8;
    // One entry per call: Wine implements only that form. Bounded, in case
    // a directory never says it is done.
    for _ in 0..1_000_000 {
        // SAFETY: the buffer is writable for the length passed, and the
        // context pointer is valid.
        let status = unsafe {
            NtQueryDirectoryObject(
                raw(&directory),
                buffer.as_mut_ptr().cast(),
                (buffer.len() * 8) as u32,
                1,
                restart,
                &mut context,
                std::ptr::null_mut(),
            )
        };
        restart = 0;
        if status < 0 {
            // STATUS_NO_MORE_ENTRIES at the end; an entry too large for the
            // buffer (a name of over 4000 characters) is no segment of ours.
            break;
        }
        // SAFETY: the call wrote one entry at the start of the buffer, whose
        // strings point into the buffer; lengths are in bytes.
        let entry = unsafe { &*buffer.as_ptr().cast::<ObjectDirectoryInformation>() };
        let text = |s: &UNICODE_STRING| {
            if s.Buffer.is_null() {
                return String::new();
            }
            // SAFETY: as above.
            String::from_utf16_lossy(unsafe {
                std::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2)
            })
        };
        entries.push((text(&entry.name), text(&entry.type_name)));
    }
    Ok(entries)
}

// ----- clocks and process facts ---------------------------------------------

pub(crate) fn monotonic_ms() -> u32 {
    // SAFETY: no preconditions.
    unsafe { GetTickCount64() as u32 }
}

pub(crate) fn current_pid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { GetCurrentProcessId() }
}

pub(crate) fn now_unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) fn now_unix_s() -> u64 {
    now_unix_ns() / 1_000_000_000
}
