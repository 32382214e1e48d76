//! `shmbox rm NAME`

use std::process::ExitCode;

use super::Outcome;
use crate::note;

pub fn run(at: &shmbox::Location, name: &str) -> Outcome {
    shmbox::remove_at(at, name)?;
    note!("removed {name:?}");
    Ok(ExitCode::SUCCESS)
}
