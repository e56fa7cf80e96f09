//! The process's memory allocator: musl's, with freed blocks of 4 KiB to 4 MiB kept for reuse
//! until the poll loop next sleeps.
//!
//! musl's allocator gives a freed block of a few kilobytes or more straight back to the kernel
//! (`munmap`, which in a VM also interrupts the other CPUs to flush their address caches), and
//! the next one comes from `mmap`, filled page by page by faults. A collection at scale
//! allocates and frees blocks of the same sizes over and over, database after database and
//! type after type (a result's buffers, an element, a list). This layer keeps such blocks, by
//! power-of-two size class, and hands them out again; [`Cache::release`] gives them all back to
//! musl, and the run loop calls it before it sleeps, so an idle collector holds what musl alone
//! would, and a busy one at most [`CACHE_BYTES`] more (docs/performance.md, on memory).
//!
//! Invariant: a block handed out for a layout of class `c` (see [`class`]) is at least
//! `1 << c` bytes long. Blocks of a class are allocated whole (`1 << c` bytes); a `realloc`
//! within the class keeps the block; every other change goes through `alloc` and `dealloc`. So
//! a block freed with a layout of class `c` can serve any later layout of class `c`.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Smallest block kept: 4 KiB (below, musl's groups of slots reuse memory well themselves).
const MIN_SHIFT: u32 = 12;
/// Largest block kept: 4 MiB (a larger one is rare, and musl resizes it without copying).
const MAX_SHIFT: u32 = 22;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// The alignment musl's `malloc` gives; a layout asking for more is not cached.
const MALLOC_ALIGN: usize = 16;
/// Most bytes of freed blocks kept at once; a block freed beyond it goes back to musl.
pub const CACHE_BYTES: usize = 4 << 20;

/// The size class of a block of `size` bytes aligned to `align`: `Some(shift)` for a block
/// of `1 << shift` bytes, `None` for a block left to musl.
fn class(size: usize, align: usize) -> Option<u32> {
    if align > MALLOC_ALIGN || size <= (1 << (MIN_SHIFT - 1)) || size > (1 << MAX_SHIFT) {
        return None;
    }
    // size > 2 KiB: next_power_of_two cannot overflow below 4 MiB.
    Some(size.next_power_of_two().trailing_zeros().max(MIN_SHIFT))
}

/// The free blocks: one list per class, linked through the blocks' first bytes.
struct Lists {
    heads: [*mut u8; CLASSES],
    bytes: usize,
}

/// The allocator: [`System`] (musl's `malloc`) behind a cache of freed blocks.
pub struct Cache {
    locked: AtomicBool,
    lists: UnsafeCell<Lists>,
}

// Safety: `lists` is only touched while `locked` is held (see `with_lists`).
unsafe impl Sync for Cache {}

impl Cache {
    pub const fn new() -> Cache {
        Cache {
            locked: AtomicBool::new(false),
            lists: UnsafeCell::new(Lists {
                heads: [ptr::null_mut(); CLASSES],
                bytes: 0,
            }),
        }
    }

    /// Runs `f` on the lists under the lock (the collector has one thread: the lock is never
    /// contended there, but tests and any thread std may start stay correct).
    fn with_lists<T>(&self, f: impl FnOnce(&mut Lists) -> T) -> T {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // Safety: the lock is held, so this is the only reference to the lists.
        let r = f(unsafe { &mut *self.lists.get() });
        self.locked.store(false, Ordering::Release);
        r
    }

    /// A kept block of class `shift`, if there is one.
    fn take(&self, shift: u32) -> Option<*mut u8> {
        self.with_lists(|l| {
            let head = l.heads.get_mut((shift - MIN_SHIFT) as usize)?;
            if head.is_null() {
                return None;
            }
            let block = *head;
            // Safety: a block on a list is at least 4 KiB, owned by the list, and holds the
            // next block's address in its first bytes (written by `keep`).
            *head = unsafe { block.cast::<*mut u8>().read() };
            l.bytes -= 1 << shift;
            Some(block)
        })
    }

    /// Keeps `block` (of class `shift`); false when the cache is full.
    fn keep(&self, block: *mut u8, shift: u32) -> bool {
        self.with_lists(|l| {
            let size = 1usize << shift;
            let Some(head) = l.heads.get_mut((shift - MIN_SHIFT) as usize) else {
                return false;
            };
            if l.bytes + size > CACHE_BYTES {
                return false;
            }
            // Safety: the caller gives up `block`, at least `size` bytes and 16-aligned.
            unsafe { block.cast::<*mut u8>().write(*head) };
            *head = block;
            l.bytes += size;
            true
        })
    }

    /// Gives every kept block back to musl.
    pub fn release(&self) {
        for shift in MIN_SHIFT..=MAX_SHIFT {
            while let Some(block) = self.take(shift) {
                // Safety: the block came from `System` with this layout (see `alloc`).
                unsafe { System.dealloc(block, block_layout(shift)) };
            }
        }
    }

    /// Bytes of the blocks kept now.
    pub fn held_bytes(&self) -> usize {
        self.with_lists(|l| l.bytes)
    }
}

impl Default for Cache {
    fn default() -> Cache {
        Cache::new()
    }
}

/// The cache of the process: the binary installs [`Global`] as its allocator (src/main.rs);
/// test binaries do not, and leave it empty.
static CACHE: Cache = Cache::new();

/// The process's allocator: [`System`] behind the process's cache.
pub struct Global;

/// Gives the process's kept blocks back to musl (the run loop, before it sleeps).
pub fn release() {
    CACHE.release();
}

unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's guarantees, passed on.
        unsafe { CACHE.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's guarantees, passed on.
        unsafe { CACHE.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // Safety: the caller's guarantees, passed on.
        unsafe { CACHE.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Safety: the caller's guarantees, passed on.
        unsafe { CACHE.realloc(block, layout, new_size) }
    }
}

/// The layout a block of class `shift` is allocated with.
fn block_layout(shift: u32) -> Layout {
    // 1 << shift (at most 4 MiB) with musl's alignment is a valid layout.
    Layout::from_size_align(1 << shift, MALLOC_ALIGN).unwrap_or(Layout::new::<u8>())
}

unsafe impl GlobalAlloc for Cache {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            Some(shift) => match self.take(shift) {
                Some(block) => block,
                // Safety: a valid, non-zero layout.
                None => unsafe { System.alloc(block_layout(shift)) },
            },
            // Safety: as the caller's.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            Some(shift) => match self.take(shift) {
                Some(block) => {
                    // Safety: the block holds at least `layout.size()` bytes.
                    unsafe { block.write_bytes(0, layout.size()) };
                    block
                }
                // Safety: a valid, non-zero layout.
                None => unsafe { System.alloc_zeroed(block_layout(shift)) },
            },
            // Safety: as the caller's.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class(layout.size(), layout.align()) {
            Some(shift) => {
                if !self.keep(block, shift) {
                    // Safety: the block came from `System` with this layout (invariant above).
                    unsafe { System.dealloc(block, block_layout(shift)) }
                }
            }
            // Safety: as the caller's.
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (from, to) = (
            class(layout.size(), layout.align()),
            class(new_size, layout.align()),
        );
        match (from, to) {
            // The block already has the room (and keeps its class).
            (Some(a), Some(b)) if a == b => block,
            // Neither is kept: musl resizes in place where it can (`mremap` for large ones).
            // Safety: as the caller's.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // Safety: the caller guarantees a valid layout of `new_size` with this alignment.
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // Safety: a valid, non-zero layout.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // Safety: both blocks hold at least the bytes copied, and do not overlap.
                    unsafe {
                        ptr::copy_nonoverlapping(block, new, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn classes() {
        assert_eq!(class(2048, 8), None);
        assert_eq!(class(2049, 8), Some(12));
        assert_eq!(class(4096, 8), Some(12));
        assert_eq!(class(4097, 8), Some(13));
        assert_eq!(class(4 << 20, 16), Some(22));
        assert_eq!(class((4 << 20) + 1, 8), None);
        assert_eq!(class(8192, 32), None);
    }

    #[test]
    fn a_freed_block_serves_the_next_of_its_class_until_released() {
        let cache = Cache::new();
        unsafe {
            let a = cache.alloc(layout(5000));
            a.write_bytes(7, 5000);
            cache.dealloc(a, layout(5000));
            assert_eq!(cache.held_bytes(), 8192);
            // Another size of the same class (4 KiB < n <= 8 KiB) gets the same block.
            let b = cache.alloc(layout(8000));
            assert_eq!(a, b);
            assert_eq!(cache.held_bytes(), 0);
            // Zeroed memory is zeroed even when it is a kept block.
            cache.dealloc(b, layout(8000));
            let z = cache.alloc_zeroed(layout(6000));
            assert_eq!(z, a);
            assert!(std::slice::from_raw_parts(z, 6000).iter().all(|&x| x == 0));
            cache.dealloc(z, layout(6000));
            cache.release();
            assert_eq!(cache.held_bytes(), 0);
        }
    }

    #[test]
    fn growth_within_a_class_keeps_the_block_and_across_classes_keeps_the_bytes() {
        let cache = Cache::new();
        unsafe {
            let a = cache.alloc(layout(3000));
            for i in 0..3000 {
                *a.add(i) = i as u8;
            }
            let b = cache.realloc(a, layout(3000), 4096);
            assert_eq!(a, b);
            let c = cache.realloc(b, layout(4096), 100_000);
            assert_ne!(c, b);
            assert!((0..3000).all(|i| *c.add(i) == i as u8));
            // The old block was kept, and a shrink to below the classes leaves the cache.
            assert_eq!(cache.held_bytes(), 4096);
            let d = cache.realloc(c, layout(100_000), 100);
            assert!((0..100).all(|i| *d.add(i) == i as u8));
            assert_eq!(cache.held_bytes(), 4096 + 131072);
            // Beyond the classes, musl's own realloc.
            let e = cache.realloc(d, layout(100), 10);
            let f = cache.realloc(e, layout(10), 5 << 20);
            assert!((0..10).all(|i| *f.add(i) == i as u8));
            let g = cache.realloc(f, layout(5 << 20), 6 << 20);
            assert!((0..10).all(|i| *g.add(i) == i as u8));
            cache.dealloc(g, layout(6 << 20));
            cache.release();
        }
    }

    #[test]
    fn never_holds_more_than_its_bound() {
        let cache = Cache::new();
        unsafe {
            let blocks: Vec<*mut u8> = (0..5).map(|_| cache.alloc(layout(1 << 20))).collect();
            for &b in &blocks {
                cache.dealloc(b, layout(1 << 20));
                assert!(cache.held_bytes() <= CACHE_BYTES);
            }
            assert_eq!(cache.held_bytes(), CACHE_BYTES);
            cache.release();
            assert_eq!(cache.held_bytes(), 0);
        }
    }

    /// Random allocations, growths, shrinks and frees of every size range, each block filled
    /// with its own byte: no block overlaps another, and a resize keeps the bytes.
    #[test]
    fn random_use_keeps_every_blocks_bytes() {
        let cache = Cache::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let size = |r: u64| match r % 4 {
            0 => 1 + (r >> 8) as usize % 2048,
            1 => 2049 + (r >> 8) as usize % 60_000,
            2 => 60_000 + (r >> 8) as usize % (1 << 20),
            _ => (3 << 20) + (r >> 8) as usize % (3 << 20),
        };
        let mut live: Vec<(*mut u8, usize, u8)> = Vec::new();
        let check = |&(p, n, fill): &(*mut u8, usize, u8)| unsafe {
            // The ends and a sample between them.
            for i in [0, n / 3, n / 2, n - 1] {
                assert_eq!(*p.add(i), fill, "byte {i} of a block of {n}");
            }
        };
        for step in 0..3000u32 {
            let r = next();
            match r % 3 {
                0 if live.len() < 40 => unsafe {
                    let n = size(next());
                    let p = cache.alloc(layout(n));
                    let fill = (step % 251) as u8;
                    p.write_bytes(fill, n);
                    live.push((p, n, fill));
                },
                1 if !live.is_empty() => unsafe {
                    let i = (next() % live.len() as u64) as usize;
                    let (p, n, fill) = live[i];
                    let m = size(next());
                    let q = cache.realloc(p, layout(n), m);
                    let kept = n.min(m);
                    assert!((0..kept).step_by(997).all(|j| *q.add(j) == fill));
                    q.write_bytes(fill, m);
                    live[i] = (q, m, fill);
                },
                _ if !live.is_empty() => unsafe {
                    let i = (next() % live.len() as u64) as usize;
                    let b = live.swap_remove(i);
                    check(&b);
                    cache.dealloc(b.0, layout(b.1));
                },
                _ => {}
            }
            live.iter().for_each(check);
            assert!(cache.held_bytes() <= CACHE_BYTES);
            if step % 500 == 0 {
                cache.release();
            }
        }
        for b in live {
            check(&b);
            unsafe { cache.dealloc(b.0, layout(b.1)) };
        }
        cache.release();
    }
}
