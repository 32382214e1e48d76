//! `shmbox demo` for real: two instances in tmux, driven with send-keys and
//! read with capture-pane. Text written in one appears in the other after
//! Read; with live on, it appears with no key pressed; the buttons answer
//! mouse clicks; the screen survives resizing; both quit cleanly and the
//! segment goes with the last of them.
//!
//! Needs tmux. Without it the test says SKIPPED, unless SHMBOX_REQUIRE_TMUX
//! is set (as .ci/run does), in which case it fails.
// Unix-only: tmux.
#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Tmux;
use shmbox_testkit::RedisServer;

const SHMBOX: &str = env!("CARGO_BIN_EXE_shmbox");

#[test]
fn two_demos_exchange_text_in_tmux() {
    let Some(tmux) = Tmux::start() else { return };
    let name = format!("test-demo-{}", std::process::id());
    let path = format!("/dev/shm/shmbox.{name}");
    let demo = format!("{SHMBOX} demo {name}");
    tmux.open("a", &demo);
    tmux.open("b", &demo);
    tmux.wait_for("a", &format!("Segment {name}: 1024 bytes"));
    tmux.wait_for("b", &format!("Segment {name}: 1024 bytes"));

    // Type in A (wide characters, a newline) and Write.
    tmux.type_text("a", "你好 from A");
    tmux.keys("a", &["Enter"]);
    tmux.type_text("a", "line 2");
    tmux.keys("a", &["C-w"]);
    tmux.wait_for(
        "a",
        "Wrote 20 bytes and 1004 zero bytes of padding (generation 1).",
    );

    // B learns of it without a key pressed, and reads it with Ctrl-R.
    tmux.wait_for("b", "● Another process wrote since your last read.");
    tmux.keys("b", &["C-r"]);
    let screen = tmux.wait_for("b", "Read 20 bytes (generation 1).");
    assert!(screen.contains("│你好 from A"), "{screen}");
    assert!(screen.contains("│line 2"), "{screen}");

    // Live on in B: A's next write shows up in B with no key pressed.
    tmux.keys("b", &["C-l"]);
    tmux.wait_for("b", "[x] Live");
    tmux.type_text("a", " + live");
    tmux.keys("a", &["C-w"]);
    let screen = tmux.wait_for("b", "│line 2 + live");
    assert!(screen.contains("Live: loaded generation 2"), "{screen}");

    // The Write button, clicked with the mouse.
    tmux.type_text("a", " + click");
    tmux.click("a", "Write to shared memory");
    tmux.wait_for("a", "(generation 3)");
    tmux.wait_for("b", "│line 2 + live + click");

    // Resizing redraws the form to the new size, and back.
    tmux.run(&["resize-window", "-t", "b", "-x", "100", "-y", "30"]);
    let wide = tmux.wait_for("b", "Read from shared memory");
    let border = wide
        .lines()
        .find(|l| l.starts_with("╭ Text"))
        .unwrap_or_default();
    assert_eq!(border.chars().count(), 100, "{wide}");
    assert_eq!(wide.lines().count(), 30, "{wide}");
    tmux.run(&["resize-window", "-t", "b", "-x", "80", "-y", "24"]);
    tmux.wait_for("b", "line 2 + live + click");

    // Quit both, with Ctrl-Q and Ctrl-C: each leaves the terminal as it
    // found it (the form was on the alternate screen), and the segment goes
    // with the last one.
    assert!(std::path::Path::new(&path).exists());
    tmux.keys("a", &["C-q"]);
    tmux.keys("b", &["C-c"]);
    for session in ["a", "b"] {
        assert_eq!(tmux.wait_exit(session), "exit 0");
        let screen = tmux.screen(session);
        assert!(
            !screen.contains("Read from shared memory"),
            "{session} left its form:\n{screen}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::path::Path::new(&path).exists() {
        assert!(Instant::now() < deadline, "the demos left {path} behind");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_demos_share_a_segment_over_redis_live() {
    let Some(tmux) = Tmux::start() else { return };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let name = format!("test-demo-remote-{}", std::process::id());
    let url = format!("{}?lease=1", redis.url());
    // One with --url, one with SHMBOX_URL: both name the server.
    tmux.open("a", &format!("{SHMBOX} --url '{url}' demo {name}"));
    tmux.open("b", &format!("SHMBOX_URL='{url}' {SHMBOX} demo {name}"));
    tmux.wait_for("a", &format!("Segment {name}: 1024 bytes"));
    tmux.wait_for("b", &format!("Segment {name}: 1024 bytes"));
    assert_eq!(
        redis.cli(&["HGET", &format!("shmbox:{{{name}}}:meta"), "size"]),
        "1024"
    );
    assert!(!std::path::Path::new(&format!("/dev/shm/shmbox.{name}")).exists());

    // Live on in B, then A writes: B follows with no key pressed, through
    // the server's notification.
    tmux.keys("b", &["C-l"]);
    tmux.wait_for("b", "[x] Live");
    tmux.type_text("a", "over redis 你好");
    tmux.keys("a", &["C-w"]);
    tmux.wait_for("a", "(generation 1)");
    let screen = tmux.wait_for("b", "│over redis 你好");
    assert!(screen.contains("Live: loaded generation 1"), "{screen}");

    // B answers; A reads it.
    tmux.keys("b", &["End"]);
    tmux.type_text("b", " + from B");
    tmux.keys("b", &["C-w"]);
    tmux.wait_for("b", "(generation 2)");
    tmux.wait_for("a", "● Another process wrote since your last read.");
    tmux.keys("a", &["C-r"]);
    let screen = tmux.wait_for("a", "Read 26 bytes (generation 2).");
    assert!(screen.contains("│over redis 你好 + from B"), "{screen}");

    // Both quit; the until-last-close segment goes with the last one.
    tmux.keys("a", &["C-q"]);
    tmux.keys("b", &["C-q"]);
    for session in ["a", "b"] {
        assert_eq!(tmux.wait_exit(session), "exit 0");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !redis
        .cli(&["KEYS", &format!("shmbox:{{{name}}}:*")])
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the demos left their keys behind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_terminal_is_restored_after_a_signal_and_after_a_panic() {
    let Some(tmux) = Tmux::start() else { return };
    let name = format!("test-demo-restore-{}", std::process::id());
    let path = format!("/dev/shm/shmbox.{name}");

    // SIGTERM ends the demo cleanly.
    tmux.open("term", &format!("{SHMBOX} demo {name}"));
    tmux.wait_for("term", "Write to shared memory");
    let pid = tmux.program_pid("term").to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(tmux.wait_exit("term"), "exit 0");
    assert!(!tmux.screen("term").contains("Write to shared memory"));

    // A panic leaves the alternate screen and raw mode before its one-line
    // report: the line starts at the left edge (raw mode would not return
    // the carriage) on the normal screen.
    tmux.open(
        "panic",
        &format!("env SHMBOX_DEMO_FAULT=panic {SHMBOX} demo {name}"),
    );
    assert_eq!(tmux.wait_exit("panic"), "exit 101");
    let screen = tmux.history("panic");
    assert!(!screen.contains("Write to shared memory"), "{screen}");
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("shmbox: error: internal error at ")
                && l.contains("fault injected")),
        "{screen}"
    );
    // Even after a panic, the segment goes with its last holder.
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::path::Path::new(&path).exists() {
        assert!(Instant::now() < deadline, "the demo left {path} behind");
        std::thread::sleep(Duration::from_millis(20));
    }
}
