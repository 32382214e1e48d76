//! `shmbox info NAME [--json]` and `shmbox list [--json]`

use std::io::Write as _;
use std::process::ExitCode;

use serde::Serialize;
use shmbox::{LockState, SegmentInfo};

use super::Outcome;
use crate::output::{time, time_s};
use crate::size::human;

/// What `info --json` prints, and `list --json` prints an array of.
#[derive(Serialize)]
struct InfoJson {
    name: String,
    size: usize,
    format_version: u32,
    lifetime: String,
    generation: u64,
    consistent: bool,
    /// A live writer is in the middle of a write.
    writing: bool,
    /// `free`, `held`, or `abandoned` (its holder died).
    lock_state: &'static str,
    /// The live process that holds the lock.
    lock_owner_pid: Option<u32>,
    /// The dead process that held the lock, when abandoned.
    abandoned_by_pid: Option<u32>,
    last_writer_pid: Option<u32>,
    /// RFC 3339, UTC.
    last_write: Option<String>,
    creator_pid: Option<u32>,
    /// RFC 3339, UTC; null if the header holds no plausible time.
    created: Option<String>,
    owner_deaths: u32,
    /// Null on Windows, whose objects have no owner uid.
    owner_uid: Option<u32>,
    /// Octal, as a string: "0600"; null on Windows.
    mode: Option<String>,
    /// For a segment on a server: where, and the hosts involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<RemoteJson>,
}

#[derive(Serialize)]
struct RemoteJson {
    location: String,
    lock_holder_host: Option<String>,
    last_writer_host: Option<String>,
    creator_host: Option<String>,
    open_handles: u64,
}

impl From<&SegmentInfo> for InfoJson {
    fn from(i: &SegmentInfo) -> InfoJson {
        let (lock_state, lock_owner_pid, abandoned_by_pid) = match i.lock {
            LockState::Free => ("free", None, None),
            LockState::Held { pid } => ("held", pid, None),
            LockState::Abandoned { pid } => ("abandoned", None, pid),
            _ => ("unknown", None, None),
        };
        InfoJson {
            name: i.name.to_string(),
            size: i.size,
            format_version: i.format_version,
            lifetime: i.lifetime.to_string(),
            generation: i.generation,
            consistent: i.consistent,
            writing: i.writing,
            lock_state,
            lock_owner_pid,
            abandoned_by_pid,
            last_writer_pid: i.last_writer_pid,
            last_write: i.last_write.map(time_s),
            creator_pid: i.creator_pid,
            created: i.created.map(time),
            owner_deaths: i.owner_deaths,
            owner_uid: i.owner_uid,
            mode: i.mode.map(|m| format!("{m:04o}")),
            remote: i.remote.as_ref().map(|r| RemoteJson {
                location: r.location.clone(),
                lock_holder_host: r.lock_holder_host.clone(),
                last_writer_host: r.last_writer_host.clone(),
                creator_host: r.creator_host.clone(),
                open_handles: r.open_handles,
            }),
        }
    }
}

fn lock_text(lock: LockState) -> String {
    let pid = |p: Option<u32>| p.map_or(String::from("?"), |p| p.to_string());
    match lock {
        LockState::Free => "free".into(),
        LockState::Held { pid: p } => format!("held by pid {}", pid(p)),
        LockState::Abandoned { pid: p } => format!(
            "abandoned by pid {}, which died holding it (the next locker takes it over)",
            pid(p)
        ),
        _ => "unknown".into(),
    }
}

pub fn run_info(at: &shmbox::Location, name: &str, json: bool) -> Outcome {
    let info = shmbox::info_at(at, name)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &InfoJson::from(&info))
            .map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let remote = info.remote.as_ref();
    let on = |host: Option<&String>| host.map_or(String::new(), |h| format!(" on {h}"));
    let pid = |p: Option<u32>| p.map_or(String::from("?"), |p| p.to_string());
    let mut rows = vec![
        ("name", info.name.to_string()),
        (
            "size",
            format!("{} bytes ({})", info.size, human(info.size as u64)),
        ),
        ("format version", info.format_version.to_string()),
        ("lifetime", info.lifetime.to_string()),
        ("generation", info.generation.to_string()),
        (
            "consistent",
            if !info.consistent {
                "no: a writer died mid-write (write to the segment to repair it)".into()
            } else if info.writing {
                format!(
                    "a write is in progress (pid {} holds the lock); lock-free reads wait for \
                     its commit",
                    pid(info.lock_owner_pid())
                )
            } else {
                "yes".into()
            },
        ),
        (
            "lock",
            lock_text(info.lock) + &on(remote.and_then(|r| r.lock_holder_host.as_ref())),
        ),
        (
            "last write",
            match info.last_write {
                Some(t) => format!(
                    "by pid {}{} at {}",
                    pid(info.last_writer_pid),
                    on(remote.and_then(|r| r.last_writer_host.as_ref())),
                    time_s(t)
                ),
                None => "none yet".into(),
            },
        ),
        (
            "created",
            format!(
                "by pid {}{} at {}",
                pid(info.creator_pid),
                on(remote.and_then(|r| r.creator_host.as_ref())),
                info.created.map_or_else(|| "an unknown time".into(), time)
            ),
        ),
        ("owner deaths", info.owner_deaths.to_string()),
    ];
    // Windows objects have neither.
    if let (Some(uid), Some(mode)) = (info.owner_uid, info.mode) {
        rows.push(("owner", format!("uid {uid}, mode {mode:04o}")));
    }
    if let Some(r) = remote {
        rows.push(("location", r.location.clone()));
        if info.lifetime == shmbox::Lifetime::UntilLastClose {
            rows.push(("open handles", r.open_handles.to_string()));
        }
    }
    for (key, value) in rows {
        writeln!(out, "{:<15} {value}", format!("{key}:"))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_list(at: &shmbox::Location, json: bool) -> Outcome {
    let segments = shmbox::list_at(at)?;
    let mut out = std::io::stdout().lock();
    if json {
        let all: Vec<InfoJson> = segments.iter().map(InfoJson::from).collect();
        serde_json::to_writer_pretty(&mut out, &all).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = segments
        .iter()
        .map(|i| {
            let lock = match i.lock {
                LockState::Free => "free".to_string(),
                LockState::Held { .. } => "held".to_string(),
                LockState::Abandoned { .. } => "abandoned".to_string(),
                _ => "unknown".to_string(),
            };
            [
                i.name.to_string(),
                human(i.size as u64),
                i.lifetime.to_string(),
                i.generation.to_string(),
                lock,
            ]
        })
        .collect();
    let header = ["NAME", "SIZE", "LIFETIME", "GENERATION", "LOCK"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}
