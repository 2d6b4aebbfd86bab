//! Memory advice for the large tables that are read at random (domain lists, the latency
//! index): backed by transparent huge pages, a look-up that misses the caches costs one
//! memory access instead of a page-table walk on top of it (two nested walks in a VM).

use std::ffi::c_void;
use std::ptr::NonNull;

use nix::sys::mman::{madvise, MmapAdvise};

/// The transparent huge page size asked for (x86-64 and arm64 with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// A vector of `len` copies of `value` whose memory the kernel is asked, before it is
/// first written, to back with huge pages. Below one huge page, or where the kernel
/// declines (transparent huge pages `never`, or not built in), it is a plain vector: the
/// advice changes speed, never contents.
pub fn huge_page_vec<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    advise_huge_pages(v.spare_capacity_mut());
    v.resize(len, value);
    v
}

/// Asks the kernel to back the whole huge pages inside `region` with transparent huge
/// pages (`MADV_HUGEPAGE`). Returns whether it took the advice; `false` also when the
/// region holds no whole huge page.
pub fn advise_huge_pages<T>(region: &mut [T]) -> bool {
    let start = region.as_mut_ptr() as usize;
    let end = start.saturating_add(std::mem::size_of_val(region));
    let Some(lo) = start.checked_next_multiple_of(HUGE_PAGE) else {
        return false;
    };
    let hi = end - end % HUGE_PAGE;
    if hi <= lo {
        return false;
    }
    let Some(addr) = NonNull::new(lo as *mut c_void) else {
        return false;
    };
    // SAFETY: [lo, hi) lies inside `region`, memory this process owns (the exclusive
    // borrow keeps it allocated for the call), and is page-aligned (a multiple of the
    // huge page size). MADV_HUGEPAGE changes how pages are backed, not what they hold or
    // whether they are mapped, so no reference into the region is invalidated.
    unsafe { madvise(addr, hi - lo, MmapAdvise::MADV_HUGEPAGE) }.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_vec_holds_what_was_asked() {
        let v = huge_page_vec(3 << 20, 7u64);
        assert_eq!(v.len(), 3 << 20);
        assert!(v.iter().all(|&x| x == 7));
        let small = huge_page_vec(5, 1u8);
        assert_eq!(small, vec![1u8; 5]);
    }

    #[test]
    fn regions_without_a_whole_huge_page_are_not_advised() {
        let mut small = vec![0u8; 4096];
        assert!(!advise_huge_pages(&mut small));
        let mut empty: [u64; 0] = [];
        assert!(!advise_huge_pages(&mut empty));
    }

    #[test]
    fn a_large_region_is_advised_where_the_kernel_offers_huge_pages() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let mut big = vec![0u8; 8 << 20];
        let taken = advise_huge_pages(&mut big);
        // The advice is refused only where the kernel has no transparent huge pages.
        if thp.contains("[always]") || thp.contains("[madvise]") {
            assert!(taken, "MADV_HUGEPAGE refused although THP is on: {thp}");
        }
    }
}
