//! Options for opening and creating segments, and their lifetimes.

use std::fmt;
use std::time::Duration;

use crate::header::{LIFETIME_PERSISTENT, LIFETIME_UNTIL_LAST_CLOSE, max_capacity};
use crate::sys::{self, Mapping, OpenSpec};
use crate::{Error, Result, Segment, SegmentName};

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
    /// When the last holders close the segment, the last one removes it. When
    /// they all die instead (killed, say), nobody is left to remove it, and
    /// shmbox starts no helper process to watch for that: on Linux the next
    /// shmbox call on the machine that looks ([`Segment::open`],
    /// [`Segment::create`], [`info`](crate::info), [`list`](crate::list),
    /// [`reclaim`](crate::reclaim), or `shmbox gc`) proves with the kernel's
    /// locks that nobody holds it and removes it. Until then its memory
    /// stays allocated (docs/RELIABILITY.md measures how long that is). On
    /// Windows the kernel frees it with the last handle.
    #[default]
    UntilLastClose,
    /// The segment stays until [`remove`](crate::remove) removes it (or the machine restarts).
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
    /// The lifetime these options give a new segment.
    #[cfg(feature = "redis")]
    pub(crate) fn lifetime_option(&self) -> Lifetime {
        self.lifetime
    }

    /// The lock timeout these options give.
    #[cfg(feature = "redis")]
    pub(crate) fn timeout_option(&self) -> Duration {
        self.timeout
    }

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
        Segment::new(mapping, name, self.timeout, self.spin)
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
