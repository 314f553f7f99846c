//! Tables and hostile input on PostgreSQL, MariaDB/MySQL and SQLite: custom and
//! hostile table names, the published DDL, racing creates, hostile keys, URLs.
//! Every test uses its own table (random suffix), so they run in parallel.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Raw, connect_or_skip, open, second, unique, url};
use lock_core::LockStore;
use lock_store_database::{Backend, DatabaseStore, DatabaseStoreOptions, MAX_KEY_BYTES, ddl};

per_backend!(
    custom_table_name_holds_the_locks,
    two_tables_do_not_see_each_others_locks,
    missing_table_without_create_table_is_an_error_naming_it,
    published_ddl_is_what_the_store_needs,
    hostile_table_names_are_rejected_before_any_sql,
    hostile_keys_are_stored_verbatim_never_executed,
    concurrent_connects_create_the_table_once,
);

async fn custom_table_name_holds_the_locks(backend: Backend) {
    let table = unique("Custom_Locks");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    assert_eq!(store.table_name(), table);
    assert!(store.save("k", "o1", None).await.unwrap());
    assert!(
        store
            .save("k2", "o1", Some(Duration::from_secs(30)))
            .await
            .unwrap()
    );
    let mut raw = Raw::connect(backend, &url).await;
    let t = raw.table(&table);
    let held = raw
        .n(&format!(
            "SELECT COUNT(*) AS n FROM {t} WHERE owner IS NOT NULL"
        ))
        .await;
    assert_eq!(
        held, 2,
        "both locks must be rows of the custom table {table}"
    );
    raw.drop_table(&table).await;
}

async fn two_tables_do_not_see_each_others_locks(backend: Backend) {
    let (ta, tb) = (unique("locks_a"), unique("locks_b"));
    let Some((a, url)) = open(backend, &ta).await else {
        return;
    };
    let b = second(&url, &tb).await;
    assert!(a.save("shared", "o1", None).await.unwrap());
    assert!(
        !b.exists("shared").await.unwrap(),
        "table {tb} sees a lock of {ta}"
    );
    assert!(
        b.save("shared", "o2", None).await.unwrap(),
        "table {tb} is blocked by {ta}"
    );
    assert!(a.delete("shared", "o2").await.unwrap_err().is_not_owned());
    b.delete("shared", "o2").await.unwrap();
    assert!(
        a.exists("shared").await.unwrap(),
        "releasing in {tb} released in {ta}"
    );
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(&ta).await;
    raw.drop_table(&tb).await;
}

async fn missing_table_without_create_table_is_an_error_naming_it(backend: Backend) {
    // Reach the server first, so an unreachable one skips instead of passing.
    let Some((reach, url)) = open(backend, &unique("reach")).await else {
        return;
    };
    Raw::connect(backend, &url)
        .await
        .drop_table(reach.table_name())
        .await;
    let missing = unique("missing_locks");
    let err = DatabaseStore::connect(
        DatabaseStoreOptions::new(url)
            .table_name(&missing)
            .create_table(false),
    )
    .await
    .expect_err("a missing table must be an error when create_table is off");
    assert!(err.is_storage(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&missing),
        "the error must name the table: {message}"
    );
    assert!(message.contains("create_table"), "{message}");
}

async fn published_ddl_is_what_the_store_needs(backend: Backend) {
    let Some((reach, url)) = open(backend, &unique("reach")).await else {
        return;
    };
    let table = unique("migrated_locks");
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(reach.table_name()).await;
    raw.exec(&ddl(backend, &table).unwrap()).await;
    let store = DatabaseStore::connect(
        DatabaseStoreOptions::new(url)
            .table_name(&table)
            .create_table(false),
    )
    .await
    .expect("a table made from the published DDL is accepted");
    assert_eq!(store.ddl(), ddl(backend, &table).unwrap());
    let a = store.try_acquire("k", "o", None).await.unwrap();
    assert!(a.acquired && a.fencing_token.is_some(), "{a:?}");
    raw.drop_table(&table).await;
}

async fn hostile_table_names_are_rejected_before_any_sql(backend: Backend) {
    let Some((reach, url)) = open(backend, &unique("reach")).await else {
        return;
    };
    let sentinel = unique("sentinel");
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(reach.table_name()).await;
    raw.exec(&ddl(backend, &sentinel).unwrap()).await;
    for name in [
        format!("x; DROP TABLE {sentinel}"),
        format!("{sentinel}\"; DROP TABLE {sentinel}; --"),
        format!("{sentinel}`; DROP TABLE {sentinel}; --"),
        format!("{sentinel}' OR '1'='1"),
        format!("{sentinel} -- comment"),
        format!("{sentinel}/*"),
        "public.locks".to_owned(),
        "1locks".to_owned(),
        "".to_owned(),
        "löcks".to_owned(),
        "a".repeat(64),
        "lo\0cks".to_owned(),
    ] {
        let err = DatabaseStore::connect(DatabaseStoreOptions::new(url.clone()).table_name(&name))
            .await
            .expect_err(&format!("table name {name:?} must be rejected"));
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{name:?}: {err}");
        assert!(ddl(backend, &name).is_err(), "ddl accepted {name:?}");
    }
    let t = raw.table(&sentinel);
    assert_eq!(
        raw.n(&format!("SELECT COUNT(*) AS n FROM {t}")).await,
        0,
        "sentinel table is intact"
    );
    raw.drop_table(&sentinel).await;
}

async fn hostile_keys_are_stored_verbatim_never_executed(backend: Backend) {
    let table = unique("hostile");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    let long_ascii = "k".repeat(MAX_KEY_BYTES);
    let long_multibyte = "é".repeat(MAX_KEY_BYTES / 2); // 2 bytes each: exactly the limit
    let keys: Vec<String> = vec![
        format!("k'; DROP TABLE {table}; --"),
        format!("k\"); DELETE FROM {table}; /*"),
        "k`; DROP TABLE x; #".to_owned(),
        "k\\'\\\"".to_owned(),
        "k -- not a comment".to_owned(),
        "%".to_owned(),
        "_".to_owned(),
        "$1 ? ?1 :name".to_owned(),
        "日本語のキー🔒".to_owned(),
        "Case".to_owned(),
        "pad".to_owned(),
        long_ascii.clone(),
        long_multibyte.clone(),
    ];
    // Owners are tokens (`[A-Za-z0-9_-]`): a hostile one is rejected before any SQL.
    let err = store
        .save("k", "o'; DROP TABLE x; --", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{err}");
    let hostile_owner = "o-1_DROP--TABLE";
    for key in &keys {
        assert!(
            store.save(key, hostile_owner, None).await.unwrap(),
            "save {key:?}"
        );
        assert!(store.exists(key).await.unwrap(), "exists {key:?}");
        assert!(
            !store.save(key, "other", None).await.unwrap(),
            "{key:?} is not exclusive"
        );
    }
    // Keys compare byte for byte: no case folding, no trailing-space padding, no LIKE.
    for (held, similar) in [("Case", "case"), ("pad", "pad "), ("%", "x"), ("_", "y")] {
        assert!(
            !store.exists(similar).await.unwrap(),
            "{similar:?} matched the lock {held:?}"
        );
    }
    let mut raw = Raw::connect(backend, &url).await;
    let t = raw.table(&table);
    let held = raw
        .n(&format!(
            "SELECT COUNT(*) AS n FROM {t} WHERE owner IS NOT NULL"
        ))
        .await;
    assert_eq!(
        held,
        keys.len() as i64,
        "every hostile key is one row, the table intact"
    );
    let longest = raw
        .n(&format!(
            "SELECT CAST(MAX(LENGTH(lock_key)) AS {}) AS n FROM {t}",
            match backend {
                Backend::Mysql => "SIGNED",
                _ => "BIGINT",
            }
        ))
        .await;
    assert_eq!(longest, MAX_KEY_BYTES as i64, "long keys are stored whole");
    for key in &keys {
        store.delete(key, hostile_owner).await.unwrap();
        assert!(!store.exists(key).await.unwrap(), "release {key:?}");
    }
    // Beyond the documented limit: rejected, not truncated.
    let too_long = "k".repeat(10 * 1024);
    for err in [
        store.save(&too_long, "o", None).await.unwrap_err(),
        store.exists(&too_long).await.unwrap_err(),
        store.delete(&too_long, "o").await.unwrap_err(),
        store.force_delete(&too_long).await.unwrap_err(),
        store
            .extend(&too_long, "o", Duration::from_secs(1))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{err}");
    }
    raw.drop_table(&table).await;
}

async fn concurrent_connects_create_the_table_once(backend: Backend) {
    let table = unique("racing");
    let url = url(backend);
    let connects = (0..6).map(|_| {
        let options = DatabaseStoreOptions::new(url.clone()).table_name(&table);
        tokio::spawn(DatabaseStore::connect(options))
    });
    let mut stores = Vec::new();
    for task in connects {
        match task.await.unwrap() {
            Ok(store) => stores.push(store),
            Err(e) if backend != Backend::Sqlite && stores.is_empty() && e.is_storage() => {
                if e.to_string().contains("racing") {
                    panic!("racing creates failed: {e}");
                }
                return lock_testkit::services::skip_unreachable(
                    &backend.to_string(),
                    &common::url(backend),
                    lock_testkit::services::root_cause(&e),
                );
            }
            Err(e) => panic!("a racing connect failed: {e}"),
        }
    }
    assert!(stores[0].save("k", "o", None).await.unwrap());
    assert!(stores[5].exists("k").await.unwrap());
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(&table).await;
}

// ---- PostgreSQL only ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_debug_never_shows_the_password() {
    let base = lock_testkit::services::postgres_url();
    // Trust authentication ignores the password: good enough to prove redaction.
    let url = base.replacen("postgres@", "postgres:hunter2@", 1);
    let options = DatabaseStoreOptions::new(url.clone()).table_name(unique("debug"));
    assert!(!format!("{options:?}").contains("hunter2"), "{options:?}");
    let Some(store) = connect_or_skip(options, Backend::Postgres).await else {
        return;
    };
    let debug = format!("{store:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("postgres"), "{debug}");
    let mut raw = Raw::connect(Backend::Postgres, &base).await;
    raw.drop_table(store.table_name()).await;
}

// ---- no server needed --------------------------------------------------------------

#[tokio::test]
async fn malformed_urls_are_invalid_arguments() {
    for url in [
        "",
        "ftp://example.com/locks",
        "postgres://user@host:notaport/db",
        "mysql://user@host:notaport/db",
        "sqlite://",
    ] {
        let err = DatabaseStore::connect(DatabaseStoreOptions::new(url))
            .await
            .expect_err(url);
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{url}: {err}");
    }
}

#[tokio::test]
async fn sqlite_memory_store_is_private_to_its_pool() {
    let a = DatabaseStore::connect(DatabaseStoreOptions::new("sqlite::memory:"))
        .await
        .unwrap();
    let b = DatabaseStore::connect(DatabaseStoreOptions::new("sqlite::memory:"))
        .await
        .unwrap();
    assert!(a.save("k", "o", None).await.unwrap());
    assert!(
        a.exists("k").await.unwrap(),
        "one pooled connection keeps one database"
    );
    assert!(
        !b.exists("k").await.unwrap(),
        "each `sqlite::memory:` store is its own database"
    );
    a.delete("k", "o").await.unwrap();
    assert!(!a.exists("k").await.unwrap());
}
