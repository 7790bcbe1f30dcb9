//! How much heap the process holds: the system allocator, counted.
//!
//! A script's memory limit is checked against this count at every Rhai
//! operation (one relaxed load). Rhai's own array, map and string size
//! limits walk the whole value after each change, which turns a loop of
//! pushes quadratic; this count costs a thread-local add per allocation,
//! however large the values grow.
//!
//! Each thread gathers its changes and adds them to the shared count once
//! they reach [`BATCH`] bytes either way, so the count is exact to within
//! `BATCH` per thread, and a small allocation never touches a shared cache
//! line (an atomic add on every one cost a call-heavy script 7%).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting the bytes it hands out.
pub struct Counting;

/// Bytes a thread gathers before it adds them to the shared count.
const BATCH: isize = 256 << 10;

static HELD: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static PENDING: Cell<isize> = const { Cell::new(0) };
}

/// Counts `bytes` more (or, negative, fewer) held.
fn count(bytes: isize) {
    let flush = PENDING.try_with(|p| {
        let now = p.get() + bytes;
        if now.abs() >= BATCH {
            p.set(0);
            now
        } else {
            p.set(now);
            0
        }
    });
    // A thread that is ending has no pending count left: straight to the total.
    let flush = flush.unwrap_or(bytes);
    if flush != 0 {
        HELD.fetch_add(flush, Ordering::Relaxed);
    }
}

/// An allocation's size as a count (no allocation is larger than `isize::MAX`).
fn size(bytes: usize) -> isize {
    isize::try_from(bytes).unwrap_or(isize::MAX)
}

// SAFETY: every call is passed straight to `System`, which upholds the
// `GlobalAlloc` contract; the count is only bookkeeping beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(size(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(size(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-size(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(size(new_size) - size(layout.size()));
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes of heap the process holds now, to within [`BATCH`] per thread.
pub fn held() -> usize {
    usize::try_from(HELD.load(Ordering::Relaxed)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_count_follows_allocations() {
        // Other tests allocate meanwhile: compare with room to spare.
        const BIG: usize = 256 << 20;
        let before = super::held();
        let big = vec![1u8; BIG];
        let with = super::held();
        drop(big);
        let after = super::held();
        assert!(with >= before + BIG - (64 << 20), "{before} -> {with}");
        assert!(with >= after + BIG - (64 << 20), "{with} -> {after}");
    }
}
