//! `LockGuard`: the segment's lock, held by one Python thread.
//!
//! The lock belongs to the thread that took it (on Windows it is a mutex,
//! which only its owner may release), so the guard itself stays in that
//! thread's `HELD` list; the Python object holds its id. The lock is
//! released by `release()`, by leaving a `with` block, when the object is
//! collected in its thread, or when the thread ends.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyo3::exceptions::PyResourceWarning;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmbox::{ArcSegmentGuard, Segment};

use crate::errors::{IntoPyResult, new_error};
use crate::shared_memory::{SharedMemory, bytes_of, clamped_len, index};

struct Held {
    id: u64,
    /// Shared with the `LockGuard`: true while this entry holds the lock.
    live: Arc<AtomicBool>,
    guard: ArcSegmentGuard,
}

/// A thread's locks. When the thread ends, its locks are released.
#[derive(Default)]
struct HeldList(Vec<Held>);

impl Drop for HeldList {
    fn drop(&mut self) {
        for held in &self.0 {
            held.live.store(false, Ordering::Relaxed);
        }
        // Then the guards drop with the list, releasing the locks.
    }
}

thread_local! {
    /// The locks this thread holds.
    static HELD: RefCell<HeldList> = RefCell::new(HeldList::default());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Keeps `guard` in this thread's list, and returns its id and its flag.
pub(crate) fn hold(guard: ArcSegmentGuard) -> (u64, Arc<AtomicBool>) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let live = Arc::new(AtomicBool::new(true));
    let entry = Held {
        id,
        live: Arc::clone(&live),
        guard,
    };
    HELD.with_borrow_mut(|held| held.0.push(entry));
    (id, live)
}

/// Runs `f` on the guard `id` if this thread holds it.
fn with_guard<R>(id: u64, f: impl FnOnce(&mut ArcSegmentGuard) -> R) -> Option<R> {
    HELD.with_borrow_mut(|held| {
        held.0
            .iter_mut()
            .find(|h| h.id == id)
            .map(|h| f(&mut h.guard))
    })
}

/// Takes the guard `id` out of this thread's list. `None` if another thread
/// holds it, and while this thread is ending (its list is being dropped,
/// which releases the lock).
fn take(id: u64) -> Option<ArcSegmentGuard> {
    let held = HELD
        .try_with(|held| {
            let mut held = held.try_borrow_mut().ok()?;
            let at = held.0.iter().position(|h| h.id == id)?;
            Some(held.0.swap_remove(at))
        })
        .ok()
        .flatten()?;
    held.live.store(false, Ordering::Relaxed);
    Some(held.guard)
}

/// Runs `f` on the guard this thread holds on the handle `segment`, if any.
/// Most threads hold none: then this is one thread-local load.
pub(crate) fn with_guard_on<R>(
    segment: &Arc<Segment>,
    f: impl FnOnce(&mut ArcSegmentGuard) -> R,
) -> Option<R> {
    HELD.with_borrow_mut(|held| {
        held.0
            .iter_mut()
            .find(|h| Arc::ptr_eq(h.guard.segment(), segment))
            .map(|h| f(&mut h.guard))
    })
}

/// How the lock was taken over from a holder that died.
#[pyclass(module = "shmbox", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerDied {
    /// The pid of the process that died holding the lock, as it recorded it
    /// (None if it recorded none).
    #[pyo3(get)]
    pid: Option<u32>,
    /// Whether it died in the middle of a write, so the data may be torn
    /// until a write, or mark_consistent(), repairs it.
    #[pyo3(get)]
    mid_write: bool,
}

#[pymethods]
impl OwnerDied {
    fn __repr__(&self) -> String {
        let pid = self.pid.map_or("None".to_owned(), |p| p.to_string());
        let mid_write = if self.mid_write { "True" } else { "False" };
        format!("OwnerDied(pid={pid}, mid_write={mid_write})")
    }
}

impl From<shmbox::OwnerDied> for OwnerDied {
    fn from(died: shmbox::OwnerDied) -> OwnerDied {
        OwnerDied {
            pid: died.pid,
            mid_write: died.mid_write,
        }
    }
}

/// The segment's lock, held by the thread that took it: a context manager
/// returned by ``SharedMemory.lock()``.
///
/// While it is held, ``SharedMemory.read()`` and ``write()`` in this thread
/// go through it instead of locking again. Leaving the ``with`` block, or
/// ``release()``, commits what was written (one new generation) and wakes
/// the processes waiting in ``wait_for_change()``.
#[pyclass(module = "shmbox", frozen)]
pub(crate) struct LockGuard {
    id: u64,
    /// True while the lock is held; set false by `release()`, or when the
    /// holding thread ends.
    live: Arc<AtomicBool>,
    segment: Arc<Segment>,
    shm: Py<SharedMemory>,
    owner_died: Option<OwnerDied>,
}

impl LockGuard {
    pub(crate) fn new(
        (id, live): (u64, Arc<AtomicBool>),
        segment: Arc<Segment>,
        shm: Py<SharedMemory>,
        owner_died: Option<shmbox::OwnerDied>,
    ) -> LockGuard {
        LockGuard {
            id,
            live,
            segment,
            shm,
            owner_died: owner_died.map(OwnerDied::from),
        }
    }

    fn name(&self) -> &str {
        self.segment.name().as_str()
    }

    fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// Runs `f` on the guard, or says why it cannot: released, or held by
    /// another thread. (The guard is in this thread's list only if this
    /// thread holds it.)
    fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&mut ArcSegmentGuard) -> R) -> PyResult<R> {
        with_guard(self.id, f).ok_or_else(|| self.not_here(py))
    }

    /// The error for a guard that is not in this thread's list.
    #[cold]
    fn not_here(&self, py: Python<'_>) -> PyErr {
        let message = if self.is_live() {
            format!(
                "the lock of segment {:?} belongs to the thread that took it; \
                 only that thread can use or release it",
                self.name()
            )
        } else {
            format!("the lock of segment {:?} was already released", self.name())
        };
        new_error(py, "LockError", message, self.name())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.is_live() {
            return;
        }
        if take(self.id).is_some() {
            // Collected without release(), in its thread: released now, as a
            // `with` block would have. There is nobody to tell of an error.
            return;
        }
        // Collected in another thread: the lock stays with its thread, and
        // goes when that thread ends.
        Python::attach(|py| {
            let warning = py.get_type::<PyResourceWarning>();
            let _ = PyErr::warn(
                py,
                &warning,
                c"a shmbox.LockGuard was collected by another thread than the one holding it; the lock stays held until that thread ends (release it, or use a with block)",
                1,
            );
        });
    }
}

#[pymethods]
impl LockGuard {
    /// Releases the lock, committing what was written under it, and returns
    /// the segment's generation.
    ///
    /// Raises LockError if it was already released, or if called from a
    /// thread other than the one that took it.
    fn release(&self, py: Python<'_>) -> PyResult<u64> {
        let guard = take(self.id).ok_or_else(|| self.not_here(py))?;
        guard.unlock().py_err(py)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Releases the lock unless ``release()`` already did.
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        if let Some(guard) = take(self.id) {
            guard.unlock().py_err(py)?;
        } else if self.is_live() {
            return Err(self.not_here(py));
        }
        Ok(false)
    }

    /// None, or how the lock was taken over from a holder that died.
    #[getter]
    fn owner_died(&self) -> Option<OwnerDied> {
        self.owner_died.clone()
    }

    /// False if a writer died in the middle of a write and nobody has
    /// repaired the data since: it may be torn.
    #[getter]
    fn consistent(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |guard| guard.is_consistent())
    }

    /// Whether the lock is still held (not yet released).
    #[getter]
    fn held(&self) -> bool {
        self.is_live()
    }

    /// Declares the data consistent as it is: releasing the lock then
    /// commits a new generation.
    fn mark_consistent(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |guard| guard.mark_consistent())
    }

    /// The SharedMemory's ``buf``, for changing in place under the lock.
    ///
    /// Taking it starts a write: ``read_consistent()`` in other processes
    /// waits for it, and releasing the lock commits it (a new generation)
    /// and wakes ``wait_for_change()``.
    #[getter]
    fn buf(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |guard| guard.mark_consistent())?;
        self.shm.bind(py).get().buf(py)
    }

    /// Reads up to ``size`` bytes (all, if None) from ``offset``, through
    /// the held lock.
    #[pyo3(signature = (size=None, offset=0))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        size: Option<i64>,
        offset: i64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let offset = index(py, "offset", offset)?;
        let n = clamped_len(py, &self.segment, offset, size)?;
        PyBytes::new_with(py, n, |buf| {
            self.with(py, |guard| guard.read_into(offset, buf))?
                .py_err(py)
                .map(drop)
        })
    }

    /// Writes ``data`` at ``offset`` through the held lock, clamped to the
    /// size, and returns how many bytes were written. Commits on release.
    #[pyo3(signature = (data, offset=0))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>, offset: i64) -> PyResult<usize> {
        let offset = index(py, "offset", offset)?;
        let data = bytes_of(data)?;
        let data = data.as_slice();
        self.with(py, |guard| guard.write(offset, data))?.py_err(py)
    }

    fn __repr__(&self) -> String {
        let state = if self.held() { "held" } else { "released" };
        format!("<shmbox.LockGuard of {:?}, {state}>", self.name())
    }
}
