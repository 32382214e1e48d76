//! Waiting without holding the interpreter: other Python threads run, and
//! Ctrl-C interrupts the wait.

use std::time::{Duration, Instant};

use pyo3::prelude::*;
use shmbox::{Error, WaitFor};

use crate::errors::to_py;

/// The longest stretch spent outside the interpreter before checking for
/// signals (KeyboardInterrupt): short enough to feel immediate.
const SLICE: Duration = Duration::from_millis(50);

/// A timeout in seconds from Python: a finite number ≥ 0; `None` or
/// infinity for no limit.
pub(crate) fn timeout_from_secs(py: Python<'_>, secs: Option<f64>) -> PyResult<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s == f64::INFINITY => Ok(None),
        Some(s) if s >= 0.0 => Duration::try_from_secs_f64(s)
            .map(Some)
            .map_err(|_| crate::errors::invalid_argument(py, format!("timeout {s} is too large"))),
        Some(s) => Err(crate::errors::invalid_argument(
            py,
            format!("timeout must be a number of seconds ≥ 0, or math.inf for no limit, not {s}"),
        )),
    }
}

/// Calls `attempt` outside the interpreter with slices of at most `SLICE`
/// of `total` (`None`: no limit) until it returns anything but a timeout,
/// or `total` has passed. Between slices it checks for signals, so a
/// KeyboardInterrupt ends the wait.
///
/// The caller has already made an attempt that did not wait, with the
/// interpreter held: most calls never get here.
pub(crate) fn wait_detached<T: Send>(
    py: Python<'_>,
    segment: &str,
    waiting_for: WaitFor,
    total: Option<Duration>,
    mut attempt: impl FnMut(Duration) -> shmbox::Result<T> + Send,
) -> PyResult<T> {
    let deadline = total.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match deadline {
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .min(SLICE),
            None => SLICE,
        };
        match py.detach(|| attempt(slice)) {
            Err(Error::Timeout { .. }) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(to_py(
                        py,
                        Error::Timeout {
                            name: segment.to_owned(),
                            waiting_for,
                            timeout: total.unwrap_or(Duration::MAX),
                        },
                    ));
                }
                py.check_signals()?;
            }
            other => return other.map_err(|err| to_py(py, err)),
        }
    }
}

/// The error for a wait of `total` that its first attempt already ended
/// (a timeout of zero).
pub(crate) fn timed_out(
    py: Python<'_>,
    segment: &str,
    waiting_for: WaitFor,
    total: Duration,
) -> PyErr {
    to_py(
        py,
        Error::Timeout {
            name: segment.to_owned(),
            waiting_for,
            timeout: total,
        },
    )
}
