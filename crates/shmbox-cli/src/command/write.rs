//! `shmbox write NAME [TEXT] [--offset N] [--create SIZE]`

use std::ffi::OsString;
use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use shmbox::{Error, Lifetime, Location, SegmentOptions};

use super::Outcome;
use crate::error::{CliError, shell_word};
use crate::note;

pub fn run(
    at: &Location,
    name: &str,
    text: Option<OsString>,
    offset: usize,
    create: Option<usize>,
    timeout: Duration,
) -> Outcome {
    let data = match text {
        Some(text) => os_bytes(text),
        None => {
            let mut data = Vec::new();
            std::io::stdin().lock().read_to_end(&mut data)?;
            data
        }
    };
    let seg = match create {
        Some(size) => SegmentOptions::new()
            .lifetime(Lifetime::Persistent)
            .open_or_create_at(at, name, size),
        None => SegmentOptions::new().open_at(at, name),
    }
    .map_err(|e| match e {
        Error::NotFound { name } => CliError::new(format!(
            "no segment named {name:?} (create it with `shmbox create {} --size 1K`, or pass --create SIZE)",
            shell_word(&name)
        )),
        Error::SizeMismatch { name, existing, requested } => CliError::new(format!(
            "segment {name:?} holds {existing} bytes, not the {requested} given with --create \
             (drop --create, or give --create {existing})"
        )),
        e => e.into(),
    })?;
    if offset > seg.size() {
        return Err(Error::OutOfRange {
            offset,
            size: seg.size(),
        }
        .into());
    }
    let mut guard = seg.lock_timeout(timeout)?;
    if let Some(died) = guard.owner_died() {
        let mut pid = died.pid.map_or(String::from("?"), |p| p.to_string());
        if let Some(host) = guard.owner_died_host() {
            pid = format!("{pid} on {host}");
        }
        let torn = if died.mid_write {
            ", in the middle of a write"
        } else {
            ""
        };
        note!("recovered the lock of {name:?} from pid {pid}, which died holding it{torn}");
    }
    let written = guard.write(offset, &data)?;
    let generation = guard.unlock()?;
    note!("wrote {written} bytes at offset {offset} of {name:?} (generation {generation})");
    if written < data.len() {
        note!(
            "shmbox: warning: only {written} of {} bytes fit: {name:?} ends at byte {}, so {} bytes were cut off",
            data.len(),
            seg.size(),
            data.len() - written
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn os_bytes(text: OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    text.into_vec()
}

#[cfg(not(unix))]
fn os_bytes(text: OsString) -> Vec<u8> {
    text.to_string_lossy().into_owned().into_bytes()
}
