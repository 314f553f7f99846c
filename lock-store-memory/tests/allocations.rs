//! What a lock cycle on the memory store allocates: the key's entry, nothing more — no
//! boxed future, no owner copy on the heap, no new lost-lock flag per acquisition.
//! (Allocations are counted per thread, so the harness's other threads do not count.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use lock_core::LockFactory;
use lock_store_memory::MemoryStore;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the counter is a
// const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, that is, from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_lock_cycle_allocates_only_the_stored_key() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks
        .create_lock_with_ttl("orders.1234", Some(Duration::from_secs(30)))
        .unwrap();
    let cycle = || async {
        assert!(lock.acquire_immediately().await.unwrap());
        lock.release().await.unwrap();
    };
    // Warm up: the shard's table, the runtime's own first allocations.
    for _ in 0..3 {
        runtime.block_on(cycle());
    }
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..10 {
        runtime.block_on(cycle());
    }
    let per_cycle = (ALLOCATIONS.with(Cell::get) - before) as f64 / 10.0;
    assert!(
        per_cycle <= 1.0,
        "a lock cycle allocated {per_cycle} times; the key's entry needs 1"
    );
}
