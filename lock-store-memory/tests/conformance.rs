//! The whole conformance suite against the memory store.
use lock_store_memory::MemoryStore;

// A memory store is per process: every instance a case asks for is a clone that shares
// the same locks, as a second handle in the same process would.
lock_testkit::store_tests!(
    memory,
    capabilities: [release_notification, fencing_tokens, holder_ttl, permits],
    lock_testkit::clones(MemoryStore::new())
);
