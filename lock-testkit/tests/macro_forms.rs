//! The `capabilities:` form of `store_tests!` on a store that declares none: the
//! capability cases are generated as `#[ignore = "store lacks …"]` (cargo test lists them
//! as ignored), every other case runs, and the generated
//! `capabilities_match_store_tests_list` test checks the list against the store.

use std::sync::Arc;

use lock_testkit::broken::{Flaw, FlawedStore};
use lock_testkit::wrap::PollingOnly;

lock_testkit::store_tests!(
    polling_only,
    capabilities: [],
    lock_testkit::clones(Arc::new(PollingOnly(Arc::new(FlawedStore::new(Flaw::None)))))
);
