//! `shmbox rm NAME`

use std::process::ExitCode;

use super::Outcome;
use crate::note;

pub fn run(name: &str) -> Outcome {
    shmbox::remove(name)?;
    note!("removed {name:?}");
    Ok(ExitCode::SUCCESS)
}
