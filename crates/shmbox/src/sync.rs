//! The one place the crate reaches atomics.
//!
//! The lock, seqlock and notification algorithms use the types exported at
//! the top of this module. In normal builds they are thin wrappers of `std`'s
//! atomics; built with `RUSTFLAGS="--cfg loom"` they are loom's, so that the
//! algorithms can be model-checked unchanged.
//!
//! [`shared`] holds the wrappers that overlay bytes of a shared mapping.
//! Those are always `std`'s underneath: loom's atomics do not have the layout
//! of the plain integer, which the on-disk format needs.
//!
//! `clippy.toml` bans `std`'s atomic types everywhere but here.
#![allow(clippy::disallowed_types)]

#[cfg(not(loom))]
pub(crate) use shared::{AtomicU32, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// A hint that the caller is busy-waiting.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives up the rest of this time slice.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Atomics with the layout of the plain integer, for shared memory.
pub(crate) mod shared {
    #![allow(unsafe_code)]
    use std::sync::atomic::Ordering;

    macro_rules! atomic {
        ($name:ident, $std:ty, $int:ty) => {
            /// `std`'s atomic of the same name, with its exact layout.
            #[repr(transparent)]
            #[derive(Debug, Default)]
            pub(crate) struct $name($std);

            #[allow(dead_code)] // not every width uses every operation
            impl $name {
                pub(crate) const fn new(v: $int) -> Self {
                    Self(<$std>::new(v))
                }

                /// # Safety
                ///
                /// As for `std`'s `from_ptr`: `ptr` is aligned for this type,
                /// valid for reads and writes for `'a`, and accessed only
                /// atomically (by any thread or process) while `'a` lasts.
                #[inline]
                pub(crate) unsafe fn from_ptr<'a>(ptr: *mut $int) -> &'a Self {
                    // SAFETY: the caller upholds `from_ptr`'s contract, and
                    // `Self` is a transparent wrapper of the std type.
                    unsafe { &*(<$std>::from_ptr(ptr) as *const $std as *const Self) }
                }

                /// The std type, for system calls that take it.
                #[inline]
                pub(crate) fn as_std(&self) -> &$std {
                    &self.0
                }

                #[inline]
                pub(crate) fn load(&self, order: Ordering) -> $int {
                    self.0.load(order)
                }

                #[inline]
                pub(crate) fn store(&self, v: $int, order: Ordering) {
                    self.0.store(v, order)
                }

                #[inline]
                pub(crate) fn swap(&self, v: $int, order: Ordering) -> $int {
                    self.0.swap(v, order)
                }

                #[inline]
                pub(crate) fn compare_exchange(
                    &self,
                    current: $int,
                    new: $int,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$int, $int> {
                    self.0.compare_exchange(current, new, success, failure)
                }

                #[inline]
                pub(crate) fn compare_exchange_weak(
                    &self,
                    current: $int,
                    new: $int,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$int, $int> {
                    self.0.compare_exchange_weak(current, new, success, failure)
                }

                #[inline]
                pub(crate) fn fetch_add(&self, v: $int, order: Ordering) -> $int {
                    self.0.fetch_add(v, order)
                }

                #[inline]
                pub(crate) fn fetch_or(&self, v: $int, order: Ordering) -> $int {
                    self.0.fetch_or(v, order)
                }

                #[inline]
                pub(crate) fn fetch_update(
                    &self,
                    set: Ordering,
                    fetch: Ordering,
                    f: impl FnMut($int) -> Option<$int>,
                ) -> Result<$int, $int> {
                    self.0.fetch_update(set, fetch, f)
                }
            }
        };
    }

    atomic!(AtomicU8, std::sync::atomic::AtomicU8, u8);
    atomic!(AtomicU32, std::sync::atomic::AtomicU32, u32);
    atomic!(AtomicU64, std::sync::atomic::AtomicU64, u64);

    const _: () = {
        assert!(size_of::<AtomicU32>() == 4 && align_of::<AtomicU32>() == 4);
        assert!(size_of::<AtomicU64>() == 8 && align_of::<AtomicU64>() == 8);
    };
}
