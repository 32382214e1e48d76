//! `shmbox read NAME [--offset N] [--len N] [--format ...]`

use std::process::ExitCode;
use std::time::Duration;

use shmbox::{Location, SegmentOptions};

use super::Outcome;
use crate::cli::Format;
use crate::output::write_bytes;

pub fn run(
    at: &Location,
    name: &str,
    offset: usize,
    len: Option<usize>,
    timeout: Duration,
    format: Format,
) -> Outcome {
    let seg = SegmentOptions::new().timeout(timeout).open_at(at, name)?;
    // Without the lock: a reader never holds up writers, and never gets a
    // copy that mixes two writes.
    let snapshot = seg.read_consistent(offset, len.unwrap_or(usize::MAX))?;
    write_bytes(
        &mut std::io::stdout().lock(),
        &snapshot.data,
        offset,
        format,
    )?;
    Ok(ExitCode::SUCCESS)
}
