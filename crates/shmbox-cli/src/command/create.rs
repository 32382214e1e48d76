//! `shmbox create NAME --size BYTES [--mode OCTAL]`

use std::process::ExitCode;

use shmbox::{Lifetime, Location, SegmentOptions};

use super::Outcome;
use crate::note;
use crate::size::human;

pub fn run(at: &Location, name: &str, size: usize, mode: u32) -> Outcome {
    // Persistent: this process exits at once, and the segment must outlive it.
    SegmentOptions::new()
        .lifetime(Lifetime::Persistent)
        .mode(mode)
        .create_at(at, name, size)?;
    if !at.is_local() {
        note!(
            "created {name:?} at {at}: {} ({size} bytes), persistent",
            human(size as u64)
        );
        return Ok(ExitCode::SUCCESS);
    }
    note!(
        "created {name:?}: {} ({size} bytes), persistent, mode {mode:04o}",
        human(size as u64)
    );
    if mode & 0o002 != 0 {
        note!(
            "shmbox: warning: mode {mode:04o} lets every user write {name:?}, so shmbox \
             refuses to open it unless told to trust such segments; share it through a \
             group instead (--mode 660)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
