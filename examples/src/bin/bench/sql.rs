//! The SQL baselines: the very statements the store runs
//! (`lock_store_database::statements`), on the same pool, without the store and
//! lock-core around them.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::{QueryableByName, sql_query};
use lock_core::{LockError, async_trait};
use lock_store_database::diesel_async::RunQueryDsl;
use lock_store_database::{
    Backend, DatabaseStore, DatabaseStoreOptions, MysqlPool, PgPool, SqlitePool, Statements,
};
use lock_testkit::bench::Baseline;
use lock_testkit::services::{mysql_url, postgres_url};

use crate::prepare::{Prep, Prepared, storage};

/// The table of the SQL benches (kept apart from the tests' `locks`).
const TABLE: &str = "lock_bench";

/// The SQL "round trip": one committed single-row write (the fence of a released bench
/// row is bumped). A no-op statement would hide the commit (WAL flush) that every lock
/// state change pays, and that a handoff (a release and an acquire) pays twice.
const PG_WRITE: &str = r#"INSERT INTO "lock_bench" AS l (lock_key, owner, expires_at, fence)
VALUES ($1, NULL, 0, 0) ON CONFLICT (lock_key) DO UPDATE SET fence = l.fence + 1"#;
const MY_WRITE: &str = "INSERT INTO `lock_bench` (lock_key, owner, expires_at, fence)
VALUES (?, NULL, 0, 0) ON DUPLICATE KEY UPDATE fence = fence + 1";
const LITE_WRITE: &str = r#"INSERT INTO "lock_bench" (lock_key, owner, expires_at, fence)
VALUES (?1, NULL, 0, 0) ON CONFLICT (lock_key) DO UPDATE SET fence = fence + 1"#;

/// The `NOTIFY` channel the store's PostgreSQL release statement publishes on.
const PG_CHANNEL: &str = "lock_bench_lock_released";

/// One query on a connection of `$pool`; `$run` is `execute`, `get_result` or `load`.
macro_rules! on_pool {
    ($pool:expr, $run:ident, $query:expr) => {{
        let mut conn = $pool.get().await.map_err(storage)?;
        $query.$run(&mut conn).await.map_err(storage)
    }};
}

#[derive(QueryableByName)]
struct AcquireRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    fence: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    #[allow(dead_code)]
    holder_ms: Option<i64>,
}

#[derive(QueryableByName)]
struct FenceRow {
    #[diesel(sql_type = BigInt)]
    #[allow(dead_code)]
    fence: i64,
}

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    v: String,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The store's statements on the store's pool; `what` describes them.
struct SqlBaseline<P> {
    pool: P,
    sql: Statements,
    what: &'static str,
}

impl SqlBaseline<PgPool> {
    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let (key, owner, ttl) = (key.as_bytes(), owner.as_bytes(), Some(ms(ttl)));
        let query = sql_query(&self.sql.acquire).bind::<Binary, _>(key);
        let query = query
            .bind::<Binary, _>(owner)
            .bind::<Nullable<BigInt>, _>(ttl);
        let row: AcquireRow = on_pool!(self.pool, get_result, query)?;
        Ok(row.fence.is_some())
    }

    async fn release(&self, key: &str, owner: &str) -> Result<bool, LockError> {
        let query = sql_query(&self.sql.release).bind::<Binary, _>(key.as_bytes());
        let query = query.bind::<Binary, _>(owner.as_bytes());
        Ok(on_pool!(self.pool, execute, query.bind::<Text, _>(PG_CHANNEL))? == 1)
    }
}

impl SqlBaseline<MysqlPool> {
    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let (key, owner) = (key.as_bytes(), owner.as_bytes());
        // LAST_INSERT_ID() is per connection: both statements on one.
        let mut conn = self.pool.get().await.map_err(storage)?;
        sql_query(&self.sql.acquire)
            .bind::<Binary, _>(key)
            .bind::<Binary, _>(owner)
            .bind::<Nullable<BigInt>, _>(Some(ms(ttl)))
            .bind::<Binary, _>(owner)
            .bind::<Nullable<BigInt>, _>(Some(ms(ttl)))
            .execute(&mut conn)
            .await
            .map_err(storage)?;
        let followup = self.sql.acquire_followup.as_deref().ok_or_else(|| {
            LockError::storage_msg("the MySQL dialect has no acquire result read")
        })?;
        let row: AcquireRow = sql_query(followup)
            .bind::<Binary, _>(key)
            .get_result(&mut conn)
            .await
            .map_err(storage)?;
        Ok(row.fence.is_some_and(|f| f > 0))
    }

    async fn release(&self, key: &str, owner: &str) -> Result<bool, LockError> {
        let query = sql_query(&self.sql.release)
            .bind::<Binary, _>(key.as_bytes())
            .bind::<Binary, _>(owner.as_bytes());
        Ok(on_pool!(self.pool, execute, query)? == 1)
    }
}

// SQLite runs on a blocking thread: its queries own their text and binds.
impl SqlBaseline<SqlitePool> {
    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let query = sql_query(self.sql.acquire.clone())
            .bind::<Binary, _>(key.as_bytes().to_vec())
            .bind::<Binary, _>(owner.as_bytes().to_vec())
            .bind::<Nullable<BigInt>, _>(Some(ms(ttl)));
        let rows: Vec<FenceRow> = on_pool!(self.pool, load, query)?;
        Ok(!rows.is_empty())
    }

    async fn release(&self, key: &str, owner: &str) -> Result<bool, LockError> {
        let query = sql_query(self.sql.release.clone())
            .bind::<Binary, _>(key.as_bytes().to_vec())
            .bind::<Binary, _>(owner.as_bytes().to_vec());
        Ok(on_pool!(self.pool, execute, query)? == 1)
    }
}

/// [`Baseline`] for each pool type: a cycle is the store's acquire statement, then its
/// release statement; a round trip is one committed write (`$write`).
macro_rules! sql_baseline {
    ($($pool:ty => $write:expr),* $(,)?) => {$(
        #[async_trait]
        impl Baseline for SqlBaseline<$pool> {
            fn describe(&self) -> String {
                self.what.to_owned()
            }

            async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
                Ok(self.acquire(key, owner, ttl).await? && self.release(key, owner).await?)
            }

            async fn round_trip(&self, key: &str) -> Result<(), LockError> {
                let key = key.as_bytes().to_vec();
                on_pool!(self.pool, execute, sql_query($write).bind::<Binary, _>(key)).map(drop)
            }
        }
    )*};
}

sql_baseline!(PgPool => PG_WRITE, MysqlPool => MY_WRITE, SqlitePool => LITE_WRITE);

/// What differs between the SQL servers, beyond their pool type.
struct Server {
    backend: Backend,
    /// A query returning the server's version as one text column `v`.
    version: &'static str,
    /// The version for the report, given the version and the URL.
    label: fn(String, &str) -> String,
    /// What the baseline runs.
    what: &'static str,
}

const POSTGRES: Server = Server {
    backend: Backend::Postgres,
    version: "SELECT version() AS v",
    label: |v, _| v,
    what: "the store's INSERT … ON CONFLICT and UPDATE + pg_notify statements, on the store's pool; round trip = one committed upsert",
};

const MYSQL: Server = Server {
    backend: Backend::Mysql,
    version: "SELECT CAST(version() AS CHAR) AS v",
    label: |v, _| format!("MySQL/MariaDB {v}"),
    what: "the store's INSERT … ON DUPLICATE KEY UPDATE + SELECT LAST_INSERT_ID() and UPDATE statements, on the store's pool",
};

const SQLITE: Server = Server {
    backend: Backend::Sqlite,
    version: "SELECT sqlite_version() AS v",
    label: |v, path| format!("SQLite {v} (file {path})"),
    what: "the store's INSERT … ON CONFLICT … RETURNING and UPDATE statements, on the store's pool",
};

/// The store on the bench table, on the pool it would open for `$url` (options
/// `DatabaseStoreOptions::$given`, pool `$open`, reused with `$reuse`), and its baseline
/// on the same pool.
macro_rules! prepared {
    ($server:expr, $url:expr, $given:ident, $open:ident, $reuse:ident) => {{
        let server = &$server;
        let service = server.backend.to_string();
        let url: String = $url;
        let pool = DatabaseStoreOptions::$given(&url)
            .$open()
            .map_err(|e| Prep::Fail(format!("pool: {e}")))?;
        let options = DatabaseStoreOptions::$reuse(pool.clone());
        let store = DatabaseStore::connect(options.table_name(TABLE))
            .await
            .map_err(|e| match e {
                LockError::Storage(_) => Prep::unreachable(&service, &url, e),
                other => Prep::Fail(other.to_string()),
            })?;
        let mut conn = pool
            .get()
            .await
            .map_err(|e| Prep::Fail(format!("{service}: {e}")))?;
        let version = sql_query(server.version)
            .get_result::<VersionRow>(&mut conn)
            .await
            .map(|r| r.v)
            .map_err(|e| Prep::Fail(format!("{}: {e}", server.version)))?;
        drop(conn);
        let sql = lock_store_database::statements(server.backend, TABLE)
            .map_err(|e| Prep::Fail(e.to_string()))?;
        let what = server.what;
        Ok(Prepared::new(
            Arc::new(store),
            Arc::new(SqlBaseline { pool, sql, what }),
            (server.label)(version, &url),
        ))
    }};
}

pub async fn prepare_postgres() -> Result<Prepared, Prep> {
    prepared!(
        POSTGRES,
        postgres_url(),
        new,
        open_postgres_pool,
        from_postgres_pool
    )
}

pub async fn prepare_mysql() -> Result<Prepared, Prep> {
    prepared!(MYSQL, mysql_url(), new, open_mysql_pool, from_mysql_pool)
}

pub async fn prepare_sqlite() -> Result<Prepared, Prep> {
    let path = std::env::temp_dir().join("lock-bench.sqlite");
    // The store's own SQLite pool: busy timeout, then WAL, on every connection.
    let url = path.display().to_string();
    prepared!(SQLITE, url, sqlite_path, open_sqlite_pool, from_sqlite_pool)
}
