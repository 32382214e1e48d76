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

use std::process::Command;
use std::time::{Duration, Instant};

const SHMBOX: &str = env!("CARGO_BIN_EXE_shmbox");

/// A private tmux server, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start() -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var_os("SHMBOX_REQUIRE_TMUX").is_none(),
                "tmux is not installed, and SHMBOX_REQUIRE_TMUX says it must be"
            );
            eprintln!("SKIPPED: tmux is not installed (apt-get install tmux); .ci/run installs it");
            return None;
        }
        static SERVERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Tmux {
            socket: format!("shmbox-test-{}-{n}", std::process::id()),
        })
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-u", "-L", &self.socket])
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `command` in a new 80x24 session, under a shell that prints
    /// its exit status once it ends.
    fn open(&self, session: &str, command: &str) {
        // The shell lingers after printing: tmux may drop a dead pane's last
        // output unread, and the test reads that output.
        let wrapped = format!("{command}; echo \"[exit status $?]\"; sleep 5");
        self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "80",
            "-y",
            "24",
            "sh",
            "-c",
            &wrapped,
            ";",
            "set-option",
            "-t",
            session,
            "remain-on-exit",
            "on",
        ]);
    }

    /// The pid of the program the shell of `session` runs.
    fn program_pid(&self, session: &str) -> u32 {
        let shell = self.run(&["display-message", "-p", "-t", session, "#{pane_pid}"]);
        let shell = shell.trim().to_owned();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .find_map(|p| {
                let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
                let ppid = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .to_owned();
                (ppid == shell).then(|| p.file_name().to_str()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no program runs under the shell of {session}"))
    }

    /// Waits until the program in `session` ends; returns `exit N`, as the
    /// shell printed it on the normal screen.
    fn wait_exit(&self, session: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let history = self.history(session);
            if let Some(line) = history.lines().find(|l| l.starts_with("[exit status ")) {
                return format!(
                    "exit {}",
                    line.trim_start_matches("[exit status ")
                        .trim_end_matches(']')
                );
            }
            assert!(
                Instant::now() < deadline,
                "{session} did not exit:\n{history}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The screen and the lines scrolled off it.
    fn history(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-200", "-t", session])
    }

    fn keys(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn type_text(&self, session: &str, text: &str) {
        self.run(&["send-keys", "-t", session, "-l", text]);
    }

    fn screen(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", session])
    }

    /// Waits until the screen of `session` shows `needle`.
    fn wait_for(&self, session: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen(session);
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{session} never showed {needle:?}; its screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A left click (SGR mouse report, as the terminal would send it) on
    /// the middle of `label` on the screen of `session`.
    fn click(&self, session: &str, label: &str) {
        let screen = self.screen(session);
        let (row, line) = screen
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(label))
            .unwrap_or_else(|| panic!("{label:?} is not on the screen:\n{screen}"));
        let col = line[..line.find(label).unwrap()].chars().count() + label.chars().count() / 2;
        let (x, y) = (col + 1, row + 1);
        self.type_text(session, &format!("\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m"));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

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
