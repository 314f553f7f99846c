//! Helpers shared by the database tests: which servers, unique names, raw SQL.
#![allow(dead_code, unused_macros)]

/// One `#[tokio::test]` per backend for each listed `async fn name(Backend)`.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(lock_store_database::Backend::Postgres).await })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(lock_store_database::Backend::Mysql).await })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(lock_store_database::Backend::Sqlite).await })*
        }
    };
}

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use lock_store_database::diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use lock_store_database::diesel_async::{AsyncMysqlConnection, AsyncPgConnection};
use lock_store_database::{AsyncSqliteConnection, Backend, DatabaseStore, DatabaseStoreOptions};

/// A random lowercase suffix, so parallel tests (and runs) never share a table or key.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("random bytes");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{suffix}")
}

/// The URL tests use for `backend`. SQLite: a fresh file under the target dir
/// (`sqlite://` + path; diesel's raw connections accept it too).
pub fn url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => lock_testkit::services::postgres_url(),
        Backend::Mysql => lock_testkit::services::mysql_url(),
        _ => format!("sqlite://{}", sqlite_file()),
    }
}

/// A fresh SQLite file path.
pub fn sqlite_file() -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("{}.db", unique("locks")))
        .to_string_lossy()
        .into_owned()
}

/// Connect, or print `skipped: …` (panic under LOCK_REQUIRE_SERVICES=1) and return None
/// when the server is unreachable.
pub async fn connect_or_skip(
    options: DatabaseStoreOptions,
    backend: Backend,
) -> Option<DatabaseStore> {
    match DatabaseStore::connect(options).await {
        Ok(store) => Some(store),
        Err(e) if backend != Backend::Sqlite && e.is_storage() => {
            lock_testkit::services::skip_unreachable(
                &backend.to_string(),
                &url(backend),
                lock_testkit::services::root_cause(&e),
            );
            None
        }
        Err(e) => panic!("connecting to {backend} failed: {e}"),
    }
}

/// A store on `backend`'s test database with table `table`, and its URL; `None` when
/// the server is unreachable (skipped).
pub async fn open(backend: Backend, table: &str) -> Option<(DatabaseStore, String)> {
    let url = url(backend);
    let store = connect_or_skip(
        DatabaseStoreOptions::new(url.clone()).table_name(table),
        backend,
    )
    .await?;
    Some((store, url))
}

/// A second store instance on the same database and table.
pub async fn second(url: &str, table: &str) -> DatabaseStore {
    DatabaseStore::connect(DatabaseStoreOptions::new(url).table_name(table))
        .await
        .expect("second store on the same database")
}

/// A raw connection for checks the store's API cannot make.
pub enum Raw {
    Pg(Box<AsyncPgConnection>),
    My(AsyncMysqlConnection),
    Lite(AsyncSqliteConnection),
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Raw {
    pub async fn connect(backend: Backend, url: &str) -> Raw {
        match backend {
            Backend::Postgres => Raw::Pg(Box::new(
                AsyncPgConnection::establish(url).await.expect("raw pg"),
            )),
            Backend::Mysql => Raw::My(
                AsyncMysqlConnection::establish(url)
                    .await
                    .expect("raw mysql"),
            ),
            _ => Raw::Lite(
                AsyncSqliteConnection::establish(url)
                    .await
                    .expect("raw sqlite"),
            ),
        }
    }

    /// Run a query returning one BIGINT column named `n`.
    pub async fn n(&mut self, sql: &str) -> i64 {
        let q = diesel::sql_query(sql.to_owned());
        let row: N = match self {
            Raw::Pg(c) => q.get_result(&mut **c).await,
            Raw::My(c) => q.get_result(c).await,
            Raw::Lite(c) => q.get_result(c).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.n
    }

    /// Run statements.
    pub async fn exec(&mut self, sql: &str) {
        match self {
            Raw::Pg(c) => (**c).batch_execute(sql).await,
            Raw::My(c) => c.batch_execute(sql).await,
            Raw::Lite(c) => c.batch_execute(sql).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// PostgreSQL: whether what `release` commits is still not on disk when it returns,
    /// judged by the WAL positions around it. A durable commit flushes the WAL through
    /// its own commit record, which lies past the insert position read before it, so it
    /// is never judged lazy; a lazy one leaves the flush position where it was, unless
    /// the WAL writer or another session's commit flushed in between.
    #[allow(dead_code)] // (not every test binary uses it)
    pub async fn committed_lazily(&mut self, release: impl Future<Output = ()>) -> bool {
        let lsn = |what| {
            format!("SELECT pg_wal_lsn_diff(pg_current_wal_{what}_lsn(), '0/0')::bigint AS n")
        };
        let before = self.n(&lsn("insert")).await;
        release.await;
        self.n(&lsn("flush")).await <= before
    }

    /// The database's own clock in Unix ms, read with the backend's native function (not
    /// the store's expression).
    pub async fn now_ms(&mut self) -> i64 {
        let sql = match self {
            Raw::Pg(_) => "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS n",
            Raw::My(_) => "SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS n",
            Raw::Lite(_) => "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS n",
        };
        self.n(sql).await
    }

    /// Quote a table name for this backend.
    pub fn table(&self, name: &str) -> String {
        match self {
            Raw::My(_) => format!("`{name}`"),
            _ => format!("\"{name}\""),
        }
    }

    /// Drop the lock table `name` and its permits table (`<name>_permits`, when that
    /// fits an identifier).
    pub async fn drop_table(&mut self, name: &str) {
        let permits = format!("{name}_permits");
        for table in [name, permits.as_str()] {
            if table.len() <= 63 {
                let sql = format!("DROP TABLE IF EXISTS {}", self.table(table));
                self.exec(&sql).await;
            }
        }
    }
}

impl Raw {
    /// An SQL literal for an ASCII key, as stored (bytes).
    pub fn key(&self, key: &str) -> String {
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        );
        match self {
            Raw::Pg(_) => format!("convert_to('{key}', 'UTF8')"),
            Raw::My(_) => format!("'{key}'"),
            Raw::Lite(_) => format!("CAST('{key}' AS BLOB)"),
        }
    }

    /// The database's own "now" in Unix ms as an SQL expression (native functions).
    pub fn now_expr(&self) -> &'static str {
        match self {
            Raw::Pg(_) => "(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            Raw::My(_) => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
            Raw::Lite(_) => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
        }
    }
}
