//! `shmbox watch NAME [--count N] [--timeout SECS] [--format ...]`

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use shmbox::{Error, Location, SegmentOptions};

use super::Outcome;
use crate::cli::Format;
use crate::error::{CliError, seconds};
use crate::note;
use crate::output::{text_of, time_s, write_bytes};

pub fn run(
    at: &Location,
    name: &str,
    count: Option<u64>,
    timeout: Option<Duration>,
    format: Format,
) -> Outcome {
    let seg = SegmentOptions::new().open_at(at, name)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let start = seg.generation()?;
    let mut seen = start;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|c| seen - start < c) {
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        };
        // Sleeps in the kernel until a writer commits: no polling.
        match seg.wait_for_change(seen, wait) {
            Ok(_) => {}
            Err(Error::Timeout { .. }) => break,
            Err(e) => return Err(e.into()),
        }
        let snapshot = match seg.read_consistent(0, seg.size()) {
            Ok(snapshot) => snapshot,
            Err(e @ Error::Inconsistent { .. }) => {
                note!("shmbox: warning: {}", CliError::from(e));
                seen = seg.generation()?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        seen = snapshot.generation.max(seen);
        if format == Format::Text {
            let info = seg.info()?;
            let mut pid = info
                .last_writer_pid
                .map_or(String::from("?"), |p| p.to_string());
            if let Some(host) = info
                .remote
                .as_ref()
                .and_then(|r| r.last_writer_host.as_ref())
            {
                pid = format!("{pid} on {host}");
            }
            let when = info.last_write.map_or(String::from("?"), time_s);
            writeln!(
                out,
                "[generation {}, pid {pid}, {when}] {}",
                snapshot.generation,
                text_of(&snapshot.data)
            )?;
            out.flush()?;
        } else {
            write_bytes(&mut out, &snapshot.data, 0, format)?;
        }
    }
    if let Some(c) = count {
        let seen_commits = seen - start;
        if seen_commits < c {
            return Err(CliError::new(format!(
                "saw {seen_commits} of {c} writes to {name:?} within {} (wait longer with --timeout)",
                seconds(timeout.unwrap_or_default())
            ))
            .into());
        }
    }
    Ok(ExitCode::SUCCESS)
}
