//! shmbox.dll from C, on Windows (under Wine in CI): `tests/c/client.c`,
//! built with mingw-w64 against the DLL, runs its own checks of every
//! function, and then shares a block with a program that makes exactly the
//! FoxPro sample's calls (`crates/shmbox/tests/windows/foxpro_sample.c`):
//! data both ways, each side waiting on the other's lock, and the sample's
//! death while it holds the mutex. `tests/c/foxpro_like.c`, the calls that
//! `examples/foxpro/shmbox.prg` makes, with FoxPro's types, joins them.
//!
//! `.ci/windows` builds the programs for x86_64 and for i686 (the DLL that
//! 32-bit Visual FoxPro loads) and sets SHMBOX_FFI_CLIENT_EXE,
//! SHMBOX_FOXPRO_LIKE_EXE and SHMBOX_SAMPLE_EXE. Without them the tests
//! say so and pass, unless SHMBOX_REQUIRE_SAMPLE is set (CI sets it).
#![cfg(windows)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const SIZE: &str = "1024";

fn program(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(path) => Some(path),
        Err(_) => {
            assert!(
                std::env::var_os("SHMBOX_REQUIRE_SAMPLE").is_none(),
                "{variable} is not set, and SHMBOX_REQUIRE_SAMPLE says it must be"
            );
            eprintln!("SKIPPED: {variable} is not set (.ci/windows sets it)");
            None
        }
    }
}

/// A program that answers one line per command on its standard input.
struct Peer {
    what: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Peer {
    fn start(what: &'static str, exe: &str, args: &[&str], ready: &str) -> Peer {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what} ({exe}): {e}"));
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
        let peer = Peer {
            what,
            child,
            stdin,
            lines,
        };
        let first = peer.line();
        assert!(first.starts_with(ready), "{what} said {first:?}");
        peer
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{} did not answer within 30 s", self.what))
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn ask(&mut self, command: &str) -> String {
        self.send(command);
        self.line()
    }

    /// Sends `command`, then waits for the program to end.
    fn end_with(mut self, command: &str) {
        self.send(command);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{} did not exit", self.what);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Peer {
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
    format!("SHMBOXDLL{tag}{}x{nanos}", std::process::id())
}

/// Fails the run if a test hangs.
fn watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("watchdog: a test ran past 120 s");
        std::process::exit(101);
    });
}

#[test]
fn every_function_from_c_through_the_dll() {
    watchdog();
    let Some(client) = program("SHMBOX_FFI_CLIENT_EXE") else {
        return;
    };
    let out = Command::new(client)
        .args(["all", &unique("all")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "the C checks failed:\n{stdout}");
    assert!(stdout.contains("all passed"), "{stdout}");
}

#[test]
fn the_dll_and_the_foxpro_samples_calls_share_data_and_the_lock() {
    watchdog();
    let (Some(client), Some(sample)) = (
        program("SHMBOX_FFI_CLIENT_EXE"),
        program("SHMBOX_SAMPLE_EXE"),
    ) else {
        return;
    };
    let name = unique("share");
    // The sample first, as the original application would be.
    let mut sample = Peer::start("the sample", &sample, &[&name, SIZE], "ready ");
    let mut dll = Peer::start("the DLL client", &client, &["serve", &name, SIZE], "ready");

    // Data, both ways.
    assert_eq!(dll.ask("write 0 你好 from the DLL"), "wrote 19");
    assert_eq!(sample.ask("read"), "read 你好 from the DLL");
    assert_eq!(sample.ask("write 0 from FoxPro, too!!!"), "wrote 19");
    assert_eq!(dll.ask("read 19 0"), "read from FoxPro, too!!!");

    // The sample holds the mutex: the DLL waits, then times out.
    assert_eq!(sample.ask("lock"), "locked");
    let asked = Instant::now();
    let answer = dll.ask("lock 300");
    assert!(answer.starts_with("error -4 "), "{answer}");
    assert!(asked.elapsed() >= Duration::from_millis(300));
    assert_eq!(sample.ask("unlock"), "unlocked");

    // The DLL holds it: the sample's write waits until the DLL lets go.
    assert_eq!(dll.ask("lock 5000"), "locked 0");
    sample.send("write 0 after the DLL..");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sample.lines.try_recv().is_err(),
        "the sample wrote while the DLL held the lock"
    );
    assert_eq!(dll.ask("write 0 under the lock."), "wrote 15");
    assert_eq!(dll.ask("unlock"), "unlocked");
    assert_eq!(sample.line(), "wrote 15");
    assert_eq!(dll.ask("read 15 0"), "read after the DLL..");

    // The sample dies holding the mutex: the DLL is told.
    assert_eq!(sample.ask("lock"), "locked");
    sample.end_with("exit");
    assert_eq!(dll.ask("lock 5000"), "locked 1");
    assert_eq!(dll.ask("unlock"), "unlocked");
    dll.end_with("quit");
}

#[test]
fn the_calls_foxpro_makes_with_its_types_share_data_with_the_sample() {
    watchdog();
    let (Some(foxpro_like), Some(sample)) = (
        program("SHMBOX_FOXPRO_LIKE_EXE"),
        program("SHMBOX_SAMPLE_EXE"),
    ) else {
        return;
    };
    let name = unique("prg");
    let mut sample = Peer::start("the sample", &sample, &[&name, SIZE], "ready ");
    let mut prg = Peer::start("the .prg's calls", &foxpro_like, &[&name, SIZE], "ready 0");
    assert_eq!(prg.ask("size"), "size 1024");
    assert_eq!(prg.ask("write 0 from the prg"), "wrote 12 errorcode 0");
    assert_eq!(sample.ask("read"), "read from the prg");
    assert_eq!(sample.ask("write 4 FOXPRO"), "wrote 6");
    assert_eq!(prg.ask("read 12 0"), "read fromFOXPROrg errorcode 0");
    // Past the end: the sample's class wrote nothing and said so; now the
    // errorcode carries shmbox's status and message.
    let past = prg.ask("write 2000 x");
    assert!(past.starts_with("wrote 0 errorcode -5 "), "{past}");
    assert!(
        past.contains(&name),
        "the message names the segment: {past}"
    );
    // The sample dies holding the mutex: the next write goes ahead.
    assert_eq!(sample.ask("lock"), "locked");
    sample.end_with("exit");
    assert_eq!(prg.ask("write 0 recovered"), "wrote 9 errorcode 0");
    prg.end_with("quit");
}
