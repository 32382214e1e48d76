//! The fuzz targets' bodies, shared by the cargo-fuzz targets in `fuzz/` and
//! by `tests/replay.rs`, which replays the committed corpus on stable Rust.
//!
//! - [`segment_file`]: a file of arbitrary bytes and size planted under a
//!   segment's name, opened, then put through arbitrary operations, among
//!   them cutting the file short while it is mapped. Every outcome must be a
//!   value or a clear error: never a panic, a hang, SIGBUS or undefined
//!   behaviour. (It opts in to shmbox's SIGBUS handler, as an application
//!   that wants to survive a cut file does.)
//! - [`cli_sizes`]: the `shmbox` command's parsing of sizes and offsets.
//!
//! Inputs are decoded with `arbitrary`, so a mostly valid header is likely and
//! the fuzzer gets past validation into the mapped paths.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use shmbox::{Error, Lifetime, Segment, SegmentOptions};

/// The format's header size (docs/FORMAT.md).
const HEADER: usize = 256;

/// A header field by field, each usually valid, so that most inputs open.
#[derive(Debug, Arbitrary)]
struct Header {
    bad_magic: Option<[u8; 8]>,
    version: Choice<u32>,
    header_size: Choice<u32>,
    /// The capacity: small, so that a file of that size is cheap.
    capacity: u16,
    lifetime: Choice<u32>,
    flags: Choice<u32>,
    not_ready: bool,
    lock_word: u32,
    lock_owner_pid: u32,
    owner_deaths: u32,
    handoff_at_ms: u32,
    seq: u64,
    notify_word: u32,
    /// Arbitrary bytes anywhere in the header, last.
    pokes: Vec<(u8, u8)>,
}

/// The valid value, or any other.
#[derive(Debug, Arbitrary)]
enum Choice<T> {
    Valid,
    Other(T),
}

/// How long the planted file is.
#[derive(Debug, Arbitrary)]
enum FileLen {
    /// Exactly the header plus the capacity, as a valid segment.
    Exact,
    /// Any length up to 64 KiB.
    Other(u16),
}

#[derive(Debug, Arbitrary)]
enum Op {
    Write {
        offset: u16,
        len: u16,
    },
    Read {
        offset: u16,
        len: u16,
    },
    ReadConsistent {
        offset: u16,
        len: u16,
    },
    GuardWrite {
        offset: u16,
        bytes: Vec<u8>,
        fill: Option<u8>,
    },
    TryLock,
    WaitForChange {
        since: u64,
    },
    Info,
    Generation,
    /// Cut the file to this length (or grow it) while it is mapped.
    SetLen(u16),
    /// Open a second handle to the same name, and drop it.
    OpenAgain,
}

#[derive(Debug, Arbitrary)]
struct SegmentCase {
    header: Header,
    len: FileLen,
    mode_writable_by_others: bool,
    ops: Vec<Op>,
}

/// A name of this process's own, new for each case.
fn unique_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_files_of_dead_runs);
    format!(
        "fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fuzzing process killed mid-case (a crash, a timeout, the end of a timed
/// campaign) leaves its planted file behind; the next run removes the files
/// whose process is gone.
pub fn remove_files_of_dead_runs() {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix("shmbox.fuzz-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn path_of(name: &str) -> String {
    format!("/dev/shm/shmbox.{name}")
}

impl Header {
    fn bytes(&self, capacity: u64) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        let choose = |c: &Choice<u32>, valid: u32| match c {
            Choice::Valid => valid,
            Choice::Other(v) => *v,
        };
        b[0..8].copy_from_slice(&self.bad_magic.unwrap_or(*b"shmbox\0\0"));
        b[8..12].copy_from_slice(&choose(&self.version, 1).to_le_bytes());
        b[12..16].copy_from_slice(&choose(&self.header_size, 256).to_le_bytes());
        b[16..24].copy_from_slice(&capacity.to_le_bytes());
        // Persistent: an until-last-close file that nobody holds is removed
        // at once by its opener, so only this lifetime gets further.
        b[24..28].copy_from_slice(&choose(&self.lifetime, 2).to_le_bytes());
        b[28..32].copy_from_slice(&choose(&self.flags, 0).to_le_bytes());
        if !self.not_ready {
            b[32..36].copy_from_slice(b"REDY");
        }
        b[64..68].copy_from_slice(&self.lock_word.to_le_bytes());
        b[68..72].copy_from_slice(&self.lock_owner_pid.to_le_bytes());
        b[72..76].copy_from_slice(&self.owner_deaths.to_le_bytes());
        b[76..80].copy_from_slice(&self.handoff_at_ms.to_le_bytes());
        b[128..136].copy_from_slice(&self.seq.to_le_bytes());
        b[136..140].copy_from_slice(&self.notify_word.to_le_bytes());
        for &(at, value) in &self.pokes {
            b[usize::from(at)] = value;
        }
        b
    }
}

/// Plants a file made from `data` under a fresh name, opens it, and runs the
/// operations it asks for, checking each outcome.
pub fn segment_file(data: &[u8]) {
    shmbox::install_sigbus_handler().expect("the SIGBUS handler installs");
    let Ok(case) = SegmentCase::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let name = unique_name();
    let path = path_of(&name);
    let capacity = u64::from(case.header.capacity);
    let len = match case.len {
        FileLen::Exact => HEADER as u64 + capacity,
        FileLen::Other(n) => u64::from(n),
    };
    let mut contents = case.header.bytes(capacity).to_vec();
    contents.resize(len as usize, 0);
    let mode = if case.mode_writable_by_others {
        0o666
    } else {
        0o600
    };
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .expect("a fresh name in /dev/shm");
        // The mode exactly, whatever the umask.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .expect("chmod");
        file.write_all(&contents).expect("writing the planted file");
    }
    let options = SegmentOptions::new()
        .timeout(Duration::from_millis(5))
        .init_timeout(Duration::from_millis(1));
    match options.open(&name) {
        Ok(segment) => run_ops(&segment, &name, &case.ops, &options),
        Err(e) => check_error(&e),
    }
    let _ = std::fs::remove_file(&path);
}

fn run_ops(segment: &Segment, name: &str, ops: &[Op], options: &SegmentOptions) {
    let size = segment.size();
    assert_eq!(segment.lifetime(), Lifetime::Persistent);
    for op in ops.iter().take(64) {
        match *op {
            Op::Write { offset, len } => {
                let data = vec![0x5A; usize::from(len)];
                check(
                    segment.write(usize::from(offset), &data),
                    size,
                    offset,
                    len,
                    |n| *n,
                );
            }
            Op::Read { offset, len } => {
                check(
                    segment.read(usize::from(offset), usize::from(len)),
                    size,
                    offset,
                    len,
                    |v| v.len(),
                );
            }
            Op::ReadConsistent { offset, len } => {
                check(
                    segment.read_consistent(usize::from(offset), usize::from(len)),
                    size,
                    offset,
                    len,
                    |s| s.data.len(),
                );
            }
            Op::GuardWrite {
                offset,
                ref bytes,
                fill,
            } => match segment.lock() {
                Ok(mut guard) => {
                    assert_eq!(guard.data().len(), size);
                    if let Some(fill) = fill {
                        let filled = guard.data_mut().fill(fill);
                        assert!(
                            matches!(filled, Ok(()) | Err(shmbox::Error::Truncated { .. })),
                            "{filled:?}"
                        );
                    }
                    let written = guard.write(usize::from(offset), bytes);
                    if let Ok(n) = &written {
                        assert_eq!(*n, bytes.len().min(size - usize::from(offset)));
                    }
                    match guard.unlock() {
                        Ok(_) => {}
                        Err(e) => check_error(&e),
                    }
                }
                Err(e) => check_error(&e),
            },
            Op::TryLock => match segment.try_lock() {
                Ok(Some(guard)) => drop(guard),
                Ok(None) => {}
                Err(e) => check_error(&e),
            },
            Op::WaitForChange { since } => match segment.wait_for_change(since, Duration::ZERO) {
                Ok(generation) => assert_ne!(generation, since),
                Err(e) => check_error(&e),
            },
            Op::Info => match segment.info() {
                Ok(info) => assert_eq!(info.size, size),
                Err(e) => check_error(&e),
            },
            Op::Generation => {
                let _ = segment.generation();
            }
            Op::SetLen(len) => {
                let _ = OpenOptions::new()
                    .write(true)
                    .open(path_of(name))
                    .and_then(|f| f.set_len(u64::from(len)));
            }
            Op::OpenAgain => match options.open(name) {
                Ok(second) => assert_eq!(second.size(), size),
                Err(e) => check_error(&e),
            },
        }
    }
}

/// An outcome of a clamped access: the sample's clamping on success, an
/// out-of-range error for an offset past the end, or another clear error.
fn check<T>(
    outcome: shmbox::Result<T>,
    size: usize,
    offset: u16,
    len: u16,
    got: impl Fn(&T) -> usize,
) {
    let offset = usize::from(offset);
    match outcome {
        Ok(value) => {
            assert!(offset <= size, "offset {offset} past {size} succeeded");
            assert_eq!(got(&value), usize::from(len).min(size - offset));
        }
        Err(Error::OutOfRange { .. }) => assert!(offset > size),
        Err(e) => check_error(&e),
    }
}

/// Every error can be printed as a sentence.
fn check_error(e: &Error) {
    let text = e.to_string();
    assert!(!text.is_empty());
    let _ = e.io_kind();
}

#[derive(Debug, Arbitrary)]
enum SizeInput {
    /// Any text at all.
    Text(String),
    /// A number with a unit, spelled in some way.
    Built {
        number: u64,
        unit: u8,
        uppercase: bool,
        space_before: bool,
        space_after: bool,
    },
}

const UNITS: [(&str, u64); 10] = [
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("kb", 1_000),
    ("mb", 1_000_000),
];

/// The `shmbox` command's parsing of sizes and offsets: never a panic; the
/// right value for every well-formed spelling; an error when it overflows.
pub fn cli_sizes(data: &[u8]) {
    use shmbox_cli::size::{human, parse_bytes, parse_usize};
    let Ok(input) = SizeInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        SizeInput::Text(text) => {
            let parsed = parse_bytes(&text);
            if let Ok(n) = parsed {
                let _ = human(n);
                let trimmed = text.trim();
                if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
                    assert_eq!(Some(n), trimmed.parse().ok(), "{text:?}");
                }
            } else if let Err(message) = &parsed {
                assert!(!message.is_empty());
            }
            assert_eq!(
                parse_usize(&text).ok(),
                parsed.ok().and_then(|n| usize::try_from(n).ok())
            );
        }
        SizeInput::Built {
            number,
            unit,
            uppercase,
            space_before,
            space_after,
        } => {
            let (spelling, multiplier) = UNITS[usize::from(unit) % UNITS.len()];
            let spelling = if uppercase {
                spelling.to_ascii_uppercase()
            } else {
                spelling.to_owned()
            };
            let text = format!(
                "{}{number}{spelling}{}",
                if space_before { " " } else { "" },
                if space_after { " " } else { "" }
            );
            match number.checked_mul(multiplier) {
                Some(expected) => assert_eq!(parse_bytes(&text), Ok(expected), "{text:?}"),
                None => {
                    let message = parse_bytes(&text).expect_err("overflow is an error");
                    assert!(message.contains("too large"), "{message}");
                }
            }
        }
    }
}
