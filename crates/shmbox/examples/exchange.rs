//! The FoxPro sample's scenario, in a terminal: processes exchanging text
//! through the segment `MYAPPSHAREDMEMORY` of 1024 bytes.
//!
//! ```text
//! cargo run -p shmbox --example exchange                 # two processes, start to end
//! cargo run -p shmbox --example exchange -- watch        # terminal 1: print each write
//! cargo run -p shmbox --example exchange -- write 你好    # terminal 2: write some text
//! cargo run -p shmbox --example exchange -- read         # print the text
//! ```
//!
//! The segment lives until the last process using it exits, as on Windows:
//! keep `watch` running for `write` and `read` to find it.

use std::process::Command;
use std::time::Duration;

use shmbox::{Error, Segment};

const NAME: &str = "MYAPPSHAREDMEMORY";
const SIZE: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => both_sides(),
        Some("write") => write(&args[1..].join(" ")),
        Some("read") => read().map(|text| println!("{text}")),
        Some("watch") => watch(),
        Some(other) => {
            eprintln!("exchange: unknown command {other:?}; use write TEXT, read or watch");
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
fn write(text: &str) -> Result<(), Error> {
    let seg = Segment::open_or_create(NAME, SIZE)?;
    let mut buf = vec![0u8; seg.size()];
    let n = text.len().min(buf.len());
    buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    seg.write(0, &buf)?;
    println!(
        "wrote {n} bytes to {NAME} (generation {})",
        seg.generation()
    );
    Ok(())
}

fn read() -> Result<String, Error> {
    let seg = Segment::open_or_create(NAME, SIZE)?;
    Ok(text_of(&seg.read(0, seg.size())?))
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\0')
        .to_owned()
}

fn watch() -> Result<(), Error> {
    let seg = Segment::open_or_create(NAME, SIZE)?;
    println!("watching {NAME}; write to it from another terminal (Ctrl-C to stop)");
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

/// Runs the sample's two processes: this one, and a copy of it that writes.
fn both_sides() -> Result<(), Error> {
    let seg = Segment::open_or_create(NAME, SIZE)?;
    let me = std::env::current_exe().expect("own path");
    println!(
        "[{}] opened {NAME} ({} bytes)",
        std::process::id(),
        seg.size()
    );

    let seen = seg.generation();
    let status = Command::new(&me)
        .args(["write", "你好 from the second process"])
        .status()
        .expect("start the second process");
    assert!(status.success());
    seg.wait_for_change(seen, Duration::from_secs(5))?;
    println!(
        "[{}] read: {}",
        std::process::id(),
        text_of(&seg.read(0, SIZE)?)
    );

    write("and hello back from the first")?;
    let output = Command::new(&me)
        .arg("read")
        .output()
        .expect("start the second process");
    print!(
        "[second process] read: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    Ok(())
}
