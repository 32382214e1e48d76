//! Segments: opening, data access, the lock guard, lifetime and inspection.
//!
//! # Safety
//!
//! The data region is raw shared memory. This module turns it into slices
//! for the lock guard, and passes checked ranges of it to `shared_bytes`.
//! The guard's slices are sound because the lock keeps every writer that
//! follows the protocol out while they live.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::WaitFor;
use crate::header::{
    Header, HeaderFields, LIFETIME_PERSISTENT, LIFETIME_UNTIL_LAST_CLOSE, max_capacity,
};
use crate::lock::{self, Acquired, OWNER_MASK, Parker, Unlocked};
use crate::shared_bytes::{copy_from_shared, copy_to_shared};
use crate::sync::{AtomicU32, Ordering};
use crate::sys::{self, Mapping, OpenSpec};
use crate::{Error, Result, SegmentName, notify, seqlock};

/// How long `read`, `write` and `lock` wait for the lock by default: five
/// seconds, as in the original FoxPro sample.
///
/// ```
/// assert_eq!(shmbox::DEFAULT_TIMEOUT, std::time::Duration::from_secs(5));
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening waits for a segment's creator to finish initialising it.
///
/// ```
/// assert_eq!(shmbox::DEFAULT_INIT_TIMEOUT, std::time::Duration::from_secs(1));
/// ```
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(1);

/// When a segment ceases to exist. Chosen at creation, stored in the header.
///
/// ```
/// use shmbox::{Lifetime, SegmentOptions};
///
/// let name = format!("doc-lifetime-{}", std::process::id());
/// let seg = SegmentOptions::new().lifetime(Lifetime::Persistent).create(&name, 64)?;
/// drop(seg);
/// assert!(shmbox::info(&name).is_ok()); // still there
/// shmbox::remove(&name)?;
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lifetime {
    /// The segment disappears when the last process that has it open closes
    /// it or dies, as a Win32 file mapping does. Crash-safe: the kernel, not a
    /// counter in the segment, tracks who holds it. The default.
    ///
    /// For the case where every holder dies, creating such a segment starts
    /// a small reaper process (named `shmbox-reaper`), forked from the
    /// creator. It keeps none of the creator's memory or descriptors, and
    /// exits as soon as the segment is gone.
    #[default]
    UntilLastClose,
    /// The segment stays until [`remove`] removes it (or the machine restarts).
    Persistent,
}

impl Lifetime {
    pub(crate) fn code(self) -> u32 {
        match self {
            Lifetime::UntilLastClose => LIFETIME_UNTIL_LAST_CLOSE,
            Lifetime::Persistent => LIFETIME_PERSISTENT,
        }
    }

    pub(crate) fn from_code(code: u32) -> Option<Lifetime> {
        match code {
            LIFETIME_UNTIL_LAST_CLOSE => Some(Lifetime::UntilLastClose),
            LIFETIME_PERSISTENT => Some(Lifetime::Persistent),
            _ => None,
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lifetime::UntilLastClose => "until-last-close",
            Lifetime::Persistent => "persistent",
        })
    }
}

/// Options for opening or creating a segment.
///
/// The defaults: [`Lifetime::UntilLastClose`], mode `0o600`, a lock timeout
/// of [`DEFAULT_TIMEOUT`], and segments of other users refused.
///
/// ```
/// use std::time::Duration;
/// use shmbox::{Lifetime, SegmentOptions};
///
/// let name = format!("doc-options-{}", std::process::id());
/// let seg = SegmentOptions::new()
///     .lifetime(Lifetime::UntilLastClose)
///     .mode(0o600)
///     .timeout(Duration::from_millis(500))
///     .open_or_create(&name, 1024)?;
/// assert_eq!(seg.size(), 1024);
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    lifetime: Lifetime,
    mode: u32,
    timeout: Duration,
    init_timeout: Duration,
    allow_other_owner: bool,
    allow_writable_by_others: bool,
    spin: Duration,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            lifetime: Lifetime::UntilLastClose,
            mode: 0o600,
            timeout: DEFAULT_TIMEOUT,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            allow_other_owner: false,
            allow_writable_by_others: false,
            spin: Duration::ZERO,
        }
    }
}

impl SegmentOptions {
    /// The default options.
    ///
    /// ```
    /// let options = shmbox::SegmentOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> SegmentOptions {
        SegmentOptions::default()
    }

    /// The lifetime of a segment this creates. Opening an existing segment
    /// keeps the lifetime it was created with. On Windows, creating a
    /// [`Persistent`](Lifetime::Persistent) segment is
    /// [`Error::Unsupported`]: a named object lasts only while a process has
    /// it open.
    ///
    /// ```
    /// let options = shmbox::SegmentOptions::new().lifetime(shmbox::Lifetime::Persistent);
    /// # let _ = options;
    /// ```
    pub fn lifetime(mut self, lifetime: Lifetime) -> SegmentOptions {
        self.lifetime = lifetime;
        self
    }

    /// The permission bits of a segment this creates (default `0o600`: the
    /// owner only). Only the bits `0o777` may be set, and the owner must keep
    /// read and write access. Windows has no mode bits: its objects get the
    /// creator's default security (the user, SYSTEM and Administrators), and
    /// this setting is checked but has no effect there.
    ///
    /// ```
    /// let options = shmbox::SegmentOptions::new().mode(0o640);
    /// # let _ = options;
    /// ```
    pub fn mode(mut self, mode: u32) -> SegmentOptions {
        self.mode = mode;
        self
    }

    /// How long [`Segment::read`], [`Segment::write`], [`Segment::lock`] and
    /// [`Segment::read_consistent`] wait before they fail with
    /// [`Error::Timeout`]. Default: [`DEFAULT_TIMEOUT`].
    ///
    /// ```
    /// let options = shmbox::SegmentOptions::new().timeout(std::time::Duration::from_secs(1));
    /// # let _ = options;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> SegmentOptions {
        self.timeout = timeout;
        self
    }

    /// How long opening waits for a segment that another process is still
    /// initialising, before it fails with [`Error::NotInitialized`]. Default:
    /// [`DEFAULT_INIT_TIMEOUT`].
    ///
    /// ```
    /// let options = shmbox::SegmentOptions::new().init_timeout(std::time::Duration::from_millis(100));
    /// # let _ = options;
    /// ```
    pub fn init_timeout(mut self, timeout: Duration) -> SegmentOptions {
        self.init_timeout = timeout;
        self
    }

    /// Whether to open a segment owned by another user. By default such a
    /// segment is refused with [`Error::ForeignOwner`]: another user could
    /// have created it first to read or feed what this process exchanges.
    ///
    /// ```
    /// let options = shmbox::SegmentOptions::new().allow_other_owner(true);
    /// # let _ = options;
    /// ```
    pub fn allow_other_owner(mut self, allow: bool) -> SegmentOptions {
        self.allow_other_owner = allow;
        self
    }

    /// Whether to open a segment whose mode lets every user write it (the
    /// `o+w` bit, as in mode `0666`). By default such a segment is refused
    /// with [`Error::WritableByOthers`]: any process of any user could have
    /// changed its header or data, or could hold its lock for ever. Give
    /// access to chosen users through a group instead (mode `0660`).
    ///
    /// ```
    /// let options = shmbox::SegmentOptions::new().allow_writable_by_others(true);
    /// # let _ = options;
    /// ```
    pub fn allow_writable_by_others(mut self, allow: bool) -> SegmentOptions {
        self.allow_writable_by_others = allow;
        self
    }

    /// How long [`Segment::wait_for_change`] spins, watching the segment,
    /// before it sleeps in the kernel (default: zero, it sleeps at once).
    ///
    /// Waking a sleeping process costs tens of microseconds on most
    /// machines; a waiter that spins sees a commit from another CPU within
    /// a fraction of a microsecond, but burns its CPU meanwhile. Spinning
    /// is bounded by this duration, then the wait sleeps as usual.
    ///
    /// Spin only when the writer has a CPU of its own. When both share one,
    /// the writer cannot run while the waiter spins: after 2 µs the spinner
    /// yields its CPU at every turn, but a wake-up still costs about three
    /// times as much as a plain sleep (docs/BENCHMARKS.md, one-CPU table).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = shmbox::SegmentOptions::new().spin_before_sleep(Duration::from_micros(50));
    /// # let _ = options;
    /// ```
    pub fn spin_before_sleep(mut self, spin: Duration) -> SegmentOptions {
        self.spin = spin;
        self
    }

    fn spec(&self) -> Result<OpenSpec> {
        if self.mode & !0o777 != 0 || self.mode & 0o600 != 0o600 {
            return Err(Error::InvalidMode { mode: self.mode });
        }
        Ok(OpenSpec {
            lifetime: self.lifetime,
            mode: self.mode,
            allow_other_owner: self.allow_other_owner,
            allow_writable_by_others: self.allow_writable_by_others,
            init_timeout: self.init_timeout,
            expected_size: None,
        })
    }

    fn segment(&self, name: SegmentName, mapping: Mapping) -> Segment {
        Segment {
            mapping,
            name,
            timeout: self.timeout,
            spin: self.spin,
            pid: sys::current_pid(),
        }
    }

    /// Creates a segment of `size` bytes; fails with [`Error::AlreadyExists`]
    /// if the name is taken. Its bytes start as zeroes.
    ///
    /// ```
    /// let name = format!("doc-create-{}", std::process::id());
    /// let seg = shmbox::SegmentOptions::new().create(&name, 4096)?;
    /// assert!(matches!(
    ///     shmbox::SegmentOptions::new().create(&name, 4096),
    ///     Err(shmbox::Error::AlreadyExists { .. })
    /// ));
    /// # drop(seg);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn create(&self, name: impl AsRef<str>, size: usize) -> Result<Segment> {
        let name = SegmentName::new(name.as_ref())?;
        check_size(size)?;
        let mapping = sys::create(&name, size, &self.spec()?)?;
        Ok(self.segment(name, mapping))
    }

    /// Opens an existing segment, whatever its size; fails with
    /// [`Error::NotFound`] if there is none.
    ///
    /// ```
    /// let name = format!("doc-open-{}", std::process::id());
    /// let first = shmbox::Segment::create(&name, 100)?;
    /// let second = shmbox::SegmentOptions::new().open(&name)?;
    /// assert_eq!(second.size(), 100);
    /// # drop(first);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn open(&self, name: impl AsRef<str>) -> Result<Segment> {
        let name = SegmentName::new(name.as_ref())?;
        let mapping = sys::open(&name, &self.spec()?)?;
        Ok(self.segment(name, mapping))
    }

    /// Opens the segment, or creates it with `size` bytes if there is none:
    /// what the FoxPro sample's `CreateFileMapping` does. An existing segment
    /// of another size is an [`Error::SizeMismatch`].
    ///
    /// ```
    /// let name = format!("doc-ooc-{}", std::process::id());
    /// let a = shmbox::SegmentOptions::new().open_or_create(&name, 256)?; // creates
    /// let b = shmbox::SegmentOptions::new().open_or_create(&name, 256)?; // opens
    /// assert!(matches!(
    ///     shmbox::SegmentOptions::new().open_or_create(&name, 512),
    ///     Err(shmbox::Error::SizeMismatch { existing: 256, requested: 512, .. })
    /// ));
    /// # drop((a, b));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn open_or_create(&self, name: impl AsRef<str>, size: usize) -> Result<Segment> {
        let name = SegmentName::new(name.as_ref())?;
        check_size(size)?;
        let spec = OpenSpec {
            expected_size: Some(size),
            ..self.spec()?
        };
        // Another process may create or remove the name between our attempts;
        // each round makes progress unless it keeps doing so.
        for _ in 0..100 {
            match sys::open(&name, &spec) {
                Ok(mapping) if mapping.capacity() == size => return Ok(self.segment(name, mapping)),
                Ok(mapping) => {
                    return Err(Error::SizeMismatch {
                        name: name.to_string(),
                        existing: mapping.capacity(),
                        requested: size,
                    });
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            match sys::create(&name, size, &spec) {
                Ok(mapping) => return Ok(self.segment(name, mapping)),
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Busy {
            name: name.to_string(),
            reason: "it kept appearing and disappearing while this process opened it",
        })
    }
}

fn check_size(size: usize) -> Result<()> {
    if size == 0 {
        return Err(Error::InvalidSize {
            size: 0,
            reason: "a segment holds at least one byte",
        });
    }
    if size as u64 > max_capacity() {
        return Err(Error::InvalidSize {
            size: size as u64,
            reason: "it is larger than this machine can map",
        });
    }
    Ok(())
}

/// A named block of shared memory, open in this process.
///
/// Every process that opens the same name sees the same bytes. The segment
/// carries its own lock, a generation counter of committed writes, and a
/// change notification, all of which work across processes and survive a
/// process that dies at any moment.
///
/// - [`write`](Segment::write) and [`read`](Segment::read) copy bytes under
///   the lock, with the FoxPro sample's semantics: clamped to the size.
/// - [`read_consistent`](Segment::read_consistent) copies without the lock and
///   never returns a torn copy.
/// - [`lock`](Segment::lock) gives a [`SegmentGuard`] for several steps at once.
/// - [`wait_for_change`](Segment::wait_for_change) sleeps until a writer commits.
///
/// A `Segment` is `Send` and `Sync`; share it between threads with `&` or
/// `Arc`. A child created by `fork` does not inherit its memory (open the
/// segment again there); a child that keeps running without `exec` does
/// inherit its descriptor, and with it keeps this handle counted as alive.
///
/// If another process of the same user cuts the segment's file short while
/// it is open here (with `ftruncate`, say), touching the missing part would
/// normally kill this process with SIGBUS. shmbox catches that signal for its
/// own mappings: the handle survives, and every fallible operation on it
/// fails with [`Error::Truncated`] from then on. (It installs a SIGBUS handler
/// once per process, when the first segment is mapped; faults elsewhere go
/// to the handler that was there before. A handler that the application
/// installs later takes precedence, and this protection is then its job.)
///
/// ```
/// use shmbox::Segment;
///
/// let name = format!("doc-segment-{}", std::process::id());
/// let seg = Segment::open_or_create(&name, 1024)?;
/// assert_eq!(seg.write(0, b"hello")?, 5);
/// assert_eq!(seg.read(0, 5)?, b"hello");
/// # Ok::<(), shmbox::Error>(())
/// ```
///
/// # Memory safety and other processes
///
/// Other processes of the same user can map the same bytes. This crate reads
/// and writes them with atomic operations, except through the slices of a
/// [`SegmentGuard`], which are sound as long as every process that writes
/// takes the lock (as every shmbox process does). A process that ignores the
/// protocol can make the data wrong, but not make this process misbehave
/// beyond seeing wrong bytes; the header is validated before use.
pub struct Segment {
    mapping: Mapping,
    name: SegmentName,
    timeout: Duration,
    spin: Duration,
    pid: u32,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("size", &self.size())
            .field("lifetime", &self.lifetime())
            .field("generation", &self.generation())
            .finish()
    }
}

/// The OS wait/wake calls for one segment.
struct Os<'a>(&'a Mapping);

impl Parker for Os<'_> {
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        self.0.wait(word, expected, timeout)
    }
    fn wake_one(&self, word: &AtomicU32) {
        self.0.wake(word, 1);
    }
    fn wake_all(&self, word: &AtomicU32) {
        // The kernel reads the count as a signed int: u32::MAX would be -1,
        // which wakes only one.
        self.0.wake(word, i32::MAX as u32);
    }
    fn is_alive(&self, id: u32) -> bool {
        self.0.is_alive(id)
    }
    fn shared_clock_ms(&self) -> u32 {
        sys::monotonic_ms()
    }
    fn lost(&self) -> bool {
        self.0.is_cut()
    }
}

impl Segment {
    /// Creates a segment of `size` bytes with the default options; fails with
    /// [`Error::AlreadyExists`] if the name is taken.
    ///
    /// ```
    /// let name = format!("doc-seg-create-{}", std::process::id());
    /// let seg = shmbox::Segment::create(&name, 64)?;
    /// assert_eq!(seg.read(0, 64)?, vec![0; 64]);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn create(name: impl AsRef<str>, size: usize) -> Result<Segment> {
        SegmentOptions::new().create(name, size)
    }

    /// Opens an existing segment with the default options; its size is
    /// whatever it was created with.
    ///
    /// ```
    /// let name = format!("doc-seg-open-{}", std::process::id());
    /// let a = shmbox::Segment::create(&name, 64)?;
    /// let b = shmbox::Segment::open(&name)?;
    /// assert_eq!(b.size(), 64);
    /// # drop(a);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn open(name: impl AsRef<str>) -> Result<Segment> {
        SegmentOptions::new().open(name)
    }

    /// Opens the segment, or creates it with `size` bytes: the sample's
    /// behaviour. An existing segment of another size is an
    /// [`Error::SizeMismatch`].
    ///
    /// ```
    /// let name = format!("doc-seg-ooc-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 1024)?;
    /// assert_eq!(seg.size(), 1024);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn open_or_create(name: impl AsRef<str>, size: usize) -> Result<Segment> {
        SegmentOptions::new().open_or_create(name, size)
    }

    /// The segment's name.
    ///
    /// ```
    /// # let name = format!("doc-name-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.name().as_str(), name);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// The size of the data region: exactly the size it was created with.
    ///
    /// ```
    /// # let name = format!("doc-size-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 1000)?;
    /// assert_eq!(seg.size(), 1000); // not rounded to a page
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn size(&self) -> usize {
        self.mapping.capacity()
    }

    /// The lifetime chosen when the segment was created.
    ///
    /// ```
    /// # let name = format!("doc-seg-lifetime-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.lifetime(), shmbox::Lifetime::UntilLastClose);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn lifetime(&self) -> Lifetime {
        self.mapping.lifetime()
    }

    /// How long `read`, `write`, `lock` and `read_consistent` wait.
    ///
    /// ```
    /// # let name = format!("doc-timeout-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.timeout(), shmbox::DEFAULT_TIMEOUT);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many writes have been committed to the segment since it was
    /// created, by any process.
    ///
    /// If another process cut the segment's file short, this may say 0;
    /// the fallible operations report [`Error::Truncated`] then.
    ///
    /// ```
    /// # let name = format!("doc-generation-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let before = seg.generation();
    /// seg.write(0, b"x")?;
    /// assert_eq!(seg.generation(), before + 1);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.header().seq.load(Ordering::Acquire) >> 1
    }

    #[inline]
    fn header(&self) -> &Header {
        self.mapping.header()
    }

    /// Commits the write begun at `odd` (its time is `now`, or read here if
    /// 0) and releases the lock, waking watchers if there are any. Returns
    /// the new generation.
    #[inline]
    fn commit_and_unlock(&self, odd: u64, now: u64) -> u64 {
        let h = self.header();
        store_if_changed(&h.last_writer_pid, self.pid);
        let now = if now == 0 { sys::now_unix_s() } else { now };
        store_if_changed(&h.last_write_unix_s, now);
        let generation = seqlock::end_write(&h.seq, odd);
        self.unlock(true);
        generation
    }

    /// Releases the lock this handle holds.
    #[inline]
    fn unlock(&self, committed: bool) {
        let h = self.header();
        let parker = self.parker();
        match lock::unlock(
            &h.lock_word,
            &h.handoff_at_ms,
            self.mapping.lock_id(),
            committed,
            &parker,
        ) {
            Unlocked::Released => {}
            Unlocked::ReleasedWakeWatchers => notify::wake_watchers(&h.notify_word, &parker),
            Unlocked::NotOwner => {
                debug_assert!(false, "the lock was taken over while this handle held it")
            }
        }
        if sys::OS_MUTEX {
            self.mapping.unlock_os_mutex();
        }
    }

    /// Book-keeping after the lock was taken over from a dead holder.
    #[cold]
    fn took_over(&self, torn: bool) -> OwnerDied {
        let h = self.header();
        h.owner_deaths.fetch_add(1, Ordering::Relaxed);
        // It may have committed and died before waking the watchers.
        notify::wake_watchers(&h.notify_word, &self.parker());
        OwnerDied {
            pid: Some(h.lock_owner_pid.load(Ordering::Relaxed)).filter(|&p| p != 0),
            mid_write: torn,
        }
    }

    #[inline]
    fn parker(&self) -> Os<'_> {
        Os(&self.mapping)
    }

    /// The number of bytes from `offset` that fit, up to `len`.
    #[inline]
    fn clamp(&self, offset: usize, len: usize) -> Result<usize> {
        let size = self.size();
        if offset > size {
            return Err(Error::OutOfRange { offset, size });
        }
        Ok(len.min(size - offset))
    }

    /// `Ok` unless the segment's file was cut short under this handle's
    /// mapping, which makes every operation's outcome meaningless.
    #[inline]
    fn intact(&self) -> Result<()> {
        if self.mapping.is_cut() {
            return Err(self.truncated());
        }
        Ok(())
    }

    #[cold]
    fn truncated(&self) -> Error {
        Error::Truncated {
            name: self.name.to_string(),
        }
    }

    fn timeout_error(&self, waiting_for: WaitFor, timeout: Duration) -> Error {
        Error::Timeout {
            name: self.name.to_string(),
            waiting_for,
            timeout,
        }
    }

    /// Writes `data` at `offset` under the lock, and returns how many bytes
    /// were written: `min(data.len(), size - offset)`, as in the sample.
    ///
    /// The write commits a new generation and wakes processes waiting in
    /// [`wait_for_change`](Segment::wait_for_change). If the previous lock
    /// holder died, the write goes ahead, and its commit makes the data
    /// consistent again; use [`lock`](Segment::lock) to learn of such deaths.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `offset > size()`; [`Error::Timeout`] if the
    /// lock stays held by a live process for [`timeout`](Segment::timeout).
    ///
    /// ```
    /// # let name = format!("doc-write-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.write(6, b"hello")?, 2); // only "he" fits
    /// assert_eq!(seg.read(6, 2)?, b"he");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<usize> {
        let n = self.clamp(offset, data.len())?;
        if n == 0 {
            return Ok(0);
        }
        // The clock is read before the lock is taken: its cost then overlaps
        // with the lock's atomic instruction instead of adding to it.
        let now = sys::now_unix_s();
        match self.acquire(self.timeout)? {
            // The common case, open-coded: no guard to build and drop.
            Acquired::Clean => {
                let h = self.header();
                store_if_changed(&h.lock_owner_pid, self.pid);
                let odd = seqlock::begin_write(&h.seq, h.seq.load(Ordering::Relaxed));
                // SAFETY: `clamp` keeps `offset + n` within the data region,
                // and the lock keeps other writers out.
                unsafe { copy_to_shared(self.mapping.data_ptr().add(offset), &data[..n]) };
                self.commit_and_unlock(odd, now);
            }
            acquired => {
                let mut guard = SegmentGuard::new(self, acquired);
                guard.write_time = now;
                guard.copy_in(offset, &data[..n]);
            }
        }
        self.intact()?;
        Ok(n)
    }

    /// Reads up to `len` bytes from `offset` under the lock; fewer if the
    /// segment ends first.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `offset > size()`; [`Error::Timeout`] as for
    /// [`write`](Segment::write); [`Error::Inconsistent`] if a writer died in
    /// the middle of a write and nobody has repaired the data since.
    ///
    /// ```
    /// # let name = format!("doc-read-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// seg.write(0, b"abcd")?;
    /// assert_eq!(seg.read(2, 100)?, b"cd");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn read(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        let n = self.clamp(offset, len)?;
        let mut buf = vec![0; n];
        self.read_into(offset, &mut buf)?;
        Ok(buf)
    }

    /// Reads into `buf` from `offset` under the lock, and returns how many
    /// bytes were read: `min(buf.len(), size - offset)`.
    ///
    /// # Errors
    ///
    /// As for [`read`](Segment::read).
    ///
    /// ```
    /// # let name = format!("doc-read-into-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// seg.write(0, b"abcd")?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(seg.read_into(1, &mut buf)?, 3);
    /// assert_eq!(&buf[..3], b"bcd");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        let n = self.clamp(offset, buf.len())?;
        if n == 0 {
            return Ok(0);
        }
        let guard = self.lock()?;
        if !guard.is_consistent() {
            return Err(self.inconsistent());
        }
        guard.copy_out(offset, &mut buf[..n]);
        drop(guard);
        self.intact()?;
        Ok(n)
    }

    fn inconsistent(&self) -> Error {
        Error::Inconsistent {
            name: self.name.to_string(),
            generation: self.generation(),
        }
    }

    /// Reads up to `len` bytes from `offset` without taking the lock, and
    /// returns them with the generation they belong to.
    ///
    /// The copy never mixes two writes: it is retried until no write
    /// overlapped it. It never delays writers. It waits (up to
    /// [`timeout`](Segment::timeout)) only while a write is in progress,
    /// which includes a write this thread began through a [`SegmentGuard`]
    /// it still holds: read through the guard instead.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `offset > size()`; [`Error::Inconsistent`] if
    /// a writer died in the middle of a write; [`Error::Timeout`] if writers
    /// kept the data changing for the whole timeout.
    ///
    /// ```
    /// # let name = format!("doc-read-consistent-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 16)?;
    /// seg.write(0, b"0123456789abcdef")?;
    /// let snap = seg.read_consistent(0, 16)?;
    /// assert_eq!(snap.data, b"0123456789abcdef");
    /// assert_eq!(snap.generation, seg.generation());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn read_consistent(&self, offset: usize, len: usize) -> Result<Snapshot> {
        let n = self.clamp(offset, len)?;
        let mut data = vec![0; n];
        let copied = self.read_consistent_into(offset, &mut data)?;
        Ok(Snapshot {
            data,
            generation: copied.generation,
        })
    }

    /// Like [`read_consistent`](Segment::read_consistent), into `buf`.
    ///
    /// # Errors
    ///
    /// As for [`read_consistent`](Segment::read_consistent).
    ///
    /// ```
    /// # let name = format!("doc-read-consistent-into-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 4)?;
    /// seg.write(0, b"wxyz")?;
    /// let mut buf = [0u8; 4];
    /// let copied = seg.read_consistent_into(0, &mut buf)?;
    /// assert_eq!((copied.len, &buf), (4, b"wxyz"));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn read_consistent_into(&self, offset: usize, buf: &mut [u8]) -> Result<Copied> {
        let n = self.clamp(offset, buf.len())?;
        let buf = &mut buf[..n];
        let h = self.header();
        // SAFETY: `clamp` keeps `offset + n` within the data region.
        let src = unsafe { self.mapping.data_ptr().add(offset) };
        let generation = seqlock::read(
            &h.seq,
            &h.lock_word,
            &h.notify_word,
            self.mapping.lock_id(),
            Some(self.timeout),
            &self.parker(),
            // SAFETY: `src..src + n` lies in the live mapping, which `self`
            // keeps alive for the whole call.
            || unsafe { copy_from_shared(src, buf) },
        )
        .map_err(|failure| self.read_failure(failure))?;
        self.intact()?;
        Ok(Copied { len: n, generation })
    }

    /// The error for a consistent read that gave up.
    #[cold]
    fn read_failure(&self, failure: seqlock::ReadFailure) -> Error {
        match failure {
            seqlock::ReadFailure::WriterDied(generation) => Error::Inconsistent {
                name: self.name.to_string(),
                generation,
            },
            seqlock::ReadFailure::TimedOut => {
                self.timeout_error(WaitFor::ConsistentRead, self.timeout)
            }
        }
    }

    /// Takes the segment's lock, waiting up to [`timeout`](Segment::timeout).
    ///
    /// Uncontended, this is one atomic instruction. A waiter sleeps in the
    /// kernel until the holder unlocks. If the holder dies, even by SIGKILL,
    /// the waiter takes the lock over within a few milliseconds, and the
    /// guard's [`owner_died`](SegmentGuard::owner_died) says so.
    ///
    /// The lock is not reentrant: locking twice from one handle waits for the
    /// timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if a live process holds it for the whole timeout.
    ///
    /// ```
    /// # let name = format!("doc-lock-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// if let Some(died) = guard.owner_died() {
    ///     eprintln!("the previous holder (pid {:?}) died", died.pid);
    /// }
    /// guard.data_mut()[0] += 1;
    /// drop(guard); // commits and unlocks
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> Result<SegmentGuard<'_>> {
        self.lock_timeout(self.timeout)
    }

    /// Takes the lock, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if a live process holds it for the whole timeout.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let name = format!("doc-lock-timeout-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let other = shmbox::Segment::open(&name)?;
    /// let held = seg.lock()?;
    /// assert!(matches!(
    ///     other.lock_timeout(Duration::from_millis(10)),
    ///     Err(shmbox::Error::Timeout { .. })
    /// ));
    /// # drop(held);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    #[inline]
    pub fn lock_timeout(&self, timeout: Duration) -> Result<SegmentGuard<'_>> {
        let acquired = self.acquire(timeout)?;
        self.locked(acquired)
    }

    /// The guard for a lock just taken, unless the segment was cut short:
    /// then the lock is let go again (where it still exists) and the error
    /// returned.
    #[inline]
    fn locked(&self, acquired: Acquired) -> Result<SegmentGuard<'_>> {
        if self.mapping.is_cut() {
            self.unlock(false);
            return Err(self.truncated());
        }
        Ok(SegmentGuard::new(self, acquired))
    }

    /// Takes the lock: one compare-and-swap when it is free. The guard is
    /// built by the caller, so that nothing large is moved on the fast path.
    #[inline]
    fn acquire(&self, timeout: Duration) -> Result<Acquired> {
        if sys::OS_MUTEX {
            return self
                .acquire_os_mutex(timeout)?
                .ok_or_else(|| self.timeout_error(WaitFor::Lock, timeout));
        }
        if lock::try_lock_fast(&self.header().lock_word, self.mapping.lock_id()) {
            return Ok(Acquired::Clean);
        }
        self.acquire_slow(timeout)
    }

    /// Takes the backend's OS mutex, then the lock word under it (see
    /// `sys/mod.rs`). `None` if the mutex stayed held for `timeout`.
    fn acquire_os_mutex(&self, timeout: Duration) -> Result<Option<Acquired>> {
        let os = self.mapping.lock_os_mutex(timeout)?;
        if os == sys::OsLocked::TimedOut {
            return Ok(None);
        }
        let h = self.header();
        let stale_shmbox_owner = lock::take_under_os_mutex(&h.lock_word, self.mapping.lock_id());
        if os == sys::OsLocked::Abandoned && !stale_shmbox_owner {
            // The owner that died was not a shmbox handle (a program that
            // uses the mutex directly): the recorded pid is not its.
            h.lock_owner_pid.store(0, Ordering::Relaxed);
        }
        Ok(Some(
            if os == sys::OsLocked::Abandoned || stale_shmbox_owner {
                Acquired::OwnerDied
            } else {
                Acquired::Clean
            },
        ))
    }

    #[cold]
    fn acquire_slow(&self, timeout: Duration) -> Result<Acquired> {
        let h = self.header();
        lock::lock_slow(
            &h.lock_word,
            self.mapping.lock_id(),
            Some(timeout),
            &self.parker(),
        )
        .ok_or_else(|| self.timeout_error(WaitFor::Lock, timeout))
    }

    /// Takes the lock if no waiting is needed: it is free, or its holder has
    /// died. `None` if a live process holds it.
    ///
    /// When the lock is held, this asks the kernel whether the holder lives,
    /// which costs a system call.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for platforms where the check can fail.
    ///
    /// ```
    /// # let name = format!("doc-try-lock-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let other = shmbox::Segment::open(&name)?;
    /// let held = seg.try_lock()?.expect("free");
    /// assert!(other.try_lock()?.is_none());
    /// # drop(held);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<Option<SegmentGuard<'_>>> {
        if sys::OS_MUTEX {
            return match self.acquire_os_mutex(Duration::ZERO)? {
                Some(acquired) => self.locked(acquired).map(Some),
                None => Ok(None),
            };
        }
        let h = self.header();
        match lock::try_lock(&h.lock_word, self.mapping.lock_id(), &self.parker()) {
            Some(acquired) => self.locked(acquired).map(Some),
            None => self.intact().map(|()| None),
        }
    }

    /// Waits until a write is committed, by any process, after generation
    /// `since`, and returns the new generation. Returns at once if the
    /// generation is already other than `since`.
    ///
    /// The wait sleeps in the kernel; writers make a wake-up system call only
    /// when someone waits. [`Duration::MAX`] waits for ever. A segment opened
    /// with [`SegmentOptions::spin_before_sleep`] spins that long first.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if nothing was committed within `timeout`;
    /// [`Error::Truncated`] if the segment's file was cut short.
    ///
    /// ```
    /// # let name = format!("doc-wait-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let seen = seg.generation();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| seg.write(0, b"ping"));
    ///     let now = seg.wait_for_change(seen, std::time::Duration::from_secs(5))?;
    ///     assert!(now > seen);
    ///     Ok::<(), shmbox::Error>(())
    /// })?;
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn wait_for_change(&self, since: u64, timeout: Duration) -> Result<u64> {
        let h = self.header();
        notify::wait_for_change(
            &h.seq,
            &h.notify_word,
            &h.lock_word,
            since,
            Some(timeout),
            self.spin,
            &self.parker(),
        )
        .filter(|_| !self.mapping.is_cut())
        .ok_or_else(|| {
            if self.mapping.is_cut() {
                self.truncated()
            } else {
                self.timeout_error(WaitFor::Change, timeout)
            }
        })
    }

    /// The segment's header and metadata, as [`info`] gives them.
    ///
    /// # Errors
    ///
    /// None today; kept for symmetry with [`info`].
    ///
    /// ```
    /// # let name = format!("doc-seg-info-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 32)?;
    /// seg.write(0, b"x")?;
    /// let info = seg.info()?;
    /// assert_eq!(info.size, 32);
    /// assert_eq!(info.last_writer_pid, Some(std::process::id()));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn info(&self) -> Result<SegmentInfo> {
        self.intact()?;
        let mut fields = HeaderFields {
            capacity: self.size() as u64,
            lifetime: self.lifetime().code(),
            ..self.header().fields()
        };
        self.mapping.note_foreign_holder(&mut fields);
        let owner = fields.lock_word & OWNER_MASK;
        let (owner_uid, mode) = self.mapping.owner_and_mode();
        Ok(SegmentInfo::new(
            self.name.clone(),
            &fields,
            owner_uid,
            mode,
            owner != 0 && self.mapping.is_alive(owner),
        ))
    }
}

/// A copy made by [`Segment::read_consistent`].
///
/// ```
/// # let name = format!("doc-snapshot-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 4)?;
/// seg.write(0, b"abcd")?;
/// let shmbox::Snapshot { data, generation } = seg.read_consistent(1, 2)?;
/// assert_eq!((data.as_slice(), generation), (&b"bc"[..], 1));
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The bytes.
    pub data: Vec<u8>,
    /// The generation they belong to: how many writes were committed before.
    pub generation: u64,
}

/// What [`Segment::read_consistent_into`] copied.
///
/// ```
/// # let name = format!("doc-copied-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 4)?;
/// let mut buf = [0u8; 10];
/// let copied = seg.read_consistent_into(0, &mut buf)?;
/// assert_eq!((copied.len, copied.generation), (4, 0)); // clamped to the size
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// How many bytes were copied.
    pub len: usize,
    /// The generation they belong to.
    pub generation: u64,
}

/// How a lock was taken over from a holder that died.
///
/// ```
/// # let name = format!("doc-owner-died-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// let guard = seg.lock()?;
/// assert_eq!(guard.owner_died(), None); // nobody died here
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerDied {
    /// The pid of the process that died holding the lock, as it recorded it.
    pub pid: Option<u32>,
    /// Whether it died in the middle of a write, leaving the data possibly
    /// torn (then [`SegmentGuard::is_consistent`] is false until repaired).
    pub mid_write: bool,
}

/// Exclusive access to a segment's data, across processes, until dropped.
///
/// Reading through the guard sees the data as the last writer committed it.
/// Writing through [`data_mut`](SegmentGuard::data_mut) or
/// [`write`](SegmentGuard::write) starts a write; dropping the guard commits
/// it (one new generation, however many changes) and wakes waiters. If the
/// thread panics while the guard is writing, the write is not committed: the
/// data is marked torn, as if the process had died.
///
/// ```
/// # let name = format!("doc-guard-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// let mut guard = seg.lock()?;
/// let counter = u64::from_le_bytes(guard.data()[..8].try_into().unwrap());
/// guard.data_mut()[..8].copy_from_slice(&(counter + 1).to_le_bytes());
/// let generation = guard.unlock()?;
/// assert_eq!(generation, seg.generation());
/// # Ok::<(), shmbox::Error>(())
/// ```
///
/// A guard is not `Send`: the thread that took the lock releases it (on
/// Windows the lock is a mutex, which only its owning thread may release).
///
/// ```compile_fail
/// # let seg = shmbox::Segment::open_or_create("doc-guard-not-send", 8).unwrap();
/// let guard = seg.lock().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // error: the guard cannot move threads
/// });
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct SegmentGuard<'a> {
    segment: &'a Segment,
    /// The sequence word when the lock was taken: nobody else changes it
    /// while the lock is held.
    seq_at_lock: u64,
    /// The odd sequence value of the write in progress, once one began.
    write_seq: Option<u64>,
    /// The second to record for the write, if read already (else 0).
    write_time: u64,
    /// A writer died mid-write and nobody has committed since.
    torn: bool,
    owner_died: Option<OwnerDied>,
    /// Not `Send`: on Windows the lock is a mutex, which only the thread
    /// that took it may release.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: `&SegmentGuard` only reads (`data`, `read_into`, `is_consistent`,
// ...), and reading the locked bytes from several threads at once is sound:
// nobody writes them while the guard lives. Only `Send` is withheld, because
// the thread that took the lock must release it.
unsafe impl Sync for SegmentGuard<'_> {}

impl fmt::Debug for SegmentGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentGuard")
            .field("segment", &self.segment.name)
            .field("writing", &self.write_seq.is_some())
            .field("consistent", &!self.torn)
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl<'a> SegmentGuard<'a> {
    #[inline]
    fn new(segment: &'a Segment, acquired: Acquired) -> SegmentGuard<'a> {
        let h = segment.header();
        let seq_at_lock = h.seq.load(Ordering::Relaxed);
        let torn = seq_at_lock & 1 == 1;
        let owner_died = (acquired == Acquired::OwnerDied).then(|| segment.took_over(torn));
        store_if_changed(&h.lock_owner_pid, segment.pid);
        SegmentGuard {
            segment,
            seq_at_lock,
            write_seq: None,
            write_time: 0,
            torn,
            owner_died,
            _not_send: PhantomData,
        }
    }

    /// The segment this guard locks.
    ///
    /// ```
    /// # let name = format!("doc-guard-segment-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let guard = seg.lock()?;
    /// assert_eq!(guard.segment().size(), 8);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn segment(&self) -> &'a Segment {
        self.segment
    }

    /// `Some` if the previous holder died holding the lock: this guard took
    /// it over. The data is still consistent unless it died mid-write (see
    /// [`is_consistent`](SegmentGuard::is_consistent)).
    ///
    /// ```
    /// # let name = format!("doc-guard-died-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert!(seg.lock()?.owner_died().is_none());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn owner_died(&self) -> Option<OwnerDied> {
        self.owner_died
    }

    /// False if a writer died in the middle of a write and nobody has
    /// committed since, so the data may be torn. Writing through this guard,
    /// or [`mark_consistent`](SegmentGuard::mark_consistent), repairs it when
    /// the guard is released.
    ///
    /// ```
    /// # let name = format!("doc-guard-consistent-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert!(seg.lock()?.is_consistent());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn is_consistent(&self) -> bool {
        !self.torn
    }

    /// Declares the data consistent as it is, for example after checking or
    /// repairing it following a writer's death. Releasing the guard then
    /// commits a new generation.
    ///
    /// ```
    /// # let name = format!("doc-guard-mark-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let before = seg.generation();
    /// let mut guard = seg.lock()?;
    /// guard.mark_consistent();
    /// drop(guard);
    /// assert_eq!(seg.generation(), before + 1);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.begin_write();
    }

    /// The whole data region, as the last writer left it.
    ///
    /// ```
    /// # let name = format!("doc-guard-data-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// assert_eq!(seg.lock()?.data().len(), 8);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn data(&self) -> &[u8] {
        // SAFETY: the data region is `size()` bytes of a live mapping that
        // outlives the guard. While the lock is held, no process that follows
        // the protocol writes it, so the bytes do not change under the slice.
        unsafe { std::slice::from_raw_parts(self.segment.mapping.data_ptr(), self.segment.size()) }
    }

    /// The whole data region, for changing in place. Starts a write, which
    /// commits when the guard is released.
    ///
    /// ```
    /// # let name = format!("doc-guard-data-mut-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// guard.data_mut().fill(b'z');
    /// drop(guard);
    /// assert_eq!(seg.read(0, 8)?, b"zzzzzzzz");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.begin_write();
        // SAFETY: as for `data`; in addition, `&mut self` makes this the only
        // slice of the region in this process, and the lock excludes writers
        // in others. Lock-free readers may copy concurrently; they use atomic
        // loads and discard any copy that overlapped this write (seqlock).
        unsafe {
            std::slice::from_raw_parts_mut(self.segment.mapping.data_ptr(), self.segment.size())
        }
    }

    /// Writes `data` at `offset`, clamped to the size, and returns how many
    /// bytes were written. Commits when the guard is released.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `offset > size()`.
    ///
    /// ```
    /// # let name = format!("doc-guard-write-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// assert_eq!(guard.write(0, b"abc")?, 3);
    /// assert_eq!(guard.write(5, b"defgh")?, 3);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<usize> {
        let n = self.segment.clamp(offset, data.len())?;
        if n > 0 {
            self.copy_in(offset, &data[..n]);
        }
        self.segment.intact()?;
        Ok(n)
    }

    /// Reads into `buf` from `offset`, clamped to the size, and returns how
    /// many bytes were read. Unlike [`Segment::read_into`], this reads torn
    /// data too: the guard's holder decides what to do with it.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `offset > size()`.
    ///
    /// ```
    /// # let name = format!("doc-guard-read-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// seg.write(0, b"12345678")?;
    /// let guard = seg.lock()?;
    /// let mut buf = [0; 3];
    /// assert_eq!(guard.read_into(5, &mut buf)?, 3);
    /// assert_eq!(&buf, b"678");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        let n = self.segment.clamp(offset, buf.len())?;
        self.copy_out(offset, &mut buf[..n]);
        self.segment.intact()?;
        Ok(n)
    }

    /// Commits any write and releases the lock, returning the generation
    /// after the commit. (Dropping the guard does the same, silently.)
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the segment's file was cut short while the
    /// guard was held: the lock is released, but what was written is lost.
    ///
    /// ```
    /// # let name = format!("doc-guard-unlock-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let mut guard = seg.lock()?;
    /// guard.write(0, b"x")?;
    /// let generation = guard.unlock()?;
    /// assert_eq!(generation, seg.generation());
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn unlock(mut self) -> Result<u64> {
        let segment = self.segment;
        let generation = match self.write_seq.take() {
            Some(odd) => {
                let generation = segment.commit_and_unlock(odd, self.write_time);
                std::mem::forget(self);
                generation
            }
            None => {
                drop(self);
                segment.generation()
            }
        };
        segment.intact()?;
        Ok(generation)
    }

    #[inline]
    fn begin_write(&mut self) {
        if self.write_seq.is_none() {
            self.write_seq = Some(seqlock::begin_write(
                &self.segment.header().seq,
                self.seq_at_lock,
            ));
        }
    }

    /// Copies `data` in at `offset`; the caller checked the range.
    #[inline]
    fn copy_in(&mut self, offset: usize, data: &[u8]) {
        debug_assert!(offset + data.len() <= self.segment.size());
        self.begin_write();
        // SAFETY: the caller checked that `offset + data.len() <= size()`, so
        // the range lies in the live, writable mapping.
        unsafe { copy_to_shared(self.segment.mapping.data_ptr().add(offset), data) };
    }

    /// Copies out from `offset`; the caller checked the range.
    #[inline]
    fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        debug_assert!(offset + buf.len() <= self.segment.size());
        // SAFETY: as in `copy_in`.
        unsafe { copy_from_shared(self.segment.mapping.data_ptr().add(offset), buf) };
    }
}

/// Stores `value` unless the word holds it already. A store that changes
/// nothing still has to drain before the unlock's atomic instruction; a load
/// does not, and the same process writing again is the common case.
#[inline]
fn store_if_changed<T: PartialEq + Copy>(word: &impl SharedWord<T>, value: T) {
    if word.get() != value {
        word.set(value);
    }
}

trait SharedWord<T> {
    fn get(&self) -> T;
    fn set(&self, value: T);
}

impl SharedWord<u32> for crate::sync::shared::AtomicU32 {
    #[inline]
    fn get(&self) -> u32 {
        self.load(Ordering::Relaxed)
    }
    #[inline]
    fn set(&self, value: u32) {
        self.store(value, Ordering::Relaxed)
    }
}

impl SharedWord<u64> for crate::sync::shared::AtomicU64 {
    #[inline]
    fn get(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
    #[inline]
    fn set(&self, value: u64) {
        self.store(value, Ordering::Relaxed)
    }
}

impl Drop for SegmentGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        match self.write_seq.take() {
            // A panic mid-write leaves the data torn, as a crash would.
            Some(odd) if !std::thread::panicking() => {
                self.segment.commit_and_unlock(odd, self.write_time);
            }
            _ => self.segment.unlock(false),
        }
    }
}

/// A time a header recorded, if plausible: not 0 (never set) and not past
/// the year 9999 (a corrupt or hostile header may hold any value, and such a
/// time cannot be added to the epoch or printed; found by fuzzing).
fn recorded_time(since_epoch: Duration) -> Option<SystemTime> {
    const END_OF_9999: Duration = Duration::from_secs(253_402_300_799);
    (!since_epoch.is_zero() && since_epoch <= END_OF_9999).then(|| UNIX_EPOCH + since_epoch)
}

/// The state of a segment's lock, as [`info`] saw it.
///
/// ```
/// use shmbox::LockState;
/// # let name = format!("doc-lockstate-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// assert_eq!(shmbox::info(&name)?.lock, LockState::Free);
/// let guard = seg.lock()?;
/// assert!(matches!(shmbox::info(&name)?.lock, LockState::Held { .. }));
/// # drop(guard);
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// A live handle holds it; `pid` is the process it recorded.
    Held {
        /// The holder's pid.
        pid: Option<u32>,
    },
    /// A handle that no longer exists holds it: its process died. The next
    /// locker takes it over.
    Abandoned {
        /// The dead holder's pid.
        pid: Option<u32>,
    },
}

/// A segment's header and metadata, from [`info`], [`list`] or
/// [`Segment::info`].
///
/// ```
/// # let name = format!("doc-info-struct-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 64)?;
/// let info = shmbox::info(&name)?;
/// assert_eq!((info.size, info.lifetime, info.generation), (64, shmbox::Lifetime::UntilLastClose, 0));
/// assert_eq!(info.lock, shmbox::LockState::Free);
/// # drop(seg);
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The segment's name.
    pub name: SegmentName,
    /// Its size in bytes.
    pub size: usize,
    /// The format version of its header.
    pub format_version: u32,
    /// Its lifetime.
    pub lifetime: Lifetime,
    /// Committed writes so far.
    pub generation: u64,
    /// False if a writer died mid-write and nobody has repaired the data.
    pub consistent: bool,
    /// Who holds the lock.
    pub lock: LockState,
    /// The process that committed the last write.
    pub last_writer_pid: Option<u32>,
    /// When the last write was committed, to the second; `None` if never,
    /// or if the header holds an impossible time.
    pub last_write: Option<SystemTime>,
    /// The process that created the segment.
    pub creator_pid: Option<u32>,
    /// When it was created; `None` if the header holds no plausible time.
    pub created: Option<SystemTime>,
    /// How many times the lock was taken over from a dead holder.
    pub owner_deaths: u32,
    /// The uid that owns the segment.
    pub owner_uid: u32,
    /// Its permission bits.
    pub mode: u32,
}

impl SegmentInfo {
    fn new(
        name: SegmentName,
        f: &HeaderFields,
        owner_uid: u32,
        mode: u32,
        lock_owner_alive: bool,
    ) -> SegmentInfo {
        let pid = |p: u32| Some(p).filter(|&p| p != 0);
        let lock = match (f.lock_word & OWNER_MASK, lock_owner_alive) {
            (0, _) => LockState::Free,
            (_, true) => LockState::Held {
                pid: pid(f.lock_owner_pid),
            },
            (_, false) => LockState::Abandoned {
                pid: pid(f.lock_owner_pid),
            },
        };
        SegmentInfo {
            name,
            size: f.capacity as usize,
            format_version: f.format_version,
            lifetime: Lifetime::from_code(f.lifetime).unwrap_or_default(),
            generation: f.seq >> 1,
            consistent: f.seq & 1 == 0 || lock_owner_alive,
            lock,
            last_writer_pid: pid(f.last_writer_pid),
            last_write: recorded_time(Duration::from_secs(f.last_write_unix_s)),
            creator_pid: pid(f.creator_pid),
            created: recorded_time(Duration::from_nanos(f.created_unix_ns)),
            owner_deaths: f.owner_deaths,
            owner_uid,
            mode,
        }
    }

    /// The pid of the live process holding the lock, if any.
    ///
    /// ```
    /// # let name = format!("doc-info-owner-{}", std::process::id());
    /// let seg = shmbox::Segment::open_or_create(&name, 8)?;
    /// let guard = seg.lock()?;
    /// assert_eq!(shmbox::info(&name)?.lock_owner_pid(), Some(std::process::id()));
    /// # drop(guard);
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn lock_owner_pid(&self) -> Option<u32> {
        match self.lock {
            LockState::Held { pid } => pid,
            _ => None,
        }
    }
}

/// Removes a segment's name. Processes that have it open keep using it; the
/// memory is freed when the last of them closes it.
///
/// An [`UntilLastClose`](Lifetime::UntilLastClose) segment that another
/// process has open is refused with [`Error::Busy`]: it is removed anyway when
/// the last one closes it, and removing it earlier would let a second segment
/// of the same name appear beside the live one.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Busy`], [`Error::PermissionDenied`]; on
/// Windows, where a segment goes with its last handle, [`Error::Unsupported`]
/// for a segment that exists.
///
/// ```
/// let name = format!("doc-remove-{}", std::process::id());
/// let seg = shmbox::SegmentOptions::new()
///     .lifetime(shmbox::Lifetime::Persistent)
///     .create(&name, 8)?;
/// drop(seg);
/// shmbox::remove(&name)?;
/// assert!(matches!(shmbox::remove(&name), Err(shmbox::Error::NotFound { .. })));
/// # Ok::<(), shmbox::Error>(())
/// ```
pub fn remove(name: impl AsRef<str>) -> Result<()> {
    sys::remove(&SegmentName::new(name.as_ref())?)
}

/// Describes a segment without opening it for use. It may belong to another
/// user.
///
/// # Errors
///
/// [`Error::NotFound`] if there is none (or its lifetime is over);
/// [`Error::Corrupt`] or [`Error::IncompatibleVersion`] if it is not a valid
/// segment of this format.
///
/// ```
/// # let name = format!("doc-info-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 128)?;
/// seg.write(0, b"hi")?;
/// let info = shmbox::info(&name)?;
/// assert_eq!((info.size, info.generation), (128, 1));
/// # Ok::<(), shmbox::Error>(())
/// ```
pub fn info(name: impl AsRef<str>) -> Result<SegmentInfo> {
    let name = SegmentName::new(name.as_ref())?;
    let i = sys::inspect(&name)?;
    Ok(SegmentInfo::new(
        name,
        &i.fields,
        i.owner_uid,
        i.mode,
        i.lock_owner_alive,
    ))
}

/// Every valid segment of this format on the machine, sorted by name.
/// Files that are not valid segments are left out; [`info`] says what is
/// wrong with one.
///
/// # Errors
///
/// [`Error::Io`] if the segment directory (on Windows, the session's
/// object directory) cannot be read. On Windows this lists the segments
/// that some shmbox process has open, in this session and in `Global\`;
/// a block that only other programs hold is not listed, but [`info`]
/// describes it by name.
///
/// ```
/// # let name = format!("doc-list-{}", std::process::id());
/// let seg = shmbox::Segment::open_or_create(&name, 8)?;
/// assert!(shmbox::list()?.iter().any(|i| i.name.as_str() == name));
/// # drop(seg);
/// # Ok::<(), shmbox::Error>(())
/// ```
pub fn list() -> Result<Vec<SegmentInfo>> {
    Ok(sys::list()?
        .into_iter()
        .map(|(name, i)| SegmentInfo::new(name, &i.fields, i.owner_uid, i.mode, i.lock_owner_alive))
        .collect())
}
