//! Named shared memory for processes on one machine.
//!
//! A [`Segment`] is a named block of bytes that every process opening the
//! same name shares, like the Win32 file mapping of the FoxPro sample this
//! crate grew from, with what that sample lacks:
//!
//! - **a self-describing header**: the segment records its format version,
//!   size and lifetime, and opening checks all of it, so a foreign or corrupt
//!   file under the name is an error, never a crash (`docs/FORMAT.md`);
//! - **a lock that survives a crashed holder**: uncontended it is one atomic
//!   instruction; waiters sleep in the kernel; if the holder dies, even by
//!   SIGKILL, the next locker takes over within milliseconds and is told so;
//! - **consistent reads without the lock**: [`Segment::read_consistent`]
//!   never blocks a writer and never returns a torn copy;
//! - **change notification**: [`Segment::wait_for_change`] sleeps until any
//!   process commits a write;
//! - **a crash-safe lifetime**: an [`UntilLastClose`](Lifetime::UntilLastClose)
//!   segment disappears when the last process holding it closes it; if the
//!   last holders die instead, the next shmbox call that looks removes it;
//! - **secure defaults**: mode `0o600`, exclusive creation, and segments of
//!   other users refused unless allowed;
//! - **no surprises for the host process** (below).
//!
//! # Example
//!
//! The sample's two processes, as two handles in one:
//!
//! ```
//! use shmbox::Segment;
//!
//! let name = format!("crate-doc-{}", std::process::id());
//! let writer = Segment::open_or_create(&name, 1024)?;  // process A
//! let reader = Segment::open_or_create(&name, 1024)?;  // process B
//!
//! let seen = reader.generation();
//! writer.write(0, "你好, shared memory".as_bytes())?;
//! reader.wait_for_change(seen, std::time::Duration::from_secs(1))?;
//!
//! let text = reader.read_consistent(0, 1024)?;
//! assert!(text.data.starts_with("你好".as_bytes()));
//! # Ok::<(), shmbox::Error>(())
//! ```
//!
//! # A guest in your process
//!
//! - **No processes, threads or signal handlers.** Opening a local segment
//!   starts nothing. (A remote segment's leases are renewed by one thread,
//!   which ends a few seconds after the last lease: see below.) Segments whose last holders died are reclaimed lazily, by the
//!   next [`Segment::open`], [`Segment::create`], [`info`] or [`list`] on the
//!   machine, or by [`reclaim`]. SIGBUS protection for files cut short under
//!   a mapping is opt-in: [`install_sigbus_handler`].
//! - **fork() without exec.** A child that inherits a [`Segment`] gets
//!   [`Error::Forked`] from it, and its copy keeps none of the parent's locks
//!   alive: a parent killed while holding the lock is taken over at once,
//!   however many forked workers it leaves.
//! - **Sound access to shared bytes.** Other processes may change a segment
//!   at any moment, so no safe method returns a reference into it: data is
//!   copied in and out ([`SharedBytes`], [`SegmentGuard::read_pod`],
//!   [`SegmentGuard::write_pod`]), and the `unsafe`
//!   [`SegmentGuard::as_slice`] states the contract for those who need a
//!   slice.
//! - **Process-wide state**: one private page marked `MADV_WIPEONFORK` (to
//!   tell a child from its parent with one load, where other libraries make
//!   a `getpid` system call), a table of mappings for the opt-in SIGBUS
//!   handler, and the time of the last reclaiming sweep.
//!
//! # Platforms
//!
//! - **Linux**: the segment is a file in `/dev/shm` holding the header and
//!   the data (`docs/FORMAT.md`).
//! - **Windows**: the data is the raw named file mapping `NAME` and the lock
//!   is the named mutex `sync_NAME`, exactly as the Win32/FoxPro programs
//!   this crate grew from use them, so shmbox and those programs share the
//!   bytes and honour each other's lock. The header lives in a companion
//!   object. Segments last until their last handle closes:
//!   [`Lifetime::Persistent`], [`remove`] and [`list`] return
//!   [`Error::Unsupported`]. Names may start with `Global\` or `Local\`.
//!   See `docs/FORMAT.md`, section 10.
//!
//! Other platforms compile, and every call returns [`Error::Unsupported`].
//!
//! # Across machines
//!
//! With the `redis` feature, the same segments can live on a Redis server,
//! named by a URL ([`Location`]): [`SegmentOptions::open_at`] and its
//! siblings return an [`AnySegment`], local or remote, with the same
//! clamped reads and writes, consistent reads, lock (a lease, with fencing)
//! and change notification. `docs/REMOTE.md` states what that guarantees.
#![cfg_attr(not(loom), warn(missing_docs))]
// Under loom only the algorithms are built, for their model-checking tests.
#![cfg_attr(loom, allow(dead_code))]
// Without a backend (see sys/stub.rs) the format code has no caller yet.
#![cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]

#[cfg(not(loom))]
mod any;
#[cfg(not(loom))]
mod arc_guard;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod guard;
#[cfg(not(loom))]
mod header;
#[cfg(not(loom))]
mod info;
#[cfg(not(loom))]
mod location;
pub(crate) mod lock;
#[cfg(all(test, loom))]
mod loom_models;
#[cfg(not(loom))]
mod name;
pub(crate) mod notify;
#[cfg(not(loom))]
mod options;
#[cfg(all(feature = "redis", not(loom)))]
pub mod remote;
#[cfg(not(loom))]
mod segment;
#[cfg(any(windows, loom))]
pub(crate) mod sem_futex;
pub(crate) mod seqlock;
#[cfg(not(loom))]
mod shared_bytes;
pub(crate) mod sync;
#[cfg(not(loom))]
mod sys;
#[cfg(not(loom))]
mod view;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;

#[cfg(not(loom))]
pub use any::{AnyGuard, AnySegment, info_at, list_at, remove_at};
#[cfg(not(loom))]
pub use arc_guard::ArcSegmentGuard;
#[cfg(not(loom))]
pub use error::{Error, Result, WaitFor};
#[cfg(not(loom))]
pub use guard::{OwnerDied, SegmentGuard};
#[cfg(not(loom))]
pub use info::{LockState, RemoteDetails, SegmentInfo, info, list};
#[cfg(not(loom))]
pub use location::{DEFAULT_LEASE, DEFAULT_NETWORK_TIMEOUT, Location, RedisLocation};
#[cfg(not(loom))]
pub use name::SegmentName;
#[cfg(not(loom))]
pub use options::{DEFAULT_INIT_TIMEOUT, DEFAULT_TIMEOUT, Lifetime, SegmentOptions};
#[cfg(not(loom))]
pub use segment::{Copied, Segment, Snapshot, reclaim, remove};
#[cfg(not(loom))]
pub use view::{SharedBytes, SharedBytesMut};

/// The crate behind [`SegmentGuard::read_pod`] and
/// [`SegmentGuard::write_pod`], re-exported so that `#[derive(Pod,
/// Zeroable)]` on your own structs matches the version shmbox uses.
#[cfg(not(loom))]
pub use bytemuck;

/// Lets this process survive a segment's file being cut short while it is
/// mapped: installs a SIGBUS handler for the whole process, once.
///
/// A process of the same user (or root) can `ftruncate` a segment's file
/// while it is open here. Touching the part that is gone then raises SIGBUS,
/// which kills the process. After this call it does not: the handler
/// replaces the missing pages with zero pages, and every operation on that
/// segment's handles fails with [`Error::Truncated`] from then on. It acts
/// only on faults the kernel raised for a missing page (`BUS_ADRERR`) inside
/// a segment this crate mapped; every other SIGBUS goes to the handler that
/// was installed before, with that handler's flags and signal mask, or, if
/// there was none, kills the process as it would have.
///
/// shmbox never installs it on its own: a library should not take over a
/// process-wide signal unasked. The `shmbox` command and the demos call it.
/// Segments opened before the call are covered too. Calling it again does
/// nothing.
///
/// **A handler installed later** replaces this one, as with any signal
/// handler; protection then depends on that handler passing faults it does
/// not recognise to the one it replaced (the usual practice: save the old
/// action with `sigaction` and call it). Windows needs none of this
/// (sections cannot be cut short), and there this returns `Ok` and does
/// nothing.
///
/// # Errors
///
/// [`Error::Io`] if the system refused the handler.
///
/// ```
/// shmbox::install_sigbus_handler()?;
/// shmbox::install_sigbus_handler()?; // a second call does nothing
/// # Ok::<(), shmbox::Error>(())
/// ```
#[cfg(not(loom))]
pub fn install_sigbus_handler() -> Result<()> {
    sys::install_sigbus_handler().map_err(|source| Error::Io {
        name: String::new(),
        operation: "installing the SIGBUS handler",
        source,
    })
}
