//! CPU hints that std does not offer safely: asking for a cache line before it is read.
//!
//! Knows nothing of what the memory holds.

/// Asks the CPU to bring the cache line holding `value` into the caches, without waiting
/// for it: a later read of `value` then finds it there (or on its way) instead of stalling
/// on memory. A hint only: it changes no value and cannot fault. A no-op where there is no
/// such instruction.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE, which has PREFETCHT0, is part of the x86_64 baseline, so the
    // instruction exists on every CPU this code runs on; a prefetch reads nothing into the
    // program's state and never faults, and the pointer comes from a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
