//! `shmbox create NAME --size BYTES [--mode OCTAL]`

use std::process::ExitCode;

use shmbox::{Lifetime, SegmentOptions};

use super::Outcome;
use crate::note;
use crate::size::human;

pub fn run(name: &str, size: usize, mode: u32) -> Outcome {
    // Persistent: this process exits at once, and the segment must outlive it.
    SegmentOptions::new()
        .lifetime(Lifetime::Persistent)
        .mode(mode)
        .create(name, size)?;
    note!(
        "created {name:?}: {} ({size} bytes), persistent, mode {mode:04o}",
        human(size as u64)
    );
    Ok(ExitCode::SUCCESS)
}
