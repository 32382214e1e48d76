//! Shared by the tests that drive real processes: a private tmux server.
#![allow(dead_code)] // each test binary uses a different part

use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmux server, killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start() -> Option<Tmux> {
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

    pub fn run(&self, args: &[&str]) -> String {
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
    pub fn open(&self, session: &str, command: &str) {
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
    pub fn program_pid(&self, session: &str) -> u32 {
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
    pub fn wait_exit(&self, session: &str) -> String {
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
    pub fn history(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-200", "-t", session])
    }

    pub fn keys(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    pub fn type_text(&self, session: &str, text: &str) {
        self.run(&["send-keys", "-t", session, "-l", text]);
    }

    pub fn screen(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", session])
    }

    /// Waits until the screen of `session` shows `needle`.
    pub fn wait_for(&self, session: &str, needle: &str) -> String {
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
    pub fn click(&self, session: &str, label: &str) {
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
