//! The whole conformance suite against the memory store.
use lock_store_memory::MemoryStore;

// A memory store is per process: the "other instance" a case asks for is a clone that
// shares the same locks, as a second handle in the same process would.
lock_testkit::store_tests!(memory, {
    let store = MemoryStore::new();
    move || {
        let store = store.clone();
        async move { store }
    }
});
