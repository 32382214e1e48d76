//! shmbox's errors as Python exceptions, whose classes live in
//! `shmbox/_errors.py` (Python classes can inherit from both `shmbox.Error`
//! and a built-in type such as `FileNotFoundError`).

use std::error::Error as _;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception class `name` of `shmbox._errors`.
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let module = ERRORS_MODULE.get_or_try_init(py, || {
        PyModule::import(py, "shmbox._errors").map(Bound::unbind)
    })?;
    module.bind(py).getattr(name)
}

/// An exception of class `name`, made with `args`; if that fails, the
/// failure (which says why).
fn make<'py>(py: Python<'py>, name: &str, args: impl pyo3::call::PyCallArgs<'py>) -> PyErr {
    match class(py, name).and_then(|class| class.call1(args)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(failure) => failure,
    }
}

/// An exception of the binding's own making (`ClosedError`, `LockError`,
/// `InvalidArgumentError`...).
pub(crate) fn new_error(py: Python<'_>, class_name: &str, message: String, segment: &str) -> PyErr {
    make(py, class_name, (message, segment))
}

/// An `InvalidArgumentError` (a `ValueError`) about no particular segment.
pub(crate) fn invalid_argument(py: Python<'_>, message: String) -> PyErr {
    make(py, "InvalidArgumentError", (message,))
}

/// Whether `err` is the `ForkedError` of a handle inherited through fork().
pub(crate) fn is_forked(py: Python<'_>, err: &PyErr) -> bool {
    class(py, "ForkedError").is_ok_and(|class| err.value(py).is_instance(&class).unwrap_or(false))
}

/// The Python exception for a shmbox error: its message, with the system's
/// error after a colon where there is one, and its segment's name.
pub(crate) fn to_py(py: Python<'_>, err: shmbox::Error) -> PyErr {
    use shmbox::Error as E;
    let class_name = match &err {
        E::InvalidName { .. }
        | E::InvalidSize { .. }
        | E::InvalidMode { .. }
        | E::OutOfRange { .. }
        | E::OutOfBounds { .. } => "InvalidArgumentError",
        E::NotFound { .. } => "NotFoundError",
        E::AlreadyExists { .. } => "ExistsError",
        E::SizeMismatch { .. } => "SizeMismatchError",
        E::Forked { .. } => "ForkedError",
        E::Timeout { .. } => "WaitTimeoutError",
        E::IncompatibleVersion { .. } => "IncompatibleVersionError",
        E::NotInitialized { .. } => "NotInitializedError",
        E::Corrupt { .. } => "CorruptError",
        E::ForeignOwner { .. } | E::WritableByOthers { .. } | E::PermissionDenied { .. } => {
            "AccessError"
        }
        E::Truncated { .. } => "TruncatedError",
        E::Inconsistent { .. } => "InconsistentError",
        E::Busy { .. } => "BusyError",
        E::NoSpace { .. } => "NoSpaceError",
        E::Unsupported { .. } => "UnsupportedError",
        E::Io { .. } => "SystemCallError",
        _ => "Error",
    };
    // The core's hints name Rust functions; these say it in Python.
    let mut message = match &err {
        E::NotFound { name } => format!(
            "no segment named {name:?} (create it first, with \
             SharedMemory({name:?}, create=True, size=N))"
        ),
        E::AlreadyExists { name } => format!(
            "a segment named {name:?} already exists (attach to it with \
             SharedMemory({name:?}), or choose another name)"
        ),
        E::SizeMismatch {
            name,
            existing,
            requested,
        } => format!(
            "segment {name:?} holds {existing} bytes, not the {requested} asked for \
             (attach with size=0 to take it as it is)"
        ),
        _ => err.to_string(),
    };
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let segment = err
        .segment_name()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    match err {
        E::Inconsistent { generation, .. } => make(py, class_name, (message, segment, generation)),
        _ => make(py, class_name, (message, segment)),
    }
}

/// `to_py` for results.
pub(crate) trait IntoPyResult<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for shmbox::Result<T> {
    #[inline]
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|err| to_py(py, err))
    }
}
