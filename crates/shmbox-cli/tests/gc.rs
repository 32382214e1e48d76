//! `shmbox gc`, in a test binary of its own: every shmbox call on the
//! machine reclaims dead segments on the way, so `gc` can only be shown to
//! find one when no other test runs shmbox meanwhile (cargo runs test
//! binaries one after another).
#![allow(unsafe_code)] // fork, for a process that dies holding a segment
#![cfg(target_os = "linux")]

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

const SHMBOX: &str = env!("CARGO_BIN_EXE_shmbox");

fn shmbox() -> Command {
    let mut cmd = Command::new(SHMBOX);
    cmd.timeout(std::time::Duration::from_secs(30));
    cmd
}

#[test]
fn gc_removes_until_last_close_segments_whose_holders_died() {
    let name = format!("test-cli-gc-{}", std::process::id());
    let path = format!("/dev/shm/shmbox.{name}");
    let _cleanup = Cleanup(path.clone());
    // A process that makes an until-last-close segment and dies without
    // closing it: nobody is left to remove it, and nothing does on its own.
    // SAFETY: the child only creates the segment and calls `_exit`; glibc
    // makes malloc safe to use in the child of a multithreaded process.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let made = shmbox::Segment::create(&name, 64);
        // SAFETY: ends the child at once, with the segment still open and no
        // destructor run: it is left behind as if the child had crashed.
        unsafe { libc::_exit(i32::from(made.is_err())) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert!(std::path::Path::new(&path).exists(), "left behind");
    shmbox()
        .arg("gc")
        .assert()
        .success()
        .stderr(contains(format!("removed {}: its holders all died", &name)));
    assert!(!std::path::Path::new(&path).exists());
    shmbox()
        .arg("gc")
        .assert()
        .success()
        .stderr(contains(name.as_str()).not());
}

/// Removes the file when dropped, whatever happened.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
