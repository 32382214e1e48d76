//! The `shmbox` command on Windows, against a block that a program making
//! exactly the FoxPro sample's calls holds open (`foxpro_sample.c` in the
//! library's tests; its path comes from `SHMBOX_SAMPLE_EXE`, which
//! `.ci/windows` sets before running this under Wine). Without the variable
//! the tests say so and pass, unless `SHMBOX_REQUIRE_SAMPLE` is set.
#![cfg(windows)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const SHMBOX: &str = env!("CARGO_BIN_EXE_shmbox");

struct Sample {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Sample {
    fn start(name: &str) -> Option<Sample> {
        let Ok(exe) = std::env::var("SHMBOX_SAMPLE_EXE") else {
            assert!(
                std::env::var_os("SHMBOX_REQUIRE_SAMPLE").is_none(),
                "SHMBOX_SAMPLE_EXE is not set, and SHMBOX_REQUIRE_SAMPLE says it must be"
            );
            eprintln!("skipped: set SHMBOX_SAMPLE_EXE to a build of foxpro_sample.c");
            return None;
        };
        let mut child = Command::new(exe)
            .args([name, "1024"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the sample program");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let sample = Sample {
            child,
            stdin,
            lines,
        };
        assert!(sample.line().starts_with("ready "));
        Some(sample)
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the sample answers within 30 s")
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.line()
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("SHMBOXCLI{tag}{}x{nanos}", std::process::id())
}

fn shmbox(args: &[&str]) -> Output {
    let output = Command::new(SHMBOX)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run shmbox");
    eprintln!(
        "shmbox {args:?}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn write_read_and_info_on_the_samples_block() {
    let name = unique("A");
    let Some(mut sample) = Sample::start(&name) else {
        return;
    };
    let wrote = shmbox(&["write", &name, "hello from the CLI"]);
    assert!(wrote.status.success());
    assert!(stderr(&wrote).contains("18 bytes"), "{}", stderr(&wrote));
    assert_eq!(sample.ask("read"), "read hello from the CLI");

    assert_eq!(sample.ask("write 0 from the sample"), "wrote 15");
    let read = shmbox(&["read", &name, "--len", "15"]);
    assert!(read.status.success());
    assert_eq!(stdout(&read).trim_end(), "from the sample");

    let info = shmbox(&["info", &name, "--json"]);
    assert!(info.status.success());
    let json = stdout(&info);
    // No shmbox process holds it, so only the system knows its size: Windows
    // reports the 1024 bytes the sample asked for, Wine rounds up to a page
    // (`.ci/windows` sets SHMBOX_UNDER_WINE).
    let size = if std::env::var_os("SHMBOX_UNDER_WINE").is_some() {
        4096
    } else {
        1024
    };
    assert!(json.contains(&format!("\"size\": {size},")), "{json}");
    assert!(
        json.contains("\"lifetime\": \"until-last-close\""),
        "{json}"
    );
    assert!(json.contains("\"lock_state\": \"free\""), "{json}");
    // Windows objects have no owner uid or mode: null, never a made-up
    // "uid 0, mode 0600".
    assert!(json.contains("\"owner_uid\": null"), "{json}");
    assert!(json.contains("\"mode\": null"), "{json}");
    let text = stdout(&shmbox(&["info", &name]));
    assert!(text.contains("lifetime:"), "{text}");
    assert!(!text.contains("owner:"), "{text}");

    // While the sample holds its mutex, info says so, with no pid to give.
    assert_eq!(sample.ask("lock"), "locked");
    let held = stdout(&shmbox(&["info", &name, "--json"]));
    assert!(held.contains("\"lock_state\": \"held\""), "{held}");
    assert!(held.contains("\"lock_owner_pid\": null"), "{held}");
    assert_eq!(sample.ask("unlock"), "unlocked");
}

#[test]
fn lock_runs_a_command_under_the_samples_mutex_and_times_out_while_the_sample_holds_it() {
    let name = unique("B");
    let Some(mut sample) = Sample::start(&name) else {
        return;
    };
    let ran = shmbox(&["lock", &name, "--", "cmd", "/c", "exit 3"]);
    assert_eq!(ran.status.code(), Some(3), "the command's own status");

    assert_eq!(sample.ask("lock"), "locked");
    let busy = shmbox(&[
        "lock",
        &name,
        "--timeout",
        "0.3",
        "--",
        "cmd",
        "/c",
        "exit 0",
    ]);
    assert_eq!(busy.status.code(), Some(1));
    assert!(stderr(&busy).contains("timed out"), "{}", stderr(&busy));
    assert_eq!(sample.ask("unlock"), "unlocked");
}

#[test]
fn what_windows_cannot_do_is_refused_in_plain_words() {
    let name = unique("C");
    let created = shmbox(&["create", &name, "--size", "64"]);
    assert!(!created.status.success());
    assert!(
        stderr(&created).contains("persistent"),
        "{}",
        stderr(&created)
    );

    let missing = shmbox(&["read", &name]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no segment named"),
        "{}",
        stderr(&missing)
    );

    let Some(_sample) = Sample::start(&name) else {
        return;
    };
    let removed = shmbox(&["rm", &name]);
    assert!(!removed.status.success());
    assert!(
        stderr(&removed).contains("it goes when the last process"),
        "{}",
        stderr(&removed)
    );
}

#[test]
fn list_shows_a_segment_while_a_shmbox_process_has_it_open() {
    let name = unique("D");
    let Some(_sample) = Sample::start(&name) else {
        return;
    };
    // `shmbox lock` holds the segment open while the command runs: the
    // command, `shmbox list`, sees it. (A block that only the sample holds
    // has no shmbox header, and is not listed.)
    let listed = shmbox(&["lock", &name, "--", SHMBOX, "list", "--json"]);
    assert!(listed.status.success());
    assert!(
        stdout(&listed).contains(&format!("\"name\": \"{name}\"")),
        "{}",
        stdout(&listed)
    );
    let after = shmbox(&["list"]);
    assert!(after.status.success());
    assert!(!stdout(&after).contains(&name), "{}", stdout(&after));
}
