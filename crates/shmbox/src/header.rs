//! The segment header: the first 256 bytes of every segment.
//!
//! The layout is this crate's own and is documented byte by byte in
//! `docs/FORMAT.md`; the const assertions below pin every offset to that
//! document. All integers are little-endian, and every field that changes after
//! creation is a naturally aligned 32- or 64-bit word accessed atomically, so
//! that two builds of the same format version (glibc or musl, any compiler)
//! interoperate. Nothing in it is a libc-private structure.
//!
//! The header is parsed from a byte copy ([`HeaderFields::parse`]) before the
//! segment is mapped, and every field is validated before it is used.

use std::mem::{offset_of, size_of};

use crate::sync::shared::{AtomicU8, AtomicU32, AtomicU64};
use crate::{Error, Lifetime};

/// The first eight bytes of every segment: `shmbox` and two NUL bytes.
pub(crate) const MAGIC: [u8; 8] = *b"shmbox\0\0";
/// The layout version this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The size of the header; the data region starts here.
pub(crate) const HEADER_SIZE: usize = 256;
/// `init_state` once the creator has written every other field: `READY` in ASCII.
pub(crate) const INIT_READY: u32 = u32::from_le_bytes(*b"REDY");

/// `flags` bit 0: the data is not after this header but in an object of its
/// own (the Windows backend's raw file mapping, shared with programs that
/// know nothing of shmbox). `notify_sleepers` is used only in such headers.
pub(crate) const FLAG_DETACHED_DATA: u32 = 1;

/// Lifetime codes stored in the `lifetime` field.
pub(crate) const LIFETIME_UNTIL_LAST_CLOSE: u32 = 1;
pub(crate) const LIFETIME_PERSISTENT: u32 = 2;

/// The header as it lies in shared memory.
///
/// Field order, sizes and offsets are the format; see `docs/FORMAT.md`.
/// The three groups sit on separate 64-byte cache lines so that lockers,
/// readers and idle identity fields do not share a line.
#[repr(C)]
pub(crate) struct Header {
    // Line 0: identity. Written once by the creator, before `init_state`.
    pub(crate) magic: AtomicU64,
    pub(crate) format_version: AtomicU32,
    pub(crate) header_size: AtomicU32,
    pub(crate) capacity: AtomicU64,
    pub(crate) lifetime: AtomicU32,
    pub(crate) flags: AtomicU32,
    pub(crate) init_state: AtomicU32,
    pub(crate) creator_pid: AtomicU32,
    pub(crate) created_unix_ns: AtomicU64,
    _reserved0: [AtomicU8; 16],

    // Line 1: the cross-process lock (see `lock.rs`).
    pub(crate) lock_word: AtomicU32,
    pub(crate) lock_owner_pid: AtomicU32,
    pub(crate) owner_deaths: AtomicU32,
    pub(crate) handoff_at_ms: AtomicU32,
    _reserved1: [AtomicU8; 48],

    // Line 2: the seqlock and change notification (see `seqlock.rs`, `notify.rs`).
    pub(crate) seq: AtomicU64,
    pub(crate) notify_word: AtomicU32,
    pub(crate) last_writer_pid: AtomicU32,
    pub(crate) last_write_unix_s: AtomicU64,
    /// Detached headers only: processes registered to sleep on the notify
    /// semaphore (see `sys/windows.rs`).
    pub(crate) notify_sleepers: AtomicU32,
    _reserved2: [AtomicU8; 36],

    // Line 3: reserved for later versions.
    _reserved3: [AtomicU8; 64],
}

const _: () = {
    assert!(size_of::<Header>() == HEADER_SIZE);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, format_version) == 8);
    assert!(offset_of!(Header, header_size) == 12);
    assert!(offset_of!(Header, capacity) == 16);
    assert!(offset_of!(Header, lifetime) == 24);
    assert!(offset_of!(Header, flags) == 28);
    assert!(offset_of!(Header, init_state) == 32);
    assert!(offset_of!(Header, creator_pid) == 36);
    assert!(offset_of!(Header, created_unix_ns) == 40);
    assert!(offset_of!(Header, lock_word) == 64);
    assert!(offset_of!(Header, lock_owner_pid) == 68);
    assert!(offset_of!(Header, owner_deaths) == 72);
    assert!(offset_of!(Header, handoff_at_ms) == 76);
    assert!(offset_of!(Header, seq) == 128);
    assert!(offset_of!(Header, notify_word) == 136);
    assert!(offset_of!(Header, last_writer_pid) == 140);
    assert!(offset_of!(Header, last_write_unix_s) == 144);
    assert!(offset_of!(Header, notify_sleepers) == 152);
    // Little-endian only: the format stores integers in native order through
    // atomics, so a big-endian build would not read what FORMAT.md describes.
    assert!(cfg!(target_endian = "little"));
};

impl Header {
    /// Writes the identity fields of a new segment and publishes it.
    ///
    /// The mapping is not yet visible under its name when this runs; the
    /// `init_state` word is still stored last, with release ordering, for
    /// openers of other implementations that create in place.
    #[cfg_attr(all(target_os = "linux", not(miri)), allow(dead_code))] // Linux writes `initial_bytes`
    pub(crate) fn initialise(
        &self,
        capacity: u64,
        lifetime: Lifetime,
        flags: u32,
        pid: u32,
        now_ns: u64,
    ) {
        use crate::sync::Ordering::{Relaxed, Release};
        self.magic.store(u64::from_le_bytes(MAGIC), Relaxed);
        self.format_version.store(FORMAT_VERSION, Relaxed);
        self.header_size.store(HEADER_SIZE as u32, Relaxed);
        self.capacity.store(capacity, Relaxed);
        self.lifetime.store(lifetime.code(), Relaxed);
        self.flags.store(flags, Relaxed);
        self.creator_pid.store(pid, Relaxed);
        self.created_unix_ns.store(now_ns, Relaxed);
        self.init_state.store(INIT_READY, Release);
    }
}

/// The bytes of a new segment's header, as [`Header::initialise`] leaves
/// them: for writing with `pwrite` before the segment has a name or a
/// mapping.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn initial_bytes(
    capacity: u64,
    lifetime: Lifetime,
    flags: u32,
    pid: u32,
    now_ns: u64,
) -> [u8; HEADER_SIZE] {
    let mut b = [0u8; HEADER_SIZE];
    let mut put =
        |offset: usize, bytes: &[u8]| b[offset..offset + bytes.len()].copy_from_slice(bytes);
    put(offset_of!(Header, magic), &MAGIC);
    put(
        offset_of!(Header, format_version),
        &FORMAT_VERSION.to_le_bytes(),
    );
    put(
        offset_of!(Header, header_size),
        &(HEADER_SIZE as u32).to_le_bytes(),
    );
    put(offset_of!(Header, capacity), &capacity.to_le_bytes());
    put(offset_of!(Header, lifetime), &lifetime.code().to_le_bytes());
    put(offset_of!(Header, flags), &flags.to_le_bytes());
    put(offset_of!(Header, creator_pid), &pid.to_le_bytes());
    put(offset_of!(Header, created_unix_ns), &now_ns.to_le_bytes());
    put(offset_of!(Header, init_state), &INIT_READY.to_le_bytes());
    b
}

impl Header {
    /// Every field, each read atomically (so not one consistent snapshot).
    pub(crate) fn fields(&self) -> HeaderFields {
        use crate::sync::Ordering::{Acquire, Relaxed};
        HeaderFields {
            magic: self.magic.load(Relaxed).to_le_bytes(),
            format_version: self.format_version.load(Relaxed),
            header_size: self.header_size.load(Relaxed),
            capacity: self.capacity.load(Relaxed),
            lifetime: self.lifetime.load(Relaxed),
            flags: self.flags.load(Relaxed),
            init_state: self.init_state.load(Acquire),
            creator_pid: self.creator_pid.load(Relaxed),
            created_unix_ns: self.created_unix_ns.load(Relaxed),
            lock_word: self.lock_word.load(Relaxed),
            lock_owner_pid: self.lock_owner_pid.load(Relaxed),
            owner_deaths: self.owner_deaths.load(Relaxed),
            seq: self.seq.load(Acquire),
            last_writer_pid: self.last_writer_pid.load(Relaxed),
            last_write_unix_s: self.last_write_unix_s.load(Relaxed),
        }
    }
}

/// Every field of a header, decoded from a byte copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderFields {
    pub(crate) magic: [u8; 8],
    pub(crate) format_version: u32,
    pub(crate) header_size: u32,
    pub(crate) capacity: u64,
    pub(crate) lifetime: u32,
    pub(crate) flags: u32,
    pub(crate) init_state: u32,
    pub(crate) creator_pid: u32,
    pub(crate) created_unix_ns: u64,
    pub(crate) lock_word: u32,
    pub(crate) lock_owner_pid: u32,
    pub(crate) owner_deaths: u32,
    pub(crate) seq: u64,
    pub(crate) last_writer_pid: u32,
    pub(crate) last_write_unix_s: u64,
}

/// What makes a header unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// Not (yet) initialised: the magic is still zero or `init_state` is not
    /// `READY`. The creator may still be at work, so the opener waits.
    NotReady,
    /// A valid magic with another format version.
    Version(u32),
    /// Anything else, with a reason for the error message.
    Corrupt(String),
}

impl HeaderFields {
    /// Decodes a header from its bytes. Never fails: validation is separate.
    #[cfg_attr(windows, allow(dead_code))] // Windows maps its header object; only files are parsed
    pub(crate) fn parse(b: &[u8; HEADER_SIZE]) -> HeaderFields {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(w)
        };
        let mut magic = [0; 8];
        magic.copy_from_slice(&b[0..8]);
        HeaderFields {
            magic,
            format_version: u32_at(8),
            header_size: u32_at(12),
            capacity: u64_at(16),
            lifetime: u32_at(24),
            flags: u32_at(28),
            init_state: u32_at(32),
            creator_pid: u32_at(36),
            created_unix_ns: u64_at(40),
            lock_word: u32_at(64),
            lock_owner_pid: u32_at(68),
            owner_deaths: u32_at(72),
            seq: u64_at(128),
            last_writer_pid: u32_at(140),
            last_write_unix_s: u64_at(144),
        }
    }

    /// Checks the identity fields against this build's format and the file's
    /// real size. On success the capacity is safe to map: the file holds
    /// `HEADER_SIZE + capacity` bytes.
    #[cfg_attr(windows, allow(dead_code))] // a segment file's check; Windows has validate_detached
    pub(crate) fn validate(&self, file_size: u64) -> Result<(), HeaderProblem> {
        self.validate_identity(0)?;
        let expected = HEADER_SIZE as u64 + self.capacity;
        if file_size != expected {
            return Err(HeaderProblem::Corrupt(format!(
                "the file holds {file_size} bytes, but its header says {expected} \
                 ({HEADER_SIZE} of header and {} of data)",
                self.capacity
            )));
        }
        Ok(())
    }

    /// Checks a detached header (`FLAG_DETACHED_DATA`) whose data object
    /// holds `data_size` bytes, or, where the system reports sizes rounded up
    /// to a page (Wine), whose capacity rounds up to `data_size`.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn validate_detached(&self, data_size: u64, page: u64) -> Result<(), HeaderProblem> {
        self.validate_identity(FLAG_DETACHED_DATA)?;
        if data_size != self.capacity && data_size != self.capacity.next_multiple_of(page) {
            return Err(HeaderProblem::Corrupt(format!(
                "its data object holds {data_size} bytes, but its header says {}",
                self.capacity
            )));
        }
        Ok(())
    }

    fn validate_identity(&self, flags: u32) -> Result<(), HeaderProblem> {
        if self.magic != MAGIC {
            return Err(if self.magic == [0; 8] {
                HeaderProblem::NotReady
            } else {
                HeaderProblem::Corrupt(format!(
                    "its first bytes are {:02x?}, not the shmbox magic",
                    self.magic
                ))
            });
        }
        if self.format_version != FORMAT_VERSION {
            return Err(HeaderProblem::Version(self.format_version));
        }
        if self.init_state != INIT_READY {
            return Err(HeaderProblem::NotReady);
        }
        if self.header_size as usize != HEADER_SIZE {
            return Err(HeaderProblem::Corrupt(format!(
                "its header size is {}, not {HEADER_SIZE}",
                self.header_size
            )));
        }
        if self.capacity == 0 || self.capacity > max_capacity() {
            return Err(HeaderProblem::Corrupt(format!(
                "its capacity of {} bytes is out of range",
                self.capacity
            )));
        }
        if Lifetime::from_code(self.lifetime).is_none() {
            return Err(HeaderProblem::Corrupt(format!(
                "its lifetime code {} is unknown",
                self.lifetime
            )));
        }
        if self.flags != flags {
            return Err(HeaderProblem::Corrupt(format!(
                "its flags word is {:#x}; a {} header has {flags:#x}",
                self.flags,
                if flags & FLAG_DETACHED_DATA == 0 {
                    "segment's"
                } else {
                    "detached"
                }
            )));
        }
        Ok(())
    }
}

/// The largest capacity this build maps: the whole segment must fit in an
/// `isize`, as every Rust allocation and slice must.
pub(crate) const fn max_capacity() -> u64 {
    (isize::MAX as u64) - HEADER_SIZE as u64
}

/// Turns a header problem into the public error for segment `name`.
#[cfg_attr(miri, allow(dead_code))] // the in-process backend parses no files
pub(crate) fn problem_to_error(name: &str, problem: HeaderProblem) -> Error {
    match problem {
        HeaderProblem::NotReady => Error::NotInitialized {
            name: name.to_owned(),
            waited: std::time::Duration::ZERO,
        },
        HeaderProblem::Version(found) => Error::IncompatibleVersion {
            name: name.to_owned(),
            found,
            supported: FORMAT_VERSION,
        },
        HeaderProblem::Corrupt(reason) => Error::Corrupt {
            name: name.to_owned(),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_bytes(capacity: u64) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        b[16..24].copy_from_slice(&capacity.to_le_bytes());
        b[24..28].copy_from_slice(&LIFETIME_PERSISTENT.to_le_bytes());
        b[32..36].copy_from_slice(&INIT_READY.to_le_bytes());
        b
    }

    #[test]
    fn a_valid_header_passes() {
        let h = HeaderFields::parse(&valid_bytes(1024));
        assert_eq!(h.capacity, 1024);
        assert_eq!(h.validate(256 + 1024), Ok(()));
    }

    #[test]
    fn each_bad_field_is_named() {
        let file = 256 + 1024;
        let check = |edit: &dyn Fn(&mut [u8; HEADER_SIZE]), size: u64| {
            let mut b = valid_bytes(1024);
            edit(&mut b);
            HeaderFields::parse(&b).validate(size)
        };
        assert_eq!(
            check(&|b| b[0..8].fill(0), file),
            Err(HeaderProblem::NotReady)
        );
        assert!(
            matches!(check(&|b| b[0] = b'X', file), Err(HeaderProblem::Corrupt(r)) if r.contains("magic"))
        );
        assert_eq!(check(&|b| b[8] = 2, file), Err(HeaderProblem::Version(2)));
        assert_eq!(
            check(&|b| b[32..36].fill(0), file),
            Err(HeaderProblem::NotReady)
        );
        assert!(
            matches!(check(&|b| b[12..16].fill(0), file), Err(HeaderProblem::Corrupt(r)) if r.contains("header size"))
        );
        assert!(
            matches!(check(&|b| b[16..24].fill(0), file), Err(HeaderProblem::Corrupt(r)) if r.contains("capacity"))
        );
        assert!(
            matches!(check(&|b| b[16..24].fill(0xff), file), Err(HeaderProblem::Corrupt(r)) if r.contains("capacity"))
        );
        assert!(
            matches!(check(&|_| {}, file - 1), Err(HeaderProblem::Corrupt(r)) if r.contains("1279 bytes"))
        );
        assert!(
            matches!(check(&|b| b[24] = 9, file), Err(HeaderProblem::Corrupt(r)) if r.contains("lifetime"))
        );
        assert!(
            matches!(check(&|b| b[28] = 1, file), Err(HeaderProblem::Corrupt(r)) if r.contains("flags"))
        );
    }

    #[test]
    fn initial_bytes_are_what_initialise_writes() {
        let h = Header {
            magic: AtomicU64::new(0),
            format_version: AtomicU32::new(0),
            header_size: AtomicU32::new(0),
            capacity: AtomicU64::new(0),
            lifetime: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            init_state: AtomicU32::new(0),
            creator_pid: AtomicU32::new(0),
            created_unix_ns: AtomicU64::new(0),
            _reserved0: std::array::from_fn(|_| AtomicU8::new(0)),
            lock_word: AtomicU32::new(0),
            lock_owner_pid: AtomicU32::new(0),
            owner_deaths: AtomicU32::new(0),
            handoff_at_ms: AtomicU32::new(0),
            _reserved1: std::array::from_fn(|_| AtomicU8::new(0)),
            seq: AtomicU64::new(0),
            notify_word: AtomicU32::new(0),
            last_writer_pid: AtomicU32::new(0),
            last_write_unix_s: AtomicU64::new(0),
            notify_sleepers: AtomicU32::new(0),
            _reserved2: std::array::from_fn(|_| AtomicU8::new(0)),
            _reserved3: std::array::from_fn(|_| AtomicU8::new(0)),
        };
        h.initialise(4000, Lifetime::UntilLastClose, 0, 4321, 1_700_000_000_123);
        let bytes = initial_bytes(4000, Lifetime::UntilLastClose, 0, 4321, 1_700_000_000_123);
        let parsed = HeaderFields::parse(&bytes);
        assert_eq!(parsed, h.fields());
        assert_eq!(parsed.validate(256 + 4000), Ok(()));
        // Nothing else is set: the lock, seqlock and reserved bytes are zero.
        assert!(bytes[48..].iter().all(|&b| b == 0));
    }

    #[test]
    fn parse_reads_little_endian_at_documented_offsets() {
        let mut b = valid_bytes(7);
        b[64..68].copy_from_slice(&0x8000_0005u32.to_le_bytes());
        b[128..136].copy_from_slice(&42u64.to_le_bytes());
        b[140..144].copy_from_slice(&1234u32.to_le_bytes());
        let h = HeaderFields::parse(&b);
        assert_eq!(h.lock_word, 0x8000_0005);
        assert_eq!(h.seq, 42);
        assert_eq!(h.last_writer_pid, 1234);
        assert_eq!(h.capacity, 7);
    }
}
