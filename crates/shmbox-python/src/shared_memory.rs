//! `SharedMemory`: the stdlib's class, over a shmbox segment.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyTuple, PyType};
use shmbox::{Lifetime, Segment, SegmentOptions, WaitFor};

use crate::errors::{IntoPyResult, invalid_argument, is_forked, new_error, to_py};
use crate::guard::{LockGuard, hold, with_guard_on};
use crate::segment_info::SegmentInfo;
use crate::wait::{timed_out, timeout_from_secs, wait_detached};

/// The segment behind `.buf`: the ctypes array under the memoryview holds
/// one, so the mapping outlives `close()` while any view of it lives.
#[pyclass(module = "shmbox._shmbox", name = "_Mapping", frozen)]
pub(crate) struct Mapping {
    _segment: Arc<Segment>,
}

struct State {
    /// `None` once closed.
    segment: Option<Arc<Segment>>,
    /// The memoryview `.buf` returns, made on first use.
    buf: Option<Py<PyAny>>,
}

/// A named block of shared memory, as ``multiprocessing.shared_memory``'s
/// SharedMemory, with a lock between processes, torn-free reads and change
/// notification.
///
/// ``SharedMemory(name=None, create=False, size=0, *,
/// lifetime="until-last-close", timeout=5.0)``
///
/// - ``create=True`` makes a new segment of exactly ``size`` bytes (zeroed),
///   with a random name if ``name`` is None, and raises FileExistsError if
///   the name is taken. ``create=False`` attaches to an existing one and
///   raises FileNotFoundError if there is none; a ``size`` other than 0
///   must then match the segment's (else SizeMismatchError, a ValueError).
/// - ``lifetime="until-last-close"`` (the default): the segment goes when the
///   last process that has it open closes it, exits or dies.
///   ``"persistent"``: it stays until ``unlink()``. It applies on creation;
///   attaching takes the segment's own (see the ``lifetime`` attribute).
/// - ``timeout``: how long ``lock()``, ``read()`` and ``write()`` wait for a
///   lock that another process holds, in seconds; None waits for ever.
///
/// There is no resource tracker: nothing is unlinked behind your back, and
/// nothing leaks after a crash.
#[pyclass(module = "shmbox", subclass, weakref, frozen)]
pub(crate) struct SharedMemory {
    name: String,
    size: usize,
    lifetime: Lifetime,
    timeout: Option<Duration>,
    state: Mutex<State>,
}

/// Options that make every operation try once and never block: the binding
/// waits itself, outside the interpreter (`wait::wait_detached`).
fn options(lifetime: Lifetime) -> SegmentOptions {
    SegmentOptions::new()
        .lifetime(lifetime)
        .timeout(Duration::ZERO)
}

fn parse_lifetime(py: Python<'_>, lifetime: &str) -> PyResult<Lifetime> {
    match lifetime {
        "until-last-close" => Ok(Lifetime::UntilLastClose),
        "persistent" => Ok(Lifetime::Persistent),
        other => Err(invalid_argument(
            py,
            format!("lifetime must be \"until-last-close\" or \"persistent\", not {other:?}"),
        )),
    }
}

fn lifetime_str(lifetime: Lifetime) -> &'static str {
    match lifetime {
        Lifetime::Persistent => "persistent",
        _ => "until-last-close",
    }
}

/// An offset or count from Python, which must not be negative.
pub(crate) fn index(py: Python<'_>, what: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .map_err(|_| invalid_argument(py, format!("{what} must be 0 or more, not {value}")))
}

/// How many bytes a read of `size` (None: to the end) from `offset` gets,
/// clamped as the sample does; an offset past the end is an error.
pub(crate) fn clamped_len(
    py: Python<'_>,
    segment: &Segment,
    offset: usize,
    size: Option<i64>,
) -> PyResult<usize> {
    let available = segment.size().checked_sub(offset).ok_or_else(|| {
        to_py(
            py,
            shmbox::Error::OutOfRange {
                offset,
                size: segment.size(),
            },
        )
    })?;
    Ok(match size {
        None => available,
        Some(size) => index(py, "size", size)?.min(available),
    })
}

/// Bytes to write, from any object with the buffer protocol.
pub(crate) enum Data<'py> {
    Bytes(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl Data<'_> {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Data::Bytes(bytes) => bytes.as_bytes(),
            Data::Owned(vec) => vec,
        }
    }
}

/// `data` as bytes: `bytes` as they are; anything else with the buffer
/// protocol (bytearray, memoryview, array, numpy arrays...) copied first, so
/// that another thread changing it cannot race the write.
pub(crate) fn bytes_of<'py>(data: &Bound<'py, PyAny>) -> PyResult<Data<'py>> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(Data::Bytes(bytes.clone()));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return Ok(Data::Owned(array.to_vec()));
    }
    // A TypeError for objects without the buffer protocol (int, str...).
    let copy = PyMemoryView::from(data)?.call_method0("tobytes")?;
    Ok(Data::Bytes(copy.cast_into::<PyBytes>()?))
}

impl SharedMemory {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned state is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closed_error(&self, py: Python<'_>) -> PyErr {
        new_error(
            py,
            "ClosedError",
            format!("SharedMemory {:?} is closed", self.name),
            &self.name,
        )
    }

    /// The open segment, or ClosedError.
    fn segment(&self, py: Python<'_>) -> PyResult<Arc<Segment>> {
        self.state()
            .segment
            .clone()
            .ok_or_else(|| self.closed_error(py))
    }

    /// Runs `op` on the segment. In a child made by fork() (multiprocessing's
    /// default start method on Linux), the inherited handle cannot be used:
    /// the segment is opened again, and `op` run once more.
    fn run<T>(&self, py: Python<'_>, op: impl Fn(&Arc<Segment>) -> PyResult<T>) -> PyResult<T> {
        let segment = self.segment(py)?;
        match op(&segment) {
            Err(err) if is_forked(py, &err) => {
                let segment = self.reopen(py, &segment)?;
                op(&segment)
            }
            result => result,
        }
    }

    /// Opens the segment again in a child made by fork(), in place of the
    /// inherited handle `stale`. A `.buf` already made stays valid: the
    /// child inherited the mapping.
    fn reopen(&self, py: Python<'_>, stale: &Arc<Segment>) -> PyResult<Arc<Segment>> {
        let lifetime = self.lifetime;
        let name = self.name.clone();
        let fresh = py
            .detach(move || options(lifetime).open(&name))
            .py_err(py)?;
        if fresh.size() != self.size {
            return Err(to_py(
                py,
                shmbox::Error::SizeMismatch {
                    name: self.name.clone(),
                    existing: fresh.size(),
                    requested: self.size,
                },
            ));
        }
        let mut state = self.state();
        match &state.segment {
            Some(current) if Arc::ptr_eq(current, stale) => {
                let fresh = Arc::new(fresh);
                state.segment = Some(Arc::clone(&fresh));
                Ok(fresh)
            }
            Some(current) => Ok(Arc::clone(current)),
            None => Err(self.closed_error(py)),
        }
    }

    /// `.buf`, made on first use.
    pub(crate) fn buf(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(buf) = &self.state().buf {
            return Ok(buf.clone_ref(py));
        }
        let segment = self.segment(py)?;
        static VIEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let view = VIEW.get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("shmbox._buffer")?.getattr("view")?.unbind())
        })?;
        let address = segment.data_ptr() as usize;
        let keeper = Py::new(py, Mapping { _segment: segment })?;
        let buf = view.call1(py, (address, self.size, keeper))?;
        let mut state = self.state();
        if state.segment.is_none() {
            return Err(self.closed_error(py));
        }
        // Another thread may have made one meanwhile: keep the first.
        Ok(state.buf.get_or_insert(buf).clone_ref(py))
    }

    /// The lock's default wait, in seconds.
    fn timeout_secs(&self) -> Option<f64> {
        self.timeout.map(|t| t.as_secs_f64())
    }
}

#[pymethods]
impl SharedMemory {
    #[new]
    #[pyo3(
        signature = (name=None, create=false, size=0, *, lifetime="until-last-close", timeout=Some(5.0)),
        text_signature = "(name=None, create=False, size=0, *, lifetime='until-last-close', timeout=5.0)"
    )]
    fn new(
        py: Python<'_>,
        name: Option<String>,
        create: bool,
        size: i64,
        lifetime: &str,
        timeout: Option<f64>,
    ) -> PyResult<SharedMemory> {
        let lifetime = parse_lifetime(py, lifetime)?;
        let timeout = timeout_from_secs(py, timeout)?;
        let size = usize::try_from(size).map_err(|_| {
            invalid_argument(py, format!("'size' must be a positive integer, not {size}"))
        })?;
        let segment = match (name, create) {
            (None, false) => {
                return Err(invalid_argument(
                    py,
                    "'name' can only be None if create=True".to_owned(),
                ));
            }
            (_, true) if size == 0 => {
                return Err(invalid_argument(
                    py,
                    "'size' must be a positive number different from zero".to_owned(),
                ));
            }
            (Some(name), true) => py
                .detach(|| options(lifetime).create(&name, size))
                .py_err(py)?,
            (None, true) => create_with_random_name(py, lifetime, size)?,
            (Some(name), false) => {
                let segment = py.detach(|| options(lifetime).open(&name)).py_err(py)?;
                if size != 0 && size != segment.size() {
                    return Err(to_py(
                        py,
                        shmbox::Error::SizeMismatch {
                            name,
                            existing: segment.size(),
                            requested: size,
                        },
                    ));
                }
                segment
            }
        };
        Ok(SharedMemory {
            name: segment.name().as_str().to_owned(),
            size: segment.size(),
            lifetime: segment.lifetime(),
            timeout,
            state: Mutex::new(State {
                segment: Some(Arc::new(segment)),
                buf: None,
            }),
        })
    }

    /// The segment's name: pass it to ``SharedMemory(name)`` in another
    /// process, or to the ``shmbox`` command.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The size in bytes: exactly the size it was created with, in every
    /// process.
    #[getter]
    fn size(&self) -> usize {
        self.size
    }

    /// ``"until-last-close"`` or ``"persistent"``.
    #[getter]
    fn lifetime(&self) -> &'static str {
        lifetime_str(self.lifetime)
    }

    /// The default wait of ``lock()``, ``read()`` and ``write()``, in
    /// seconds (None: for ever).
    #[getter]
    fn timeout(&self) -> Option<f64> {
        self.timeout_secs()
    }

    /// Whether ``close()`` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.state().segment.is_none()
    }

    /// A writable memoryview of the whole segment, exactly ``size`` bytes.
    ///
    /// Other processes may change these bytes at any moment. Take
    /// ``lock()`` around what must not interleave with other writers (and
    /// use ``LockGuard.buf`` to have the change committed and announced), or
    /// ``read_consistent()`` to copy whole values without a lock.
    ///
    /// After ``close()`` it raises ClosedError; views taken before stay
    /// valid (the memory stays mapped while any of them lives).
    #[getter(buf)]
    fn py_buf(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.buf(py)
    }

    /// The number of writes committed so far, by any process.
    #[getter]
    fn generation(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.segment(py)?.generation())
    }

    /// Closes this handle. ``buf`` is unusable afterwards; the segment
    /// itself stays for the other processes that have it open (and, if
    /// persistent, until ``unlink()``). Closing twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let (segment, buf) = {
            let mut state = self.state();
            (state.segment.take(), state.buf.take())
        };
        if let Some(buf) = buf {
            // Views made from it by buffer exports keep the memory mapped;
            // then release() refuses, and dropping our reference is enough.
            if let Err(err) = buf.call_method0(py, "release")
                && !err.is_instance_of::<pyo3::exceptions::PyBufferError>(py)
            {
                return Err(err);
            }
        }
        drop(segment);
        Ok(())
    }

    /// Removes a persistent segment's name, as the stdlib's ``unlink()``:
    /// processes that have it open keep using it, and the memory is freed
    /// when the last one closes it. Raises FileNotFoundError if the name is
    /// gone.
    ///
    /// An until-last-close segment needs no unlink: it goes when the last
    /// process closes it. For it, ``unlink()`` does nothing, so that code
    /// written for the stdlib (``close()`` then ``unlink()``) runs unchanged.
    fn unlink(&self, py: Python<'_>) -> PyResult<()> {
        if self.lifetime != Lifetime::Persistent {
            return Ok(());
        }
        let name = self.name.clone();
        py.detach(move || shmbox::remove(&name)).py_err(py)
    }

    /// Takes the segment's lock, waiting up to ``timeout`` seconds (None:
    /// the SharedMemory's timeout; math.inf: for ever), and returns a
    /// LockGuard to use in a ``with`` block.
    ///
    /// If the previous holder died holding it, even by SIGKILL, the lock is
    /// taken over and ``guard.owner_died`` says who, and whether it died in
    /// the middle of a write. Waiting releases the GIL. Raises TimeoutError
    /// (WaitTimeoutError) after the timeout, and LockError if this thread
    /// already holds it through this SharedMemory.
    #[pyo3(signature = (timeout=None))]
    fn lock(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<LockGuard> {
        let py = slf.py();
        let this = slf.get();
        let timeout = match timeout {
            None => this.timeout,
            Some(t) => timeout_from_secs(py, Some(t))?,
        };
        let (segment, held, died) = this.run(py, |segment| {
            if with_guard_on(segment, |_| ()).is_some() {
                return Err(new_error(
                    py,
                    "LockError",
                    format!(
                        "this thread already holds the lock of segment {:?} through this \
                         SharedMemory (the lock is not reentrant)",
                        this.name
                    ),
                    &this.name,
                ));
            }
            let taken = match segment.lock_arc_timeout(Duration::ZERO) {
                Err(shmbox::Error::Timeout { .. }) if timeout != Some(Duration::ZERO) => {
                    wait_detached(py, &this.name, WaitFor::Lock, timeout, |slice| {
                        let guard = segment.lock_arc_timeout(slice)?;
                        let died = guard.owner_died();
                        Ok((hold(guard), died))
                    })?
                }
                Err(shmbox::Error::Timeout { .. }) => {
                    return Err(timed_out(py, &this.name, WaitFor::Lock, Duration::ZERO));
                }
                taken => {
                    let guard = taken.py_err(py)?;
                    let died = guard.owner_died();
                    (hold(guard), died)
                }
            };
            Ok((Arc::clone(segment), taken.0, taken.1))
        })?;
        Ok(LockGuard::new(held, segment, slf.clone().unbind(), died))
    }

    /// Writes ``data`` (bytes, bytearray, memoryview, or anything with the
    /// buffer protocol) at ``offset`` under the lock, and returns how many
    /// bytes were written: as many as fit before the end, as in the sample.
    /// Commits a new generation and wakes ``wait_for_change()``.
    ///
    /// Raises ValueError (InvalidArgumentError) for an offset past the end,
    /// and TimeoutError after the timeout. In a thread that holds the lock
    /// through this SharedMemory, writes through that lock (committed on
    /// release).
    #[pyo3(signature = (data, offset=0))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>, offset: i64) -> PyResult<usize> {
        let offset = index(py, "offset", offset)?;
        let data = bytes_of(data)?;
        let data = data.as_slice();
        self.run(py, |segment| {
            if let Some(written) = with_guard_on(segment, |guard| guard.write(offset, data)) {
                return written.py_err(py);
            }
            match segment.write(offset, data) {
                Err(shmbox::Error::Timeout { .. }) => self.wait_to_write(py, segment, offset, data),
                written => written.py_err(py),
            }
        })
    }

    /// Reads ``size`` bytes (None: to the end) from ``offset`` under the
    /// lock; fewer if the segment ends first.
    ///
    /// Raises InconsistentError if a writer died in the middle of a write
    /// and nobody repaired the data since, and TimeoutError after the
    /// timeout.
    #[pyo3(signature = (size=None, offset=0))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        size: Option<i64>,
        offset: i64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let offset = index(py, "offset", offset)?;
        self.run(py, |segment| {
            let n = clamped_len(py, segment, offset, size)?;
            PyBytes::new_with(py, n, |buf| {
                if let Some(read) = with_guard_on(segment, |guard| guard.read_into(offset, buf)) {
                    return read.py_err(py).map(drop);
                }
                match segment.read_into(offset, buf) {
                    Err(shmbox::Error::Timeout { .. }) => {
                        self.wait_to_read(py, segment, offset, buf)
                    }
                    read => read.py_err(py).map(drop),
                }
            })
        })
    }

    /// Copies ``size`` bytes (None: to the end) from ``offset`` without
    /// taking the lock, and returns ``(data, generation)``: whole data as one
    /// write committed it, never torn, and the generation it belongs to.
    ///
    /// It never delays writers. It waits (releasing the GIL) only while a
    /// write is in progress, up to the SharedMemory's timeout.
    #[pyo3(signature = (offset=0, size=None))]
    fn read_consistent<'py>(
        &self,
        py: Python<'py>,
        offset: i64,
        size: Option<i64>,
    ) -> PyResult<(Bound<'py, PyBytes>, u64)> {
        let offset = index(py, "offset", offset)?;
        self.run(py, |segment| {
            let n = clamped_len(py, segment, offset, size)?;
            let mut generation = 0;
            let data = PyBytes::new_with(py, n, |buf| {
                // This thread's own write in progress would never end.
                if let Some(read) = with_guard_on(segment, |guard| guard.read_into(offset, buf)) {
                    generation = segment.generation();
                    return read.py_err(py).map(drop);
                }
                let copied = match segment.read_consistent_into_timeout(offset, buf, Duration::ZERO)
                {
                    Err(shmbox::Error::Timeout { .. }) if self.timeout != Some(Duration::ZERO) => {
                        wait_detached(
                            py,
                            &self.name,
                            WaitFor::ConsistentRead,
                            self.timeout,
                            |slice| segment.read_consistent_into_timeout(offset, buf, slice),
                        )?
                    }
                    copied => copied.py_err(py)?,
                };
                generation = copied.generation;
                Ok(())
            })?;
            Ok((data, generation))
        })
    }

    /// Waits until a write is committed, by any process, after generation
    /// ``since``, and returns the new generation; at once if it is already
    /// other than ``since``. Releases the GIL while it waits.
    ///
    /// ``timeout`` in seconds; None waits for ever. Raises TimeoutError
    /// (WaitTimeoutError) if nothing was committed in time.
    #[pyo3(signature = (since, timeout=None))]
    fn wait_for_change(&self, py: Python<'_>, since: u64, timeout: Option<f64>) -> PyResult<u64> {
        let timeout = timeout_from_secs(py, timeout)?;
        self.run(py, |segment| {
            let now = segment.generation();
            if now != since {
                return Ok(now);
            }
            if timeout == Some(Duration::ZERO) {
                return Err(timed_out(py, &self.name, WaitFor::Change, Duration::ZERO));
            }
            wait_detached(py, &self.name, WaitFor::Change, timeout, |slice| {
                segment.wait_for_change(since, slice)
            })
        })
    }

    /// The segment's header and metadata: size, lifetime, generation, who
    /// holds the lock, the last writer, and more.
    fn info(&self, py: Python<'_>) -> PyResult<SegmentInfo> {
        self.run(py, |segment| {
            segment.info().map(SegmentInfo::from).py_err(py)
        })
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes the handle (it does not unlink).
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Pickled by name: unpickling attaches to the segment, as the stdlib's
    /// does (so a SharedMemory passed to a multiprocessing child works
    /// there).
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        static ATTACH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let attach = ATTACH.get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("shmbox._shmbox")?.getattr("_attach")?.unbind())
        })?;
        let args = (
            slf.get_type(),
            this.name.clone(),
            this.size,
            this.timeout_secs(),
        )
            .into_pyobject(py)?;
        Ok((attach.bind(py).clone(), args))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let this = slf.get();
        let class = slf.get_type().qualname()?;
        let name = pyo3::types::PyString::new(slf.py(), &this.name).repr()?;
        Ok(format!("{class}({name}, size={})", this.size))
    }
}

impl SharedMemory {
    /// `write` once the lock was busy: waits for it outside the interpreter.
    #[cold]
    fn wait_to_write(
        &self,
        py: Python<'_>,
        segment: &Segment,
        offset: usize,
        data: &[u8],
    ) -> PyResult<usize> {
        if self.timeout == Some(Duration::ZERO) {
            return Err(timed_out(py, &self.name, WaitFor::Lock, Duration::ZERO));
        }
        wait_detached(py, &self.name, WaitFor::Lock, self.timeout, |slice| {
            let mut guard = segment.lock_timeout(slice)?;
            let written = guard.write(offset, data)?;
            guard.unlock()?;
            Ok(written)
        })
    }

    /// `read` once the lock was busy: waits for it outside the interpreter.
    #[cold]
    fn wait_to_read(
        &self,
        py: Python<'_>,
        segment: &Segment,
        offset: usize,
        buf: &mut [u8],
    ) -> PyResult<()> {
        if self.timeout == Some(Duration::ZERO) {
            return Err(timed_out(py, &self.name, WaitFor::Lock, Duration::ZERO));
        }
        wait_detached(py, &self.name, WaitFor::Lock, self.timeout, |slice| {
            let guard = segment.lock_timeout(slice)?;
            if !guard.is_consistent() {
                return Err(shmbox::Error::Inconsistent {
                    name: segment.name().to_string(),
                    generation: segment.generation(),
                });
            }
            guard.read_into(offset, buf)?;
            guard.unlock()?;
            Ok(())
        })
    }
}

/// Creates a segment with a fresh random name, as the stdlib does
/// (``psm_`` and hexadecimal digits).
fn create_with_random_name(py: Python<'_>, lifetime: Lifetime, size: usize) -> PyResult<Segment> {
    let urandom = py.import("os")?.getattr("urandom")?;
    for _ in 0..100 {
        let random: Vec<u8> = urandom.call1((8,))?.extract()?;
        let name: String = std::iter::once("psm_".to_owned())
            .chain(random.iter().map(|b| format!("{b:02x}")))
            .collect();
        match py.detach(|| options(lifetime).create(&name, size)) {
            Err(shmbox::Error::AlreadyExists { .. }) => continue,
            created => return created.py_err(py),
        }
    }
    Err(new_error(
        py,
        "ExistsError",
        "100 random names in a row were taken".to_owned(),
        "",
    ))
}

/// Unpickles a SharedMemory: attaches to the segment by name.
#[pyfunction]
pub(crate) fn _attach(
    cls: &Bound<'_, PyType>,
    name: String,
    size: usize,
    timeout: Option<f64>,
) -> PyResult<Py<PyAny>> {
    let kwargs = pyo3::types::PyDict::new(cls.py());
    kwargs.set_item("timeout", timeout)?;
    Ok(cls.call((name, false, size), Some(&kwargs))?.unbind())
}
