//! The `shmbox` command, run as a user would: every subcommand's happy path,
//! every error the contract names, binary data, `watch` across processes,
//! and `lock` killed with SIGKILL.
//!
//! Each test uses its own segment names, removes them, and bounds every wait.
#![allow(unsafe_code)]
// signals for killing helper processes
// Unix-only: /dev/shm, signals and modes; tests/windows.rs covers Windows.
#![cfg(unix)]

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

const SHMBOX: &str = env!("CARGO_BIN_EXE_shmbox");

fn shmbox() -> Command {
    let mut cmd = Command::new(SHMBOX);
    cmd.timeout(Duration::from_secs(30));
    cmd
}

/// A unique segment name, removed (if it still exists) when dropped.
struct Name(String);

impl Name {
    fn new(tag: &str) -> Name {
        static N: AtomicU32 = AtomicU32::new(0);
        Name(format!(
            "test-cli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/shmbox.{}", self.0));
    }
}

fn create(name: &str, size: &str) {
    shmbox()
        .args(["create", name, "--size", size])
        .assert()
        .success();
}

/// A background `shmbox` process, killed when dropped.
struct Background(Child);

impl Background {
    fn start(args: &[&str]) -> Background {
        let child = std::process::Command::new(SHMBOX)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Background(child)
    }

    fn kill(&mut self, signal: i32) {
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(self.0.id() as i32, signal) };
        self.0.wait().unwrap();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    wait_until("the child starts", || {
        found = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|p| {
                let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                (fields.get(1) == Some(&pid.to_string().as_str()))
                    .then(|| p.file_name().to_str()?.parse().ok())?
            })
            .collect();
        !found.is_empty()
    });
    found
}

/// Whether `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One line on stderr, `shmbox: error: ...`, and no trace of a panic.
fn one_error_line(expected: &'static str) -> impl Predicate<str> {
    predicate::function(move |stderr: &str| {
        stderr.lines().count() == 1
            && stderr.starts_with("shmbox: error: ")
            && !stderr.contains("panicked")
    })
    .and(contains(expected))
}

// ----- happy paths ---------------------------------------------------------------

#[test]
fn every_subcommand_shows_an_example_in_its_help() {
    for sub in [
        "create",
        "write",
        "read",
        "watch",
        "info",
        "list",
        "rm",
        "lock",
        "completions",
    ] {
        shmbox()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(contains("Examples:\n  shmbox "));
    }
    shmbox()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Examples:"));
}

#[test]
fn create_write_read_info_list_rm() {
    let name = Name::new("basic");
    shmbox()
        .args(["create", &name, "--size", "1K"])
        .assert()
        .success()
        .stderr(contains("1 KiB (1024 bytes), persistent, mode 0600"));
    shmbox()
        .args(["write", &name, "你好 shell"])
        .assert()
        .success()
        .stderr(contains("wrote 12 bytes at offset 0").and(contains("(generation 1)")));
    shmbox()
        .args(["write", &name, "--offset", "100", "second"])
        .assert()
        .success()
        .stderr(contains("(generation 2)"));
    // Text: interior NULs stay, trailing padding goes.
    shmbox()
        .args(["read", &name, "--len", "12"])
        .assert()
        .success()
        .stdout("你好 shell\n");
    shmbox()
        .args([
            "read", &name, "--offset", "100", "--len", "6", "--format", "base64",
        ])
        .assert()
        .success()
        .stdout("c2Vjb25k\n");
    shmbox()
        .args([
            "read", &name, "--offset", "96", "--len", "16", "--format", "hex",
        ])
        .assert()
        .success()
        .stdout("00000060: 0000 0000 7365 636f 6e64 0000 0000 0000  ....second......\n");
    shmbox().args(["info", &name]).assert().success().stdout(
        contains("size:           1024 bytes (1 KiB)")
            .and(contains("lifetime:       persistent"))
            .and(contains("generation:     2"))
            .and(contains("lock:           free"))
            .and(contains("mode 0600")),
    );
    shmbox().arg("list").assert().success().stdout(
        contains("NAME")
            .and(contains(&*name))
            .and(contains("persistent")),
    );
    shmbox()
        .args(["rm", &name])
        .assert()
        .success()
        .stderr(contains("removed"));
    assert!(!std::path::Path::new(&format!("/dev/shm/shmbox.{}", &*name)).exists());
}

#[test]
fn create_with_a_mode() {
    let name = Name::new("mode");
    shmbox()
        .args(["create", &name, "--size", "64", "--mode", "640"])
        .assert()
        .success();
    shmbox()
        .args(["info", &name])
        .assert()
        .success()
        .stdout(contains("mode 0640"));
}

#[test]
fn a_segment_every_user_may_write_is_created_with_a_warning_and_refused() {
    let name = Name::new("world-writable");
    shmbox()
        .args(["create", &name, "--size", "64", "--mode", "666"])
        .assert()
        .success()
        .stderr(contains("warning: mode 0666 lets every user write"));
    shmbox()
        .args(["read", &name])
        .assert()
        .code(1)
        .stderr(contains("has mode 0666: any user can write to it"));
    // Inspecting it is still allowed.
    shmbox()
        .args(["info", &name])
        .assert()
        .success()
        .stdout(contains("mode 0666"));
}

/// Regression, found by fuzzing the library: an impossible write time in a
/// header made `info` panic.
#[test]
fn info_of_a_header_with_impossible_times_says_unknown() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = Name::new("absurd-times");
    let mut b = vec![0u8; 256 + 16];
    b[0..8].copy_from_slice(b"shmbox\0\0");
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    b[12..16].copy_from_slice(&256u32.to_le_bytes());
    b[16..24].copy_from_slice(&16u64.to_le_bytes());
    b[24..28].copy_from_slice(&2u32.to_le_bytes());
    b[32..36].copy_from_slice(b"REDY");
    b[140..144].copy_from_slice(&7u32.to_le_bytes());
    b[144..152].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(format!("/dev/shm/shmbox.{}", &*name))
        .unwrap()
        .write_all(&b)
        .unwrap();
    shmbox()
        .args(["info", &name])
        .assert()
        .success()
        .stdout(contains("at an unknown time"));
    let out = shmbox().args(["info", &name, "--json"]).output().unwrap();
    assert!(out.status.success());
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(info["created"].is_null());
    assert!(info["last_write"].is_null());
}

#[test]
fn info_json_has_snake_case_keys() {
    let name = Name::new("json");
    create(&name, "4KiB");
    shmbox().args(["write", &name, "x"]).assert().success();
    let out = shmbox().args(["info", &name, "--json"]).output().unwrap();
    assert!(out.status.success());
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["name"], *name);
    assert_eq!(info["size"], 4096);
    assert_eq!(info["generation"], 1);
    assert_eq!(info["lifetime"], "persistent");
    assert_eq!(info["lock_owner_pid"], serde_json::Value::Null);
    assert_eq!(info["lock_state"], "free");
    assert!(info["last_writer_pid"].as_u64().is_some());
    assert_eq!(info["format_version"], 1);
    assert_eq!(info["mode"], "0600");

    let out = shmbox().args(["list", "--json"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == *name)
        .unwrap();
    assert_eq!(mine["size"], 4096);
}

#[test]
fn write_create_makes_the_segment_if_missing() {
    let name = Name::new("create-flag");
    shmbox()
        .args(["write", &name, "--create", "16", "made"])
        .assert()
        .success();
    shmbox()
        .args(["read", &name])
        .assert()
        .success()
        .stdout("made\n");
    // Persistent: it outlived the process that made it; --create on it is fine.
    shmbox()
        .args(["write", &name, "--create", "16", "again"])
        .assert()
        .success();
}

#[test]
fn write_warns_when_the_end_cuts_it_short() {
    let name = Name::new("clamp");
    create(&name, "8");
    shmbox()
        .args(["write", &name, "--offset", "5", "abcdef"])
        .assert()
        .success()
        .stderr(contains("wrote 3 bytes").and(contains("warning: only 3 of 6 bytes fit")));
    shmbox()
        .args(["read", &name, "--offset", "5"])
        .assert()
        .success()
        .stdout("abc\n");
}

#[test]
fn binary_data_round_trips_through_stdin_and_raw() {
    let name = Name::new("binary");
    create(&name, "256");
    let all_bytes: Vec<u8> = (0..=255).collect();
    shmbox()
        .args(["write", &name])
        .write_stdin(all_bytes.clone())
        .assert()
        .success()
        .stderr(contains("wrote 256 bytes"));
    let out = shmbox()
        .args(["read", &name, "--format", "raw"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, all_bytes);
}

#[test]
fn watch_sees_writes_made_by_other_processes() {
    let name = Name::new("watch");
    create(&name, "64");
    let mut watcher = Background::start(&["watch", &name, "--count", "2", "--timeout", "20"]);
    // The watcher reports only writes after it started; keep writing until it
    // has seen two.
    wait_until("the watcher sees two writes", || {
        shmbox()
            .args(["write", &name, "from another process"])
            .assert()
            .success();
        matches!(watcher.0.try_wait(), Ok(Some(_)))
    });
    let status = watcher.0.wait().unwrap();
    assert!(status.success());
    let mut stdout = String::new();
    watcher
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "the watcher printed nothing");
    for line in &lines {
        assert!(line.starts_with("[generation "), "{line}");
        assert!(line.ends_with("] from another process"), "{line}");
        assert!(
            !line.contains(&format!("pid {},", watcher.0.id())),
            "it reported itself: {line}"
        );
    }
}

#[test]
fn watch_with_a_count_fails_when_the_timeout_comes_first() {
    let name = Name::new("watch-timeout");
    create(&name, "64");
    let started = Instant::now();
    shmbox()
        .args(["watch", &name, "--count", "1", "--timeout", "0.3"])
        .assert()
        .code(1)
        .stderr(one_error_line("saw 0 of 1 writes"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Without a count, the timeout simply ends the watch.
    shmbox()
        .args(["watch", &name, "--timeout", "0.1"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn lock_runs_the_command_and_passes_its_status_on() {
    let name = Name::new("lock-status");
    create(&name, "64");
    shmbox()
        .args([
            "lock",
            &name,
            "--",
            "sh",
            "-c",
            "shmbox_probe=1; echo inside; exit 7",
        ])
        .assert()
        .code(7)
        .stdout("inside\n");
    shmbox()
        .args(["lock", &name, "--", "sh", "-c", "kill -TERM $$"])
        .assert()
        .code(128 + 15);
    shmbox()
        .args(["lock", &name, "--", "no-such-command-anywhere"])
        .assert()
        .code(127)
        .stderr(contains("command not found: no-such-command-anywhere"));
}

#[test]
fn lock_holds_the_lock_while_the_command_runs() {
    let name = Name::new("lock-held");
    create(&name, "64");
    let probe = format!("{SHMBOX} info {} --json", &*name);
    let out = shmbox()
        .args(["lock", &name, "--", "sh", "-c", &probe])
        .output()
        .unwrap();
    assert!(out.status.success());
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["lock_state"], "held");
    assert!(info["lock_owner_pid"].as_u64().is_some());
}

#[test]
fn a_killed_lock_holder_is_recovered_at_once() {
    let name = Name::new("lock-kill");
    create(&name, "64");
    let mut holder = Background::start(&["lock", &name, "--", "sleep", "60"]);
    let holder_pid = holder.0.id();
    wait_until("the lock is held", || {
        let out = shmbox().args(["info", &name, "--json"]).output().unwrap();
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        info["lock_state"] == "held"
    });
    let command_pid = children_of(holder_pid);
    assert_eq!(command_pid.len(), 1, "the command under the lock");
    holder.kill(libc::SIGKILL);
    let started = Instant::now();
    shmbox()
        .args(["write", &name, "after the crash"])
        .assert()
        .success()
        .stderr(contains(format!(
            "recovered the lock of \"{}\" from pid {holder_pid}, which died holding it",
            &*name
        )));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // The command under the lock died with its holder.
    wait_until("the command is gone", || !is_running(command_pid[0]));
    shmbox()
        .args(["info", &name])
        .assert()
        .success()
        .stdout(contains("owner deaths:   1"));
}

#[test]
fn lock_says_when_it_took_the_lock_from_a_dead_holder() {
    let name = Name::new("lock-dead");
    create(&name, "64");
    let mut holder = Background::start(&["lock", &name, "--", "sleep", "60"]);
    let holder_pid = holder.0.id();
    wait_until("the lock is held", || {
        let out = shmbox().args(["info", &name, "--json"]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|i| i["lock_state"] == "held")
    });
    holder.kill(libc::SIGKILL);
    shmbox()
        .args(["lock", &name, "--timeout", "1", "--", "true"])
        .assert()
        .success()
        .stderr(format!(
            "shmbox: acquired the lock of \"{}\" from pid {holder_pid}, which had died holding it\n",
            &*name
        ));
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        shmbox()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains("shmbox").and(contains("watch")));
    }
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let name = Name::new("pipe");
    create(&name, "1M");
    let mut child = std::process::Command::new(SHMBOX)
        .args(["read", &name, "--format", "hex"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(141));
    assert_eq!(stderr, "");
}

// ----- errors ------------------------------------------------------------------

#[test]
fn missing_segment() {
    let name = Name::new("missing");
    for args in [
        vec!["read", &name],
        vec!["info", &name],
        vec!["rm", &name],
        vec!["watch", &name],
        vec!["lock", &name, "--", "true"],
    ] {
        shmbox()
            .args(&args)
            .assert()
            .code(1)
            .stderr(one_error_line("no segment named"));
    }
    shmbox().args(["read", &name]).assert().stderr(format!(
        "shmbox: error: no segment named \"{0}\" (create it with `shmbox create {0} --size 1K`)\n",
        &*name
    ));
    shmbox()
        .args(["write", &name, "x"])
        .assert()
        .code(1)
        .stderr(one_error_line("or pass --create SIZE"));
}

#[test]
fn existing_segment_on_create() {
    let name = Name::new("exists");
    create(&name, "64");
    shmbox()
        .args(["create", &name, "--size", "64"])
        .assert()
        .code(1)
        .stderr(one_error_line("already exists"));
}

#[test]
fn invalid_name() {
    shmbox()
        .args(["create", "a/b", "--size", "64"])
        .assert()
        .code(1)
        .stderr(one_error_line(
            "invalid segment name \"a/b\": it contains '/'",
        ));
    shmbox()
        .args(["read", ".."])
        .assert()
        .code(1)
        .stderr(one_error_line("reserved"));
}

#[test]
fn offset_past_the_end() {
    let name = Name::new("offset");
    create(&name, "64");
    shmbox()
        .args(["write", &name, "--offset", "65", "x"])
        .assert()
        .code(1)
        .stderr(one_error_line(
            "offset 65 is past the end of the segment (it holds 64 bytes)",
        ));
    shmbox()
        .args(["read", &name, "--offset", "1K"])
        .assert()
        .code(1)
        .stderr(one_error_line("offset 1024 is past the end"));
}

#[test]
fn bad_size_suffix_is_a_usage_error() {
    let name = Name::new("suffix");
    shmbox()
        .args(["create", &name, "--size", "4X"])
        .assert()
        .code(2)
        .stderr(contains("unknown unit \"X\"").and(contains("panicked").not()));
    shmbox()
        .args(["create", &name, "--size", "0"])
        .assert()
        .code(1)
        .stderr(one_error_line("a segment holds at least one byte"));
    shmbox()
        .args(["read", &name, "--offset", "-1"])
        .assert()
        .code(2);
}

#[test]
fn size_mismatch() {
    let name = Name::new("mismatch");
    create(&name, "64");
    shmbox()
        .args(["write", &name, "--create", "128", "x"])
        .assert()
        .code(1)
        .stderr(one_error_line(
            "holds 64 bytes, not the 128 given with --create",
        ));
}

#[test]
fn lock_timeout() {
    let name = Name::new("lock-timeout");
    create(&name, "64");
    let holder = Background::start(&["lock", &name, "--", "sleep", "60"]);
    wait_until("the lock is held", || {
        let out = shmbox().args(["info", &name, "--json"]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|i| i["lock_state"] == "held")
    });
    let started = Instant::now();
    shmbox()
        .args(["lock", &name, "--timeout", "0.2", "--", "true"])
        .assert()
        .code(1)
        .stderr(
            one_error_line("timed out after 0.2s waiting for the lock of segment")
                .and(contains(format!("pid {} holds it", holder.0.id()))),
        );
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(holder);
}

#[test]
fn usage_errors_exit_with_2() {
    shmbox().assert().code(2);
    shmbox().arg("frobnicate").assert().code(2);
    shmbox().args(["lock", "x"]).assert().code(2); // no command
    shmbox().args(["create", "x"]).assert().code(2); // no size
    shmbox().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn a_torn_segment_is_reported_not_printed() {
    // A writer that dies mid-write is simulated with the library itself.
    let name = Name::new("torn");
    create(&name, "64");
    let mut writer = std::process::Command::new(SHMBOX)
        .args(["lock", &name, "--", "sleep", "60"])
        .spawn()
        .unwrap();
    // Mark a write in progress (odd sequence word, docs/FORMAT.md) while the
    // holder lives, then kill the holder.
    wait_until("the lock is held", || {
        let out = shmbox().args(["info", &name, "--json"]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|i| i["lock_state"] == "held")
    });
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/dev/shm/shmbox.{}", &*name))
            .unwrap();
        f.write_all_at(&1u64.to_le_bytes(), 128).unwrap();
        f.sync_all().unwrap();
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    shmbox()
        .args(["read", &name])
        .assert()
        .code(1)
        .stderr(one_error_line("may be torn"));
    shmbox()
        .args(["info", &name])
        .assert()
        .success()
        .stdout(contains("consistent:     no"));
    shmbox()
        .args(["write", &name, "repaired"])
        .assert()
        .success()
        .stderr(contains("in the middle of a write"));
    shmbox()
        .args(["read", &name])
        .assert()
        .success()
        .stdout("repaired\n");
    let _ = std::io::stdout().flush();
}

#[test]
fn write_and_read_take_a_timeout() {
    let name = Name::new("timeouts");
    create(&name, "64");
    let holder = Background::start(&["lock", &name, "--", "sleep", "60"]);
    wait_until("the lock is held", || {
        let out = shmbox().args(["info", &name, "--json"]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|i| i["lock_state"] == "held")
    });
    let started = Instant::now();
    shmbox()
        .args(["write", &name, "--timeout", "0.3", "late"])
        .assert()
        .code(1)
        .stderr(
            one_error_line("timed out after 0.3s waiting for the lock of segment")
                .and(contains("wait longer with --timeout")),
        );
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A write in progress by that live holder (an odd sequence word,
    // docs/FORMAT.md): info says so, and a read waits for it, up to its
    // timeout.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/dev/shm/shmbox.{}", &*name))
            .unwrap();
        f.write_all_at(&1u64.to_le_bytes(), 128).unwrap();
    }
    shmbox()
        .args(["info", &name])
        .assert()
        .success()
        .stdout(contains(format!(
            "consistent:     a write is in progress (pid {} holds the lock)",
            holder.0.id()
        )));
    let out = shmbox().args(["info", &name, "--json"]).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["writing"], true, "{info}");
    assert_eq!(info["consistent"], true, "{info}");
    let started = Instant::now();
    shmbox()
        .args(["read", &name, "--timeout", "0.3"])
        .assert()
        .code(1)
        .stderr(
            one_error_line("timed out after 0.3s waiting for a write in progress to finish")
                .and(contains(format!(
                    "pid {} is in the middle of a write",
                    holder.0.id()
                )))
                .and(contains("wait longer with --timeout")),
        );
    assert!(started.elapsed() >= Duration::from_millis(300));
    drop(holder);
}
