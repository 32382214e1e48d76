//! Surviving a segment's file being cut short while it is mapped: an
//! opt-in SIGBUS handler.
//!
//! Touching a page of a shared mapping that lies beyond the end of its file
//! raises SIGBUS, which kills the process. shmbox checks a file's size before
//! it maps it, but a process of the same user (or root) can `ftruncate` the
//! file later, and then any access may fault: a read, a write, even the lock.
//!
//! A library must not take a process-wide signal over on its own, so this
//! protection is off until the application asks for it
//! ([`crate::install_sigbus_handler`]). Every mapping is registered here in
//! any case (a few atomic stores), so that the handler, once installed,
//! covers segments opened before too.
//!
//! The handler acts only on a fault the kernel raised for a missing page
//! (`si_code` `BUS_ADRERR`) at an address inside a registered mapping. It
//! maps anonymous zero pages over the rest of that mapping (so the faulting
//! instruction, when it runs again, completes: a load sees zeros, a store
//! goes nowhere), marks the mapping as cut, and returns. Every segment
//! operation checks the mark and fails with
//! [`Error::Truncated`](crate::Error::Truncated) instead of trusting what it
//! saw. Any other SIGBUS (another mapping's, or one sent with `kill`) goes to
//! the handler that was installed before, as the kernel would have run it:
//! with its own mask added to the blocked signals, as a three-argument or a
//! one-argument handler per its `SA_SIGINFO`, reset first if it had
//! `SA_RESETHAND`. If there was none, the process dies of SIGBUS as it would
//! have without shmbox.
//!
//! The registry is a list of fixed-size blocks of slots that only grows, so
//! the handler can walk it with atomic loads alone, never taking a lock.
//!
//! # Safety
//!
//! The handler may run at any instruction of any thread. It only loads
//! atomics and makes the `mmap`, `sigaction`, `pthread_sigmask` and `raise`
//! calls, which are async-signal-safe.
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

/// The page size, for rounding (set by the first `watch`, before any
/// handler can run).
static PAGE: AtomicUsize = AtomicUsize::new(0);

static INSTALL: Once = Once::new();

/// Whether `install` succeeded.
static INSTALLED: AtomicBool = AtomicBool::new(false);

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
    let mut page = PAGE.load(Ordering::Relaxed);
    if page == 0 {
        page = super::page_size();
        PAGE.store(page, Ordering::Relaxed);
    }
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

/// Installs the handler, once per process; later calls return at once.
pub(crate) fn install() -> std::io::Result<()> {
    INSTALL.call_once(|| {
        // SAFETY: `install_once` runs once, from `INSTALL`.
        if unsafe { install_once() } {
            INSTALLED.store(true, Ordering::Release);
        }
    });
    if INSTALLED.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(std::io::Error::other(
            "sigaction refused to install shmbox's SIGBUS handler",
        ))
    }
}

/// # Safety
///
/// Call once per process: it writes `PREVIOUS`, which the handler reads.
unsafe fn install_once() -> bool {
    PAGE.store(super::page_size(), Ordering::Relaxed);
    // SAFETY: `sigaction` with a null new action only reads the current one
    // into `PREVIOUS`, which nothing reads until our handler is installed
    // below, and which the caller lets nobody else write.
    if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), (*PREVIOUS.0.get()).as_mut_ptr()) } != 0
    {
        return false;
    }
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
        libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) == 0
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
    // SAFETY: the kernel passes a valid `siginfo_t` for SA_SIGINFO handlers.
    let code = unsafe { (*info).si_code };
    if code != libc::BUS_ADRERR {
        // Not a missing page of a mapping (sent by a process, or a hardware
        // error): not ours.
        // SAFETY: our own arguments, passed on unchanged.
        unsafe { chain(signal, info, context) };
        return;
    }
    // SAFETY: as above; for a kernel-raised SIGBUS, `si_addr` is the
    // faulting address.
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

/// Hands a SIGBUS that is not ours to the handler that was there before,
/// as the kernel would have run it.
///
/// # Safety
///
/// Called from `on_sigbus` only, with its arguments.
unsafe fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: written before our handler was installed; read-only since.
    let previous = unsafe { (*PREVIOUS.0.get()).assume_init_ref() };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_IGN {
        // A signal sent by a process is ignored, as it would have been. A
        // fault cannot be: when the instruction runs again and faults
        // again, the kernel kills the process, as it would have.
        return;
    }
    if handler == libc::SIG_DFL || previous.sa_flags & libc::SA_RESETHAND != 0 {
        // SAFETY: all zeroes is SIG_DFL with an empty mask; no old action.
        let default: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a valid action; no old-action pointer.
        unsafe { libc::sigaction(libc::SIGBUS, &default, ptr::null_mut()) };
    }
    if handler == libc::SIG_DFL {
        // SAFETY: the kernel passed a valid `siginfo_t`.
        if unsafe { (*info).si_code } <= 0 {
            // Sent by a process: deliver it again, to the default action,
            // once this handler returns (SIGBUS is blocked until then).
            // SAFETY: raise only sends a signal to this thread.
            unsafe { libc::raise(signal) };
        }
        // A fault: the instruction runs again, faults again, and the
        // process dies of SIGBUS, as without us.
        return;
    }
    // Run it with its own mask added, and SIGBUS blocked unless it asked
    // for SA_NODEFER, as the kernel would have.
    // SAFETY: `sigset_t` is plain data; `pthread_sigmask` fills it in.
    let mut saved: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid set to fill; a null new set only reads the mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut saved) };
    let mut mask = saved;
    // SAFETY: valid sets; these calls only read and write them and this
    // thread's signal mask. Signal numbers run from 1 to 64 on Linux.
    unsafe {
        for s in 1..=64 {
            if libc::sigismember(&previous.sa_mask, s) == 1 {
                libc::sigaddset(&mut mask, s);
            }
        }
        if previous.sa_flags & libc::SA_NODEFER != 0 {
            libc::sigdelset(&mut mask, signal);
        } else {
            libc::sigaddset(&mut mask, signal);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, ptr::null_mut());
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO, `sa_sigaction` is such a function.
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        handler(signal, info, context);
    } else {
        // SAFETY: without SA_SIGINFO, it is a plain `void (*)(int)`.
        let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        handler(signal);
    }
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &saved, ptr::null_mut()) };
}
