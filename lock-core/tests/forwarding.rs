//! A forwarding store (`Arc<S>`, a `DelegatingStore`) hands on the inner store's future:
//! a call through it allocates no more than the same call on the store itself.
//! (Allocations are counted per thread, so the harness's other threads do not count.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lock_core::testing::TestStore;
use lock_core::{DelegatingStore, LockStore};

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

/// How many allocations running `f` to completion makes on this thread.
fn allocations<F: Future>(runtime: &tokio::runtime::Runtime, f: F) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    runtime.block_on(f);
    ALLOCATIONS.with(Cell::get) - before
}

struct Wrapper(TestStore);

impl DelegatingStore for Wrapper {
    fn inner(&self) -> &dyn LockStore {
        &self.0
    }
}

#[test]
fn forwarding_stores_box_no_second_future() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let direct = TestStore::default();
    let shared: Arc<TestStore> = Arc::new(TestStore::default());
    let wrapped = Wrapper(TestStore::default());
    let ttl = Some(Duration::from_secs(10));
    // Warm up each (lazily built tables, the runtime's own first allocations).
    for store in [&direct as &dyn LockStore, &shared, &wrapped] {
        runtime.block_on(async {
            store.try_acquire("warm", "o", ttl).await.unwrap();
            store.delete("warm", "o").await.unwrap();
        });
    }
    let cycle = |store: &'static dyn LockStore| async move {
        store.try_acquire("k", "o", ttl).await.unwrap();
        assert!(store.exists("k").await.unwrap());
        store
            .extend("k", "o", Duration::from_secs(5))
            .await
            .unwrap();
        store.delete("k", "o").await.unwrap();
    };
    let direct: &'static TestStore = Box::leak(Box::new(direct));
    let shared: &'static Arc<TestStore> = Box::leak(Box::new(shared));
    let wrapped: &'static Wrapper = Box::leak(Box::new(wrapped));
    let on_store = allocations(&runtime, cycle(direct));
    let through_arc = allocations(&runtime, cycle(shared));
    let through_wrapper = allocations(&runtime, cycle(wrapped));
    assert_eq!(through_arc, on_store, "Arc<S> boxed a second future");
    assert_eq!(
        through_wrapper, on_store,
        "a DelegatingStore boxed a second future"
    );
}
