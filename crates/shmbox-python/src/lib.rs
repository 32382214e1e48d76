//! The extension module `shmbox._shmbox`, which the Python package `shmbox`
//! (python/shmbox/__init__.py) re-exports.
//!
//! Calls that may wait make one attempt that never blocks while holding the
//! interpreter, and wait outside it only when that attempt fails (see
//! `wait.rs`): the common, uncontended call costs no GIL round trip.

use pyo3::prelude::*;

mod errors;
mod guard;
mod segment_info;
mod shared_memory;
mod wait;

use errors::IntoPyResult;
use segment_info::SegmentInfo;

/// Every segment on this machine that this user may see, as SegmentInfo.
/// Segments whose holders all died are removed on the way.
#[pyfunction]
fn list(py: Python<'_>) -> PyResult<Vec<SegmentInfo>> {
    let infos = py.detach(shmbox::list).py_err(py)?;
    Ok(infos.into_iter().map(SegmentInfo::from).collect())
}

/// The SegmentInfo of the segment ``name``, without attaching to it.
#[pyfunction]
#[pyo3(name = "info")]
fn segment_info_of(py: Python<'_>, name: String) -> PyResult<SegmentInfo> {
    py.detach(move || shmbox::info(&name))
        .map(SegmentInfo::from)
        .py_err(py)
}

/// Removes the segment ``name``: processes that have it open keep using it.
/// An until-last-close segment that another process has open is refused
/// with BusyError (it goes when the last one closes it).
#[pyfunction]
fn remove(py: Python<'_>, name: String) -> PyResult<()> {
    py.detach(move || shmbox::remove(&name)).py_err(py)
}

/// Removes every until-last-close segment whose holders all died, and
/// returns their names. shmbox does this lazily anyway; call it to do it now.
#[pyfunction]
fn reclaim(py: Python<'_>) -> PyResult<Vec<String>> {
    let names = py.detach(shmbox::reclaim).py_err(py)?;
    Ok(names.into_iter().map(|n| n.as_str().to_owned()).collect())
}

/// Opt-in: turns a fault on a segment that another process cut short
/// (truncated) from a crash of the interpreter (SIGBUS) into reads of
/// zeros, with TruncatedError from every shmbox call on it. It installs a
/// process-wide SIGBUS handler, which is why it is not done by default;
/// other SIGBUS signals go to the handler that was there before.
#[pyfunction]
fn install_sigbus_handler(py: Python<'_>) -> PyResult<()> {
    shmbox::install_sigbus_handler().py_err(py)
}

#[pymodule]
fn _shmbox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<shared_memory::SharedMemory>()?;
    m.add_class::<guard::LockGuard>()?;
    m.add_class::<guard::OwnerDied>()?;
    m.add_class::<SegmentInfo>()?;
    m.add_class::<shared_memory::Mapping>()?;
    m.add_function(wrap_pyfunction!(list, m)?)?;
    m.add_function(wrap_pyfunction!(segment_info_of, m)?)?;
    m.add_function(wrap_pyfunction!(remove, m)?)?;
    m.add_function(wrap_pyfunction!(reclaim, m)?)?;
    m.add_function(wrap_pyfunction!(install_sigbus_handler, m)?)?;
    m.add_function(wrap_pyfunction!(shared_memory::_attach, m)?)?;
    Ok(())
}
