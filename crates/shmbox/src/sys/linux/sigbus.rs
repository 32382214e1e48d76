//! Survival when a segment's file is cut short while it is mapped.
//!
//! Touching a page of a shared mapping that lies beyond the end of its file
//! raises SIGBUS, which kills the process. shmbox checks a file's size before
//! it maps it, but a process of the same user (or root) can `ftruncate` the
//! file later, and then any access may fault: a read, a write, even the lock.
//!
//! So every mapping is registered here, and a SIGBUS handler, installed once
//! per process, looks the faulting address up. If it lies in a registered
//! mapping, the handler maps anonymous zero pages over the rest of that
//! mapping (so the faulting instruction, when it runs again, completes: a
//! load sees zeros, a store goes nowhere), marks the mapping as cut, and
//! returns. Every segment operation checks the mark and fails with
//! [`Error::Truncated`](crate::Error::Truncated) instead of trusting what it
//! saw. A fault anywhere else is passed to whichever handler was installed
//! before this one (Rust's runtime installs one), or, if there was none, kills
//! the process as it would have been killed without this module.
//!
//! The registry is a list of fixed-size blocks of slots that only grows, so
//! the handler can walk it with atomic loads alone, never taking a lock.
//!
//! # Safety
//!
//! The handler may run at any instruction of any thread. It only loads
//! atomics and makes the `mmap` and `sigaction` system calls, which are
//! async-signal-safe in effect (they are plain system calls).
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Slots per block of the registry.
const BLOCK: usize = 64;

struct Slot {
    /// Claimed by a live registration.
    in_use: AtomicBool,
    /// The mapping's first byte; valid while `len` is non-zero.
    start: AtomicUsize,
    /// The mapping's length in bytes, rounded up to whole pages; 0 when the
    /// slot describes no mapping.
    len: AtomicUsize,
    /// The file was found cut short: part of the mapping is now zero pages.
    cut: AtomicBool,
}

struct Block {
    slots: [Slot; BLOCK],
    next: AtomicPtr<Block>,
}

impl Block {
    fn new() -> Block {
        Block {
            slots: std::array::from_fn(|_| Slot {
                in_use: AtomicBool::new(false),
                start: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
                cut: AtomicBool::new(false),
            }),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// The first block; later ones are leaked boxes, never freed, so a pointer
/// the handler loaded stays valid for ever.
static FIRST: AtomicPtr<Block> = AtomicPtr::new(ptr::null_mut());

/// The page size, for rounding fault addresses (set before the handler).
static PAGE: AtomicUsize = AtomicUsize::new(4096);

static INSTALL: Once = Once::new();

/// The SIGBUS action that was in place before ours: written once, before
/// the handler is installed, and only read after.
struct Previous(std::cell::UnsafeCell<MaybeUninit<libc::sigaction>>);
// SAFETY: written once inside `INSTALL` before the handler that reads it is
// installed; read-only afterwards.
unsafe impl Sync for Previous {}
static PREVIOUS: Previous = Previous(std::cell::UnsafeCell::new(MaybeUninit::zeroed()));

/// A mapping watched for truncation, until dropped.
pub(crate) struct Watch {
    slot: &'static Slot,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("cut", &self.is_cut())
            .finish()
    }
}

impl Watch {
    /// Whether the file was found cut short under the mapping.
    #[inline]
    pub(crate) fn is_cut(&self) -> bool {
        self.slot.cut.load(Ordering::Acquire)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Order matters for the handler: `len` first, so that it never
        // matches a stale range.
        self.slot.len.store(0, Ordering::Release);
        self.slot.start.store(0, Ordering::Relaxed);
        self.slot.cut.store(false, Ordering::Relaxed);
        self.slot.in_use.store(false, Ordering::Release);
    }
}

/// Watches `len` bytes from `start` (a mapping just made) for truncation of
/// the file behind them. Call before the first access to the mapping.
pub(crate) fn watch(start: *mut u8, len: usize) -> Watch {
    INSTALL.call_once(install);
    let page = PAGE.load(Ordering::Relaxed);
    let len = len.div_ceil(page) * page;
    let slot = claim_slot();
    slot.cut.store(false, Ordering::Relaxed);
    slot.start.store(start as usize, Ordering::Relaxed);
    slot.len.store(len, Ordering::Release);
    Watch { slot }
}

fn claim_slot() -> &'static Slot {
    let mut link = &FIRST;
    loop {
        let mut block = link.load(Ordering::Acquire);
        if block.is_null() {
            let fresh = Box::into_raw(Box::new(Block::new()));
            match link.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => block = fresh,
                Err(current) => {
                    // SAFETY: `fresh` came from `Box::into_raw` just above
                    // and was never shared.
                    drop(unsafe { Box::from_raw(fresh) });
                    block = current;
                }
            }
        }
        // SAFETY: blocks are leaked once linked, so the pointer stays valid
        // for the life of the process.
        let block: &'static Block = unsafe { &*block };
        for slot in &block.slots {
            if slot
                .in_use
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return slot;
            }
        }
        link = &block.next;
    }
}

fn install() {
    PAGE.store(rustix::param::page_size(), Ordering::Relaxed);
    // SAFETY: `sigaction` with a null new action only reads the current one
    // into `PREVIOUS`, which nothing reads until our handler is installed
    // below. (`Once` runs this on one thread at a time.)
    unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), (*PREVIOUS.0.get()).as_mut_ptr()) };
    // SAFETY: `sigaction` is plain data; all zeroes is a valid value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
    // SA_ONSTACK: run on the thread's alternate stack when it has one, as
    // Rust's own handler, which we may chain to, expects.
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: an empty mask is valid; the new action is fully initialised
    // and its handler is an `extern "C"` function of the SA_SIGINFO kind.
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, ptr::null_mut());
    }
}

/// The SIGBUS handler.
///
/// # Safety
///
/// Called by the kernel only, with the `siginfo_t` and context of a SIGBUS.
unsafe extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid `siginfo_t` for SA_SIGINFO handlers;
    // for SIGBUS, `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    let mut block = FIRST.load(Ordering::Acquire);
    while !block.is_null() {
        // SAFETY: linked blocks are never freed.
        let b = unsafe { &*block };
        for slot in &b.slots {
            let len = slot.len.load(Ordering::Acquire);
            if len == 0 {
                continue;
            }
            let start = slot.start.load(Ordering::Relaxed);
            if addr >= start && addr - start < len {
                let from = addr & !(page - 1);
                let end = start + len;
                // SAFETY: `from..end` lies inside a mapping this process made
                // and still holds (the registration is live while the
                // mapping is). Replacing its missing pages with private zero
                // pages changes only what this process sees there; the
                // segment operations then report the truncation.
                let mapped = unsafe {
                    libc::mmap(
                        from as *mut libc::c_void,
                        end - from,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    )
                };
                if mapped != libc::MAP_FAILED {
                    slot.cut.store(true, Ordering::Release);
                    return;
                }
                // Out of memory for the zero pages: nothing to do but die.
                // SAFETY: as below.
                unsafe { chain(signal, info, context) };
                return;
            }
        }
        block = b.next.load(Ordering::Acquire);
    }
    // SAFETY: our own arguments, passed on unchanged.
    unsafe { chain(signal, info, context) };
}

/// Hands a SIGBUS that is not ours to the handler that was there before.
///
/// # Safety
///
/// Called from `on_sigbus` only, with its arguments.
unsafe fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: written before our handler was installed; read-only since.
    let previous = unsafe { (*PREVIOUS.0.get()).assume_init_ref() };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default and return: the faulting instruction runs
        // again, faults again, and the process dies of SIGBUS as it would
        // have without us. (The kernel does not let a fault be ignored.)
        // SAFETY: all zeroes is SIG_DFL with an empty mask.
        let default: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a valid action; no old-action pointer.
        unsafe { libc::sigaction(libc::SIGBUS, &default, ptr::null_mut()) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO, `sa_sigaction` is such a function.
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        handler(signal, info, context);
    } else {
        // SAFETY: without SA_SIGINFO, it is a plain `void (*)(int)`.
        let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        handler(signal);
    }
}
