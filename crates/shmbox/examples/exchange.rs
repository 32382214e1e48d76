//! The FoxPro sample's scenario, in a terminal: processes exchanging text
//! through the segment `MYAPPSHAREDMEMORY` of 1024 bytes.
//!
//! ```text
//! cargo run -p shmbox --example exchange                 # two processes, start to end
//! cargo run -p shmbox --example exchange -- watch        # terminal 1: print each write
//! cargo run -p shmbox --example exchange -- write 你好    # terminal 2: write some text
//! cargo run -p shmbox --example exchange -- read         # print the text
//! cargo run -p shmbox --example exchange -- hold         # lock it until killed: then
//!                                                        # kill -9 it, and write again
//! ```
//!
//! `--name NAME` before the command uses another segment. The segment lives
//! until the last process using it exits, as on Windows: keep `watch`
//! running for `write` and `read` to find it.

use std::process::Command;
use std::time::Duration;

use shmbox::{Error, Segment};

const DEFAULT_NAME: &str = "MYAPPSHAREDMEMORY";
const SIZE: usize = 1024;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let name = match args.first().map(String::as_str) {
        Some("--name") if args.len() >= 2 => {
            let name = args[1].clone();
            args.drain(..2);
            name
        }
        _ => DEFAULT_NAME.to_owned(),
    };
    let result = match args.first().map(String::as_str) {
        None => both_sides(&name),
        Some("write") => write(&name, &args[1..].join(" ")),
        Some("read") => read(&name).map(|text| println!("{text}")),
        Some("watch") => watch(&name),
        Some("hold") => hold(&name),
        Some(other) => {
            eprintln!("exchange: unknown command {other:?}; use write TEXT, read, watch or hold");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("exchange: {e}");
        std::process::exit(1);
    }
}

/// Writes `text`, padded with NUL bytes to the segment's size, as the
/// sample pads with PADR.
fn write(name: &str, text: &str) -> Result<(), Error> {
    let seg = Segment::open_or_create(name, SIZE)?;
    let mut buf = vec![0u8; seg.size()];
    let n = text.len().min(buf.len());
    buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    let mut guard = seg.lock()?;
    if let Some(died) = guard.owner_died() {
        let pid = died.pid.map_or("?".into(), |p| p.to_string());
        println!("took the lock over from pid {pid}, which died holding it");
    }
    guard.write(0, &buf)?;
    let generation = guard.unlock()?;
    println!("wrote {n} bytes to {name} (generation {generation})");
    Ok(())
}

fn read(name: &str) -> Result<String, Error> {
    let seg = Segment::open_or_create(name, SIZE)?;
    Ok(text_of(&seg.read(0, seg.size())?))
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\0')
        .to_owned()
}

fn watch(name: &str) -> Result<(), Error> {
    let seg = Segment::open_or_create(name, SIZE)?;
    println!("watching {name}; write to it from another terminal (Ctrl-C to stop)");
    let mut seen = seg.generation();
    loop {
        seen = seg.wait_for_change(seen, Duration::MAX)?;
        let snap = seg.read_consistent(0, seg.size())?;
        let writer = seg.info()?.last_writer_pid.unwrap_or(0);
        println!(
            "generation {} from pid {writer}: {}",
            snap.generation,
            text_of(&snap.data)
        );
    }
}

fn hold(name: &str) -> Result<(), Error> {
    let seg = Segment::open_or_create(name, SIZE)?;
    let _guard = seg.lock()?;
    println!(
        "holding the lock of {name} as pid {}; kill me",
        std::process::id()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Runs the sample's two processes: this one, and a copy of it that writes.
fn both_sides(name: &str) -> Result<(), Error> {
    let seg = Segment::open_or_create(name, SIZE)?;
    let me = std::env::current_exe().expect("own path");
    println!(
        "[{}] opened {name} ({} bytes)",
        std::process::id(),
        seg.size()
    );

    let seen = seg.generation();
    let status = Command::new(&me)
        .args(["--name", name, "write", "你好 from the second process"])
        .status()
        .expect("start the second process");
    assert!(status.success());
    seg.wait_for_change(seen, Duration::from_secs(5))?;
    println!(
        "[{}] read: {}",
        std::process::id(),
        text_of(&seg.read(0, SIZE)?)
    );

    write(name, "and hello back from the first")?;
    let output = Command::new(&me)
        .args(["--name", name, "read"])
        .output()
        .expect("start the second process");
    print!(
        "[second process] read: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    Ok(())
}
