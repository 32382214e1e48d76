//! `shmbox lock NAME [--timeout SECS] -- COMMAND [ARGS...]`
//!
//! # Safety
//!
//! On Unix the child is set up between fork and exec (`pre_exec`), where
//! only async-signal-safe calls are allowed; this module makes those calls,
//! and sets signal dispositions around the wait.
#![allow(unsafe_code)]

use std::ffi::OsString;
use std::io;
use std::process::{Command, ExitCode, ExitStatus};
use std::time::Duration;

use shmbox::{Location, SegmentOptions};

use super::Outcome;
use crate::error::CliError;
use crate::note;

pub fn run(at: &Location, name: &str, timeout: Duration, command: &[OsString]) -> Outcome {
    let seg = SegmentOptions::new().open_at(at, name)?;
    let guard = seg.lock_timeout(timeout)?;
    if let Some(died) = guard.owner_died() {
        let mut pid = died.pid.map_or(String::from("?"), |p| p.to_string());
        if let Some(host) = guard.owner_died_host() {
            pid = format!("{pid} on {host}");
        }
        let torn = if died.mid_write {
            "; it died in the middle of a write, so the data may be torn"
        } else {
            ""
        };
        note!(
            "shmbox: acquired the lock of {name:?} from pid {pid}, which had died holding it{torn}"
        );
    }

    let (program, args) = command.split_first().expect("clap requires a command");
    let mut child = Command::new(program);
    child.args(args);
    let status = {
        let _guarded = Guarded::prepare(&mut child);
        child.status()
    };
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            let program = program.to_string_lossy();
            let (code, what) = match e.kind() {
                io::ErrorKind::NotFound => (127, "command not found"),
                io::ErrorKind::PermissionDenied => (126, "command cannot be run"),
                _ => (126, "could not start the command"),
            };
            note!(
                "shmbox: error: {}",
                CliError::new(format!("{what}: {program}: {e}"))
            );
            return Ok(ExitCode::from(code));
        }
    };
    // A remote lock whose lease was lost meanwhile is an error: the command
    // ran without the lock's protection for a while.
    guard.unlock()?;
    Ok(ExitCode::from(u8::try_from(exit_code(status)).unwrap_or(1)))
}

/// The status a shell would give: the code, or 128 + the killing signal.
fn exit_code(status: ExitStatus) -> i32 {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return 128 + signal;
    }
    status.code().unwrap_or(1)
}

/// While alive, this process ignores interrupts (they reach the command,
/// which is in the same process group), and the command is set to die if
/// this process does.
struct Guarded {
    #[cfg(unix)]
    previous: [libc::sighandler_t; 2],
}

#[cfg(unix)]
impl Guarded {
    fn prepare(child: &mut Command) -> Guarded {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: the closure runs in the child between fork and exec and only
        // makes async-signal-safe calls (prctl, signal, getppid); it touches no
        // lock or allocation of the parent.
        unsafe {
            child.pre_exec(move || {
                // The command runs under our lock: if this process dies, the
                // lock passes on, so the command must not go on unprotected.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::other(
                        "shmbox lock died before the command started",
                    ));
                }
                // We ignore these while the command runs; it must not.
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGQUIT, libc::SIG_DFL);
                Ok(())
            });
        }
        // Like system(3): a Ctrl-C reaches the command too; we wait for it to
        // finish, and release the lock after it.
        // SAFETY: setting a signal to SIG_IGN installs no handler code.
        let previous = unsafe {
            [
                libc::signal(libc::SIGINT, libc::SIG_IGN),
                libc::signal(libc::SIGQUIT, libc::SIG_IGN),
            ]
        };
        Guarded { previous }
    }
}

#[cfg(unix)]
impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: restores the dispositions `prepare` replaced.
        unsafe {
            libc::signal(libc::SIGINT, self.previous[0]);
            libc::signal(libc::SIGQUIT, self.previous[1]);
        }
    }
}

#[cfg(not(unix))]
impl Guarded {
    fn prepare(_: &mut Command) -> Guarded {
        Guarded {}
    }
}
