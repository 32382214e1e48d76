//! Bad input of every kind gets its own error variant and a message that says
//! what to do, and never a panic, a hang or a crash.
//!
//! Files planted under segment names are made by hand from docs/FORMAT.md.
#![allow(unsafe_code)]
// Linux-specific: files in /dev/shm, signals, uids. The backend-neutral
// behaviour is in conformance.rs, which every platform runs.
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use common::{Cleanup, segment_path, unique_name};
use shmbox::{Error, Segment, SegmentOptions};

/// A header as docs/FORMAT.md describes it, followed by `capacity` zeroes.
fn segment_bytes(capacity: u64, version: u32, ready: bool) -> Vec<u8> {
    let mut b = vec![0u8; 256 + capacity as usize];
    b[0..8].copy_from_slice(b"shmbox\0\0");
    b[8..12].copy_from_slice(&version.to_le_bytes());
    b[12..16].copy_from_slice(&256u32.to_le_bytes());
    b[16..24].copy_from_slice(&capacity.to_le_bytes());
    b[24..28].copy_from_slice(&2u32.to_le_bytes()); // persistent
    if ready {
        b[32..36].copy_from_slice(b"REDY");
    }
    b
}

/// Puts `bytes` under the segment name `name`, mode 0600.
fn plant(name: &str, bytes: &[u8]) -> Cleanup {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(segment_path(name))
        .unwrap();
    f.write_all(bytes).unwrap();
    Cleanup(name.to_owned())
}

fn expect_err<T: std::fmt::Debug>(result: shmbox::Result<T>) -> Error {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn invalid_names() {
    for (name, reason) in [
        ("", "it is empty"),
        ("a/b", "it contains '/'"),
        ("..", "\".\" and \"..\" are reserved"),
        ("a\0b", "it contains a NUL byte"),
    ] {
        let e = expect_err(Segment::open(name));
        assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("invalid segment name {name:?}: {reason}")
        );
    }
    let e = expect_err(Segment::open_or_create("x".repeat(201), 1));
    assert!(e.to_string().contains("longer than 200 bytes"), "{e}");
}

#[test]
fn invalid_sizes() {
    let name = unique_name("size");
    let e = expect_err(Segment::create(&name, 0));
    assert!(matches!(e, Error::InvalidSize { size: 0, .. }));
    assert_eq!(
        e.to_string(),
        "invalid segment size 0: a segment holds at least one byte"
    );
    let e = expect_err(Segment::create(&name, usize::MAX));
    assert!(
        e.to_string().contains("larger than this machine can map"),
        "{e}"
    );
    assert!(!segment_path(&name).exists());
}

#[test]
fn invalid_modes() {
    let name = unique_name("mode");
    for mode in [0o4600, 0o1777, 0o044, 0o400] {
        let e = expect_err(SegmentOptions::new().mode(mode).create(&name, 8));
        assert!(matches!(e, Error::InvalidMode { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("owner must keep read and write access"),
            "{e}"
        );
    }
    assert!(!segment_path(&name).exists());
}

#[test]
fn mode_is_applied_exactly_despite_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let name = unique_name("mode-exact");
    let seg = SegmentOptions::new().mode(0o666).create(&name, 8).unwrap();
    let mode = std::fs::metadata(segment_path(&name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);
    drop(seg);
    let seg = Segment::create(&name, 8).unwrap();
    let mode = std::fs::metadata(segment_path(&name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the default is owner-only");
    drop(seg);
}

#[test]
fn segment_writable_by_every_user_is_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let name = unique_name("world-writable");
    let creator = SegmentOptions::new().mode(0o666).create(&name, 8).unwrap();
    let e = expect_err(Segment::open(&name));
    assert!(
        matches!(e, Error::WritableByOthers { mode: 0o666, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "segment {name:?} has mode 0666: any user can write to it, so its contents and its \
             lock cannot be trusted (remove the o+w bit with chmod, or allow such segments \
             explicitly)"
        )
    );
    assert_eq!(e.io_kind(), std::io::ErrorKind::PermissionDenied);
    // Nor by open_or_create, which must not fall back to anything.
    let e = expect_err(Segment::open_or_create(&name, 8));
    assert!(matches!(e, Error::WritableByOthers { .. }), "{e:?}");
    // Allowed explicitly, it opens.
    let trusting = SegmentOptions::new()
        .allow_writable_by_others(true)
        .open(&name)
        .unwrap();
    drop(trusting);
    // A segment made safe, then opened to everyone by chmod, is refused too.
    drop(creator);
    let seg = Segment::create(&name, 8).unwrap();
    std::fs::set_permissions(segment_path(&name), std::fs::Permissions::from_mode(0o602)).unwrap();
    let e = expect_err(Segment::open(&name));
    assert!(
        matches!(e, Error::WritableByOthers { mode: 0o602, .. }),
        "{e:?}"
    );
    // Inspection still works, and shows the mode.
    assert_eq!(shmbox::info(&name).unwrap().mode, Some(0o602));
    // Group write access is the way to share, and is accepted.
    std::fs::set_permissions(segment_path(&name), std::fs::Permissions::from_mode(0o660)).unwrap();
    drop(Segment::open(&name).unwrap());
    drop(seg);
}

#[test]
fn missing_segment() {
    let name = unique_name("missing");
    let e = expect_err(Segment::open(&name));
    assert!(matches!(e, Error::NotFound { .. }));
    assert_eq!(
        e.to_string(),
        format!("no segment named {name:?} (create it first, or open it with open_or_create)")
    );
    assert!(matches!(shmbox::info(&name), Err(Error::NotFound { .. })));
    assert!(matches!(shmbox::remove(&name), Err(Error::NotFound { .. })));
    assert_eq!(e.io_kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn exclusive_creation_of_an_existing_name() {
    let name = unique_name("exists");
    let seg = Segment::create(&name, 8).unwrap();
    let e = expect_err(Segment::create(&name, 8));
    assert!(matches!(e, Error::AlreadyExists { .. }));
    assert!(
        e.to_string()
            .contains("already exists (open it, or remove it first)"),
        "{e}"
    );
    drop(seg);
}

#[test]
fn size_mismatch() {
    let name = unique_name("mismatch");
    let seg = Segment::create(&name, 256).unwrap();
    let e = expect_err(Segment::open_or_create(&name, 512));
    assert!(
        matches!(
            e,
            Error::SizeMismatch {
                existing: 256,
                requested: 512,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("holds 256 bytes, not the 512 asked for"),
        "{e}"
    );
    // Opening without a size discovers it.
    assert_eq!(Segment::open(&name).unwrap().size(), 256);
    drop(seg);
}

#[test]
fn offsets_past_the_end() {
    let name = unique_name("range");
    let seg = Segment::create(&name, 16).unwrap();
    let e = expect_err(seg.write(17, b"x"));
    assert!(matches!(
        e,
        Error::OutOfRange {
            offset: 17,
            size: 16
        }
    ));
    assert_eq!(
        e.to_string(),
        "offset 17 is past the end of the segment (16 bytes): use an offset from 0 to 16"
    );
    assert!(matches!(seg.read(17, 1), Err(Error::OutOfRange { .. })));
    assert!(matches!(
        seg.read_into(usize::MAX, &mut [0; 4]),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        seg.read_consistent(17, 1),
        Err(Error::OutOfRange { .. })
    ));
    let mut guard = seg.lock().unwrap();
    assert!(matches!(
        guard.write(99, b"x"),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        guard.read_into(99, &mut [0; 1]),
        Err(Error::OutOfRange { .. })
    ));
    drop(guard);
    // The end itself is in range, and clamps to nothing.
    assert_eq!(seg.write(16, b"abc").unwrap(), 0);
    assert_eq!(seg.read(16, 10).unwrap(), b"");
    // Nothing was written by the failed calls.
    assert_eq!(seg.generation(), 0);
    assert_eq!(seg.read(0, 16).unwrap(), vec![0; 16]);
}

#[test]
fn lock_timeout() {
    let name = unique_name("timeout");
    let seg = Segment::create(&name, 8).unwrap();
    let other = SegmentOptions::new()
        .timeout(Duration::from_millis(50))
        .open(&name)
        .unwrap();
    let held = seg.lock().unwrap();
    let asked = Instant::now();
    let e = expect_err(other.write(0, b"x"));
    assert!(asked.elapsed() >= Duration::from_millis(50));
    assert!(
        matches!(
            e,
            Error::Timeout {
                waiting_for: shmbox::WaitFor::Lock,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "timed out after 50ms waiting for the lock of segment {name:?}: \
             another process holds it (try again, or wait longer)"
        )
    );
    assert!(matches!(other.read(0, 1), Err(Error::Timeout { .. })));
    assert!(matches!(other.try_lock(), Ok(None)));
    drop(held);
    assert_eq!(other.write(0, b"x").unwrap(), 1);
}

#[test]
fn consistent_read_times_out_while_a_live_writer_keeps_writing() {
    let name = unique_name("read-timeout");
    let seg = Segment::create(&name, 8).unwrap();
    let reader = SegmentOptions::new()
        .timeout(Duration::from_millis(100))
        .open(&name)
        .unwrap();
    let mut guard = seg.lock().unwrap();
    guard.data_mut().set(0, 1).unwrap(); // a write in progress, by a live handle
    let asked = Instant::now();
    let e = expect_err(reader.read_consistent(0, 8));
    assert!(asked.elapsed() >= Duration::from_millis(100));
    assert!(
        matches!(
            e,
            Error::Timeout {
                waiting_for: shmbox::WaitFor::ConsistentRead,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("waiting for a write in progress to finish"),
        "{e}"
    );
    drop(guard);
    assert_eq!(reader.read_consistent(0, 1).unwrap().data, [1]);
}

#[test]
fn newer_format_version() {
    let name = unique_name("version");
    let _planted = plant(&name, &segment_bytes(64, 2, true));
    let e = expect_err(Segment::open(&name));
    assert!(
        matches!(
            e,
            Error::IncompatibleVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("has format version 2, but this build reads version 1"),
        "{e}"
    );
    assert!(matches!(
        shmbox::info(&name),
        Err(Error::IncompatibleVersion { .. })
    ));
    assert!(
        !shmbox::list()
            .unwrap()
            .iter()
            .any(|i| i.name.as_str() == name)
    );
}

#[test]
fn half_initialised_segment_is_waited_for_then_refused() {
    let name = unique_name("uninit");
    let _planted = plant(&name, &segment_bytes(64, 1, false));
    let asked = Instant::now();
    let e = expect_err(
        SegmentOptions::new()
            .init_timeout(Duration::from_millis(100))
            .open(&name),
    );
    let waited = asked.elapsed();
    assert!(matches!(e, Error::NotInitialized { .. }), "{e:?}");
    assert!(
        waited >= Duration::from_millis(100),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5));
    assert!(e.to_string().contains("its creator may have died"), "{e}");
}

#[test]
fn half_initialised_segment_that_completes_is_opened() {
    let name = unique_name("late-init");
    let _planted = plant(&name, &segment_bytes(64, 1, false));
    let path = segment_path(&name);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(32)).unwrap();
            f.write_all(b"REDY").unwrap();
        });
        let seg = SegmentOptions::new()
            .init_timeout(Duration::from_secs(5))
            .open(&name)
            .unwrap();
        assert_eq!(seg.size(), 64);
    });
}

#[test]
fn foreign_file_under_the_name() {
    let name = unique_name("magic");
    let _planted = plant(&name, &[0x7f; 1024]);
    let e = expect_err(Segment::open(&name));
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("not the shmbox magic"), "{e}");
    assert!(
        e.to_string().contains("remove it and create it again"),
        "{e}"
    );
}

#[test]
fn file_shorter_than_the_header() {
    let name = unique_name("short");
    let _planted = plant(&name, b"shmbox\0\0short");
    let e = expect_err(
        SegmentOptions::new()
            .init_timeout(Duration::from_millis(20))
            .open(&name),
    );
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("holds 13 bytes, less than the 256-byte header"),
        "{e}"
    );
}

#[test]
fn file_shorter_than_its_header_says_is_never_mapped() {
    // Mapping it would raise SIGBUS on the missing pages.
    let name = unique_name("truncated");
    let mut bytes = segment_bytes(1 << 20, 1, true);
    bytes.truncate(256 + 4096);
    let _planted = plant(&name, &bytes);
    let e = expect_err(Segment::open(&name));
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("the file holds 4352 bytes, but its header says 1048832"),
        "{e}"
    );
}

/// Regression, found by fuzzing: a sequence word at its maximum made the
/// commit overflow (a panic in debug builds).
#[test]
fn a_sequence_word_at_its_maximum_wraps_instead_of_overflowing() {
    let name = unique_name("seq-max");
    let mut bytes = segment_bytes(64, 1, true);
    bytes[128..136].copy_from_slice(&u64::MAX.to_le_bytes());
    let _planted = plant(&name, &bytes);
    let seg = Segment::open(&name).unwrap();
    // It reads as torn (odd), a write repairs it, and the count wraps to 0.
    assert!(matches!(
        seg.read_consistent(0, 8),
        Err(Error::Inconsistent { .. })
    ));
    assert_eq!(seg.write(0, b"wrapped!").unwrap(), 8);
    assert_eq!(seg.generation(), 0);
    assert_eq!(seg.read_consistent(0, 8).unwrap().data, b"wrapped!");
}

/// Regression, found by fuzzing: a creation or write time past what a
/// `SystemTime` holds made `info` panic on the addition.
#[test]
fn absurd_times_in_the_header_are_reported_as_unknown() {
    let name = unique_name("absurd-times");
    let mut bytes = segment_bytes(64, 1, true);
    bytes[144..152].copy_from_slice(&u64::MAX.to_le_bytes()); // last_write_unix_s
    let _planted = plant(&name, &bytes);
    let info = shmbox::info(&name).unwrap();
    assert_eq!(info.created, None, "a creation time of 0 is no time");
    assert_eq!(info.last_write, None);
    let seg = Segment::open(&name).unwrap();
    assert_eq!(seg.info().unwrap().last_write, None);
    // Any time up to the year 9999 is kept; one second later is not.
    let mut bytes = segment_bytes(64, 1, true);
    bytes[144..152].copy_from_slice(&253_402_300_799u64.to_le_bytes());
    let name = unique_name("year-9999");
    let _planted = plant(&name, &bytes);
    assert!(shmbox::info(&name).unwrap().last_write.is_some());
}

#[test]
fn absurd_capacity_in_the_header() {
    let name = unique_name("absurd");
    let mut bytes = segment_bytes(64, 1, true);
    bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let _planted = plant(&name, &bytes);
    let e = expect_err(Segment::open(&name));
    assert!(
        e.to_string()
            .contains("capacity of 18446744073709551615 bytes is out of range"),
        "{e}"
    );
}

#[test]
fn symlink_under_the_name_is_not_followed() {
    let name = unique_name("symlink");
    let target = unique_name("symlink-target");
    let real = Segment::create(&target, 8).unwrap();
    std::os::unix::fs::symlink(segment_path(&target), segment_path(&name)).unwrap();
    let _cleanup = Cleanup(name.clone());
    let e = expect_err(Segment::open(&name));
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    drop(real);
}

#[test]
fn fifo_under_the_name_does_not_hang() {
    let name = unique_name("fifo");
    let path = std::ffi::CString::new(segment_path(&name).to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let _cleanup = Cleanup(name.clone());
    let e = expect_err(Segment::open(&name));
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn directory_under_the_name() {
    let name = unique_name("dir");
    std::fs::create_dir(segment_path(&name)).unwrap();
    let e = expect_err(Segment::open(&name));
    std::fs::remove_dir(segment_path(&name)).unwrap();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn no_space_for_a_huge_segment() {
    let name = unique_name("huge");
    let e = expect_err(Segment::create(&name, 1 << 50));
    assert!(matches!(e, Error::NoSpace { .. }), "{e:?}");
    assert!(e.to_string().contains("not enough shared memory"), "{e}");
    assert!(
        std::error::Error::source(&e).is_some(),
        "the OS error is kept"
    );
    assert!(!segment_path(&name).exists());
}

#[test]
fn errors_say_which_segment() {
    let e = expect_err(Segment::open("no-such-segment-for-errors-test"));
    assert_eq!(e.segment_name(), Some("no-such-segment-for-errors-test"));
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_guard_that_panics_mid_write_leaves_the_data_marked_torn() {
    let name = unique_name("panic");
    let seg = Segment::create(&name, 8).unwrap();
    seg.write(0, b"12345678").unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut guard = seg.lock().unwrap();
        guard.data_mut().copy_from_slice(0, b"abcd").unwrap();
        panic!("in the middle of an update");
    }));
    assert!(result.is_err());
    assert!(matches!(
        seg.read_consistent(0, 8),
        Err(Error::Inconsistent { generation: 1, .. })
    ));
    let mut guard = seg.lock().unwrap();
    assert!(
        guard.owner_died().is_none(),
        "the lock was released, not abandoned"
    );
    assert!(!guard.is_consistent());
    guard.mark_consistent();
    drop(guard);
    assert_eq!(seg.read(0, 8).unwrap(), b"abcd5678");
}
