//! The reaper: removes an `UntilLastClose` segment once every holder has
//! closed it or died.
//!
//! Every holder keeps a shared `flock` on the segment's file, and the kernel
//! drops it when the holder closes the file or dies. The reaper is a small
//! process that blocks for the exclusive lock, which it gets only once no
//! holder is left. It then removes the name, if the name still refers to its
//! segment, and exits. The creator starts it; an opener that finds none (it
//! was killed, say) starts another. Only one holds [`REAPER_BYTE`] at a time.
//!
//! The reaper is forked from a process that may be large and multithreaded.
//! So it is prepared before the fork and, in the child, makes only system
//! calls: it resets signal handlers, closes every other descriptor, and unmaps
//! every anonymous writable mapping except its own stack and thread block, so
//! it keeps no copy-on-write share of its parent's heap, and every shared
//! mapping, each of which would keep an open file description of its
//! parent's (and the locks on it) alive.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::fs::{self, AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use rustix::process::{Pid, Resource, Rlimit, WaitOptions};

use super::{REAPER_BYTE, ofd_is_locked, ofd_try_lock};

/// Room for `/dev/shm/shmbox.` and the longest name, with its NUL.
const PATH_CAPACITY: usize = 256;

/// What the reaper needs, made before the fork: after it, nothing allocates.
struct Job {
    fd: RawFd,
    path: [u8; PATH_CAPACITY],
    dev: u64,
    ino: u64,
}

/// Starts a reaper for the segment unless one is running.
pub(super) fn ensure(fd: BorrowedFd<'_>, path: &CStr, dev: u64, ino: u64) {
    if !matches!(ofd_is_locked(fd, REAPER_BYTE), Ok(true)) {
        spawn(fd, path, dev, ino);
    }
}

/// Starts a reaper for the segment open as `fd`, named `path`.
///
/// Best effort: if it cannot start, a segment whose holders all die stays
/// until the next `open`, `info` or `list` of it notices and removes it.
pub(super) fn spawn(fd: BorrowedFd<'_>, path: &CStr, dev: u64, ino: u64) {
    let bytes = path.to_bytes_with_nul();
    if bytes.len() > PATH_CAPACITY {
        return;
    }
    // The reaper needs an open file description of its own: flocks belong to
    // those, and one shared with this process would carry this process's lock.
    let Some(own) = reopen(fd, dev, ino) else {
        return;
    };
    let mut job = Job {
        fd: own.as_raw_fd(),
        path: [0; PATH_CAPACITY],
        dev,
        ino,
    };
    job.path[..bytes.len()].copy_from_slice(bytes);

    // SAFETY: the child of this fork runs `detach`, which makes only system
    // calls (it neither allocates nor takes locks that another thread of this
    // process might hold) and never returns, as fork in a multithreaded
    // process requires.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: this is the child of the fork above.
        unsafe { detach(&job) }
    }
    if let Some(pid) = Pid::from_raw(pid) {
        // The intermediate child exits at once; collect it.
        while let Err(Errno::INTR) = rustix::process::waitpid(Some(pid), WaitOptions::empty()) {}
    }
    // `own` closes here; the reaper has its own copy of the descriptor.
}

/// Opens the same file again, as a new open file description.
fn reopen(fd: BorrowedFd<'_>, dev: u64, ino: u64) -> Option<OwnedFd> {
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let own = fs::open(
        proc_path.as_str(),
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = fs::fstat(&own).ok()?;
    (st.st_dev == dev && st.st_ino == ino).then_some(own)
}

/// The first child: leaves the caller's session and forks the reaper, so that
/// the reaper is nobody's child and init collects it.
///
/// # Safety
///
/// Call only in the child of `fork`. It never returns.
unsafe fn detach(job: &Job) -> ! {
    let _ = rustix::process::setsid();
    // SAFETY: this process has one thread; its child runs `reap`, which
    // makes only system calls.
    if unsafe { libc::fork() } == 0 {
        // SAFETY: this is the child of the fork above.
        unsafe { reap(job) }
    }
    // SAFETY: `_exit` ends the process without running the parent's atexit
    // handlers or destructors, which belong to the parent.
    unsafe { libc::_exit(0) }
}

/// The reaper itself.
///
/// # Safety
///
/// Call only in a child of `fork` that has a single thread, with `job.fd`
/// open. It never returns.
unsafe fn reap(job: &Job) -> ! {
    reset_signals();
    let _ = rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    let _ = rustix::thread::set_name(c"shmbox-reaper");
    rename_command_line();
    // SAFETY: `job.fd` was opened by `spawn` before the fork, so this process
    // has it open, and nothing closes it before the process exits.
    let fd = unsafe { BorrowedFd::borrow_raw(job.fd) };
    if !matches!(ofd_try_lock(fd, REAPER_BYTE), Ok(true)) {
        // Another reaper watches this segment.
        exit(0);
    }
    close_other_fds(job.fd);
    let _ = rustix::process::chdir(c"/");
    release_memory();

    // From here on: system calls through rustix only.
    loop {
        match fs::flock(fd, FlockOperation::LockExclusive) {
            Ok(()) => break,
            Err(Errno::INTR) => {}
            Err(_) => exit(1),
        }
    }
    // Every holder is gone. Remove the name, unless it is no longer ours: the
    // last holder may have removed it, and a new segment may have taken it.
    if let Ok(path) = CStr::from_bytes_until_nul(&job.path) {
        if let Ok(st) = fs::statat(fs::CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
            if st.st_dev == job.dev && st.st_ino == job.ino {
                let _ = fs::unlink(path);
            }
        }
    }
    let _ = fd.as_fd();
    exit(0)
}

fn exit(code: i32) -> ! {
    // SAFETY: `_exit` only makes the exit_group system call.
    unsafe { libc::_exit(code) }
}

/// Default handlers, nothing blocked: the parent's handlers are its own code.
fn reset_signals() {
    // SAFETY: `sigaction` is plain data; all zeroes with SIG_DFL is valid.
    let mut default: libc::sigaction = unsafe { std::mem::zeroed() };
    default.sa_sigaction = libc::SIG_DFL;
    for signal in 1..=64 {
        // SAFETY: a valid action and no old-action pointer; fails harmlessly
        // for SIGKILL, SIGSTOP and numbers that are not signals.
        unsafe { libc::sigaction(signal, &default, std::ptr::null_mut()) };
    }
    // SAFETY: `sigset_t` is plain data; all zeroes is the empty set on Linux.
    let empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid set and no old-set pointer.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) };
}

/// Overwrites this process's copy of its parent's command line with
/// `shmbox-reaper`, so that `ps` names it and `pkill -f PARENT` does not kill
/// it along with its parent (which would leave the segment to be removed by
/// its next opener instead).
fn rename_command_line() {
    let Some((start, end)) = argument_area() else {
        return;
    };
    let name = b"shmbox-reaper";
    if end <= start || end - start < name.len() {
        return;
    }
    // SAFETY: the kernel reports `start..end` as this process's argument
    // area: bytes of the main thread's stack, which fork copied into this
    // process and which nothing else here reads. Writing them changes only
    // what /proc/PID/cmdline shows.
    unsafe {
        std::ptr::write_bytes(start as *mut u8, 0, end - start);
        std::ptr::copy_nonoverlapping(name.as_ptr(), start as *mut u8, name.len());
    }
}

/// `arg_start` and `arg_end` from /proc/self/stat (fields 48 and 49).
fn argument_area() -> Option<(usize, usize)> {
    let stat = fs::open(
        c"/proc/self/stat",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&stat, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    let text = buf.get(..len)?;
    // The command name (field 2) may hold spaces and parentheses: count the
    // fields from the last ')'. Field 3 comes right after it.
    let after_name = text.iter().rposition(|&b| b == b')')? + 1;
    let mut fields = text
        .get(after_name..)?
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let arg_start = parse_number(fields.nth(48 - 3)?, 10)?;
    let arg_end = parse_number(fields.next()?, 10)?;
    Some((
        usize::try_from(arg_start).ok()?,
        usize::try_from(arg_end).ok()?,
    ))
}

/// Closes every descriptor but `keep`.
fn close_other_fds(keep: RawFd) {
    let keep = keep as libc::c_uint;
    let close_range = |first: libc::c_uint, last: libc::c_uint| {
        // SAFETY: close_range closes descriptors in the range and touches no
        // memory; this process owns every descriptor it has.
        unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) == 0 }
    };
    let below = keep == 0 || close_range(0, keep - 1);
    let above = close_range(keep + 1, libc::c_uint::MAX);
    if !(below && above) {
        // Kernels before 5.9 lack close_range.
        for fd in 0..4096 {
            if fd != keep as RawFd {
                // SAFETY: as above; closing a descriptor that is not open fails harmlessly.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Unmaps every shared mapping, and every anonymous writable mapping except
/// the one holding this thread's stack and the one holding its thread block.
/// The reaper then keeps no copy-on-write pages of its parent, and no open
/// file description of its parent's through a mapping.
fn release_memory() {
    let here = 0u8;
    let stack = std::ptr::addr_of!(here) as usize;
    // SAFETY: pthread_self only reads the thread pointer.
    let thread_block = unsafe { libc::pthread_self() } as usize;
    // Each pass unmaps up to 128 ranges; a bounded number of passes guards
    // against a range that refuses to go.
    for _ in 0..64 {
        let mut ranges = [(0usize, 0usize); 128];
        let found = collect_releasable(&mut ranges, &[stack, thread_block]);
        for &(start, end) in ranges.iter().take(found) {
            // SAFETY: the range is a whole mapping listed by the kernel that
            // holds neither this thread's stack nor its thread block; from
            // here on the reaper reads only its stack, thread block and
            // file-backed mappings (code, read-only data).
            let _ = unsafe { rustix::mm::munmap(start as *mut _, end - start) };
        }
        if found < ranges.len() {
            return;
        }
    }
}

/// Fills `out` with the mappings that are shared, or anonymous and writable,
/// and contain none of `keep`, from /proc/self/maps. Returns how many it
/// found (at most `out.len()`).
fn collect_releasable(out: &mut [(usize, usize)], keep: &[usize]) -> usize {
    let Ok(maps) = fs::open(
        c"/proc/self/maps",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return 0;
    };
    let mut found = 0;
    let mut buf = [0u8; 4096];
    // Only the start of each line matters; the path at its end is ignored.
    let mut line = [0u8; 160];
    let mut line_len = 0;
    loop {
        let got = match rustix::io::read(&maps, &mut buf) {
            Ok(0) => return found,
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(_) => return found,
        };
        for &byte in buf.iter().take(got) {
            if byte != b'\n' {
                if let Some(slot) = line.get_mut(line_len) {
                    *slot = byte;
                    line_len += 1;
                }
                continue;
            }
            let entry = line.get(..line_len).and_then(parse_maps_line);
            line_len = 0;
            let Some(m) = entry else { continue };
            let kept = keep.iter().any(|&a| m.start <= a && a < m.end);
            if (m.shared || (m.writable && m.inode == 0)) && !kept {
                match out.get_mut(found) {
                    Some(slot) => {
                        *slot = (m.start, m.end);
                        found += 1;
                    }
                    None => return found,
                }
            }
        }
    }
}

struct MapsEntry {
    start: usize,
    end: usize,
    writable: bool,
    shared: bool,
    inode: u64,
}

/// Parses `start-end perms offset dev inode ...` without allocating.
fn parse_maps_line(line: &[u8]) -> Option<MapsEntry> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let range = fields.next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    let start = parse_number(range.get(..dash)?, 16)?;
    let end = parse_number(range.get(dash + 1..)?, 16)?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let _dev = fields.next()?;
    let inode = parse_number(fields.next()?, 10)?;
    Some(MapsEntry {
        start: usize::try_from(start).ok()?,
        end: usize::try_from(end).ok()?,
        writable: perms.get(1) == Some(&b'w'),
        shared: perms.get(3) == Some(&b's'),
        inode,
    })
}

fn parse_number(digits: &[u8], radix: u32) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = (d as char).to_digit(radix)?;
        n.checked_mul(u64::from(radix))?.checked_add(u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_maps_lines() {
        let anon = parse_maps_line(b"7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(
            (anon.start, anon.end, anon.writable, anon.inode),
            (0x7f1c2a000000, 0x7f1c2a021000, true, 0)
        );
        let heap = parse_maps_line(
            b"55d0c4a8e000-55d0c4aaf000 rw-p 00000000 00:00 0                          [heap]",
        )
        .unwrap();
        assert!(heap.writable && heap.inode == 0);
        let code = parse_maps_line(b"7f1c2a200000-7f1c2a228000 r-xp 00028000 fe:01 1835050                    /usr/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        assert!(!code.writable && !code.shared && code.inode == 1835050);
        let shm = parse_maps_line(b"7fcf58750000-7fcf58751000 rw-s 00000000 00:1b 2                          /dev/shm/#2 (deleted)").unwrap();
        assert!(shm.writable && shm.shared && shm.inode == 2);
        assert!(parse_maps_line(b"garbage").is_none());
        assert!(parse_maps_line(b"").is_none());
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc, which miri isolates")]
    fn finds_this_process_argument_area() {
        let (start, end) = argument_area().unwrap();
        assert!(start < end);
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(end - start, cmdline.len());
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc, which miri isolates")]
    fn finds_this_process_heap_but_not_its_stack() {
        let mut ranges = [(0usize, 0usize); 512];
        let heap_object = Box::new([7u8; 1 << 20]);
        let heap_addr = heap_object.as_ptr() as usize;
        let here = 0u8;
        let stack = std::ptr::addr_of!(here) as usize;
        let n = collect_releasable(&mut ranges, &[stack]);
        let found = &ranges[..n];
        assert!(
            found.iter().any(|&(s, e)| s <= heap_addr && heap_addr < e),
            "heap missing from {found:x?}"
        );
        assert!(
            !found.iter().any(|&(s, e)| s <= stack && stack < e),
            "stack listed"
        );
    }
}
