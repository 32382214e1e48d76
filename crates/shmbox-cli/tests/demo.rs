//! `shmbox demo` for real: two instances in tmux, driven with send-keys and
//! read with capture-pane. Text written in one appears in the other after
//! Read; with live on, it appears with no key pressed; the buttons answer
//! mouse clicks; the screen survives resizing; both quit cleanly and the
//! segment goes with the last of them.
//!
//! Needs tmux. Without it the test says SKIPPED, unless SHMBOX_REQUIRE_TMUX
//! is set (as .ci/run does), in which case it fails.

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

    fn open(&self, session: &str, command: &str) {
        // Keep the pane after the program exits, to see what it left.
        self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "80",
            "-y",
            "24",
            command,
            ";",
            "set-option",
            "-t",
            session,
            "remain-on-exit",
            "on",
        ]);
    }

    /// The screen and the lines scrolled off it.
    fn history(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-200", "-t", session])
    }

    /// The exit status of the program in `session`, once it has exited.
    fn exit_status(&self, session: &str) -> Option<i32> {
        let out = self.run(&[
            "display-message",
            "-p",
            "-t",
            session,
            "#{pane_dead} #{pane_dead_status}",
        ]);
        let mut fields = out.split_whitespace();
        (fields.next() == Some("1"))
            .then(|| fields.next().and_then(|s| s.parse().ok()).unwrap_or(-1))
    }

    /// Waits until the program in `session` exits; returns its status.
    fn wait_exit(&self, session: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.exit_status(session) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{session} did not exit:\n{}",
                self.screen(session)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
        assert_eq!(tmux.wait_exit(session), 0);
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
    let pid = tmux.run(&["display-message", "-p", "-t", "term", "#{pane_pid}"]);
    assert!(
        Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(tmux.wait_exit("term"), 0);
    assert!(!tmux.screen("term").contains("Write to shared memory"));

    // A panic leaves the alternate screen and raw mode before its one-line
    // report: the line starts at the left edge (raw mode would not return
    // the carriage) on the normal screen.
    tmux.open(
        "panic",
        &format!("env SHMBOX_DEMO_FAULT=panic {SHMBOX} demo {name}"),
    );
    assert_eq!(tmux.wait_exit("panic"), 101);
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
