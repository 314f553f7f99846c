//! The whole conformance suite against real PostgreSQL, MariaDB/MySQL and SQLite.
//! Servers that are unreachable skip (or fail under LOCK_REQUIRE_SERVICES=1).

use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
use lock_testkit::Skip;

/// One shared table per backend: the suite namespaces its keys per run and case.
const TABLE: &str = "lock_conformance";

async fn server(service: &str, url: String) -> Result<DatabaseStore, Skip> {
    DatabaseStore::connect(DatabaseStoreOptions::new(url.clone()).table_name(TABLE))
        .await
        .map_err(|e| Skip::unreachable(service, &url, lock_testkit::services::root_cause(&e)))
}

lock_testkit::store_tests!(
    postgres,
    capabilities: [release_notification, fencing_tokens, holder_ttl, permits],
    service: || server("postgres", lock_testkit::services::postgres_url())
);

// MySQL/MariaDB and SQLite have no release notification: waiters poll.
lock_testkit::store_tests!(
    mysql,
    capabilities: [fencing_tokens, holder_ttl, permits],
    service: || server("mysql", lock_testkit::services::mysql_url())
);

// A file, not `sqlite::memory:`: the suite opens second instances that must see the
// same database, as a second process would.
lock_testkit::store_tests!(sqlite, capabilities: [fencing_tokens, holder_ttl, permits], || async {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance.db");
    DatabaseStore::connect(DatabaseStoreOptions::sqlite_path(path).table_name(TABLE))
        .await
        .expect("SQLite store")
});
