//! Locks in a SQL table: PostgreSQL, MySQL/MariaDB and SQLite, on
//! [`diesel-async`](diesel_async) with a `deadpool` pool.
//!
//! An application that already has a SQL database shares locks through it, with no
//! Redis; a single machine gets cross-process locks with no server at all (a SQLite
//! file). Plug it into `lock-core` through [`database`] (a
//! [`StoreFactory`](lock_core::StoreFactory)) or build a [`DatabaseStore`] directly.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lock_core::LockStore;
//! use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
//!
//! # async fn example() -> Result<(), lock_core::LockError> {
//! // "postgres://…", "mysql://…", "sqlite://locks.db" or "sqlite::memory:"; for a file
//! // path, DatabaseStoreOptions::sqlite_path(path).
//! let store = DatabaseStore::connect(
//!     DatabaseStoreOptions::new("sqlite://locks.db").table_name("app_locks"),
//! )
//! .await?;
//! let acquired = store.try_acquire("orders:42", "owner-token", None).await?;
//! assert!(acquired.acquired);
//! println!("fencing token {:?}", acquired.fencing_token);
//! store.delete("orders:42", "owner-token").await?;
//! # Ok(()) }
//! ```
//!
//! Or hand the factory to a `LockManager` configuration:
//! `lock_store_database::database(DatabaseStoreOptions::new(url))`. To reuse the pool
//! the application already has (the seed's `connectionName`), use
//! [`DatabaseStoreOptions::from_postgres_pool`], [`from_mysql_pool`] or
//! [`from_sqlite_pool`] (each with its backend's feature). To share the pool the store
//! would open for a URL with your own queries, open it with [`open_postgres_pool`] (or
//! [`open_mysql_pool`], [`open_sqlite_pool`]) and hand it back the same way.
//!
// Page anchors rather than item paths: each method exists with its backend's feature
// only, and the links must resolve in every feature set.
//! [`DatabaseStoreOptions::from_postgres_pool`]: DatabaseStoreOptions#method.from_postgres_pool
//! [`from_mysql_pool`]: DatabaseStoreOptions#method.from_mysql_pool
//! [`from_sqlite_pool`]: DatabaseStoreOptions#method.from_sqlite_pool
//! [`open_postgres_pool`]: DatabaseStoreOptions#method.open_postgres_pool
//! [`open_mysql_pool`]: DatabaseStoreOptions#method.open_mysql_pool
//! [`open_sqlite_pool`]: DatabaseStoreOptions#method.open_sqlite_pool
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `postgres` | on | PostgreSQL (tokio-postgres), with `LISTEN`/`NOTIFY` release notification |
//! | `mysql` | on | MySQL / MariaDB (mysql_async) |
//! | `sqlite` | on | SQLite, built from source (bundled) |
//! | `rustls` | on | [TLS](#tls) to PostgreSQL and MySQL with rustls (ring) |
//! | `native-tls` | off | TLS to PostgreSQL with the platform's library (OpenSSL on Linux, which needs its headers to build) instead of rustls |
//!
//! Turn off the ones you do not use. With the defaults nothing links a system library:
//! PostgreSQL and MySQL are pure Rust and SQLite is bundled. MySQL's TLS always uses
//! rustls: mysql_async cannot be built with both TLS libraries, and cargo features
//! must add up.
//!
//! # TLS
//!
//! Set in the URL, with the parameter names (and meanings) of each database's own
//! clients; the driver receives the rest of the URL unchanged. A bad value is
//! [`LockError::InvalidArgument`](lock_core::LockError::InvalidArgument) naming the
//! parameter, reported when the store is built (as is a CA file that cannot be read or
//! holds no PEM certificate); a server that fails the check is a
//! [`LockError::Storage`](lock_core::LockError::Storage) naming the store, the endpoint
//! and the certificate's fault.
//!
//! **PostgreSQL** (libpq's `sslmode` and `sslrootcert`):
//!
//! | `sslmode` | encrypted | server checked |
//! |---|---|---|
//! | `disable` | no | — |
//! | `prefer` (the default) | when the server offers TLS | no |
//! | `require` | yes, or the connect fails | no (but as `verify-ca` when `sslrootcert` names a file, as libpq does) |
//! | `verify-ca` | yes | its chain leads to a trusted root |
//! | `verify-full` | yes | as `verify-ca`, and the certificate names the host connected to |
//!
//! `sslrootcert=/path/ca.pem`: the PEM file of the roots to trust (and no others);
//! without it the system's trusted roots are used. `sslrootcert=system` asks for the
//! system's roots and `verify-full` (as libpq 16 does). `sslmode=allow` is not
//! supported. Every connection of the store uses these settings: the pool's, the
//! `LISTEN` connection's and the query-cancel request's.
//!
//! ```no_run
//! # use lock_store_database::DatabaseStoreOptions;
//! let options = DatabaseStoreOptions::new(
//!     "postgres://app@db.internal/app?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem",
//! );
//! ```
//!
//! **MySQL / MariaDB** (MySQL's `ssl-mode` and `ssl-ca`):
//!
//! | `ssl-mode` (any case) | encrypted | server checked |
//! |---|---|---|
//! | `DISABLED` | no | — |
//! | `PREFERRED` (the default) | when the server offers TLS | no |
//! | `REQUIRED` | yes, or the connect fails | no |
//! | `VERIFY_CA` | yes | its chain leads to a trusted root |
//! | `VERIFY_IDENTITY` | yes | as `VERIFY_CA`, and the certificate names the host connected to |
//!
//! `ssl-ca=/path/ca.pem`: the PEM file of the roots to trust (and no others), allowed
//! with `VERIFY_CA` and `VERIFY_IDENTITY` only; without it the Mozilla roots bundled
//! with mysql_async (webpki-roots) are used. With `REQUIRED` and the verifying modes a
//! connection stays on TCP (mysql_async otherwise moves a local connection to the
//! server's Unix socket, which it never encrypts). mysql_async's own parameters
//! (`require_ssl`, `verify_ca`, …) still work when `ssl-mode` is not given. **Known
//! limitation:** `VERIFY_CA` also checks the host name, like `VERIFY_IDENTITY`, because
//! mysql_async (up to 0.37.1) misses rustls' name errors (blackbeam/mysql_async#404); it
//! is stricter than asked, never weaker.
//!
//! ```no_run
//! # use lock_store_database::DatabaseStoreOptions;
//! let options = DatabaseStoreOptions::new(
//!     "mysql://app@db.internal/app?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ssl/db-ca.pem",
//! );
//! ```
//!
//! Without a TLS feature, a URL that asks for TLS (`require` and up, `REQUIRED` and up)
//! is `InvalidArgument`; `prefer` and `PREFERRED` then connect without TLS.
//!
//! A pool passed in by the application ([`DatabaseStoreOptions::from_postgres_pool`],
//! …) keeps the TLS it was built with; on PostgreSQL the store's cancel requests for
//! it use TLS without checking the server whenever the connection asked for TLS
//! (`prefer` or `require` in its configuration), since its settings are not known here.
//!
//! # The table
//!
//! One row per key ever locked (semaphores and reader-writer locks have a table of
//! their own, see [below](#semaphores-and-reader-writer-locks)):
//!
//! | column | meaning |
//! |---|---|
//! | `lock_key` | the key's UTF-8 bytes (binary, compared byte for byte: no case folding, no trailing-space padding); 1 to [`MAX_KEY_BYTES`] (1024) bytes |
//! | `owner` | the holder's owner token (1 to [`MAX_OWNER_BYTES`] of `[A-Za-z0-9_-]`); `NULL` once released |
//! | `expires_at` | Unix milliseconds **by the backend's clock** (see below); `NULL` = held, never expires; `0` = released |
//! | `fence` | the last fencing token of the key (see [Capabilities](#capabilities)) |
//!
//! Every [`LockStore`](lock_core::LockStore) method first checks its input against the
//! store contract's domain ([`lock_core::validate`]): an empty key, a key over 1024
//! bytes or with a NUL byte, an owner that is not a token, a TTL or extension of zero
//! (under 1 ms) or over [`lock_core::MAX_TTL`] are `InvalidArgument`, and no SQL runs.
//! Keys are stored as bytes, so any other string works (quotes, `;`, `--`, non-ASCII).
//! To read them in SQL: `convert_from(lock_key, 'UTF8')` on PostgreSQL,
//! `CAST(lock_key AS CHAR)` on MySQL, `CAST(lock_key AS TEXT)` on SQLite.
//!
//! **Growth:** a release clears the row instead of deleting it, so that the key's
//! token counter survives. The table therefore holds one small row per distinct key
//! ever locked. That suits the usual bounded key sets (one per job, account,
//! resource); an application that locks unbounded one-off keys can delete released
//! rows (`expires_at = 0`): the next token of such a key then comes from the clock, and
//! is still larger as long as that clock has not stepped back and the key's last
//! acquisition was at least one millisecond earlier (see [Capabilities](#capabilities)).
//!
//! [`ddl`] returns the `CREATE TABLE` for a backend and table name, for users who run
//! their own migrations (then set
//! [`create_table(false)`](DatabaseStoreOptions::create_table)). For the default table:
//!
//! ```sql
//! -- PostgreSQL
//! CREATE TABLE IF NOT EXISTS "locks" (
//!     lock_key   BYTEA  NOT NULL PRIMARY KEY,
//!     owner      BYTEA  NULL,
//!     expires_at BIGINT NULL,
//!     fence      BIGINT NOT NULL DEFAULT 0
//! );
//! -- MySQL / MariaDB
//! CREATE TABLE IF NOT EXISTS `locks` (
//!     lock_key   VARBINARY(1024) NOT NULL PRIMARY KEY,
//!     owner      VARBINARY(255)  NULL,
//!     expires_at BIGINT          NULL,
//!     fence      BIGINT          NOT NULL DEFAULT 0
//! ) ENGINE = InnoDB;
//! -- SQLite
//! CREATE TABLE IF NOT EXISTS "locks" (
//!     lock_key   BLOB    NOT NULL PRIMARY KEY,
//!     owner      BLOB    NULL,
//!     expires_at INTEGER NULL,
//!     fence      INTEGER NOT NULL DEFAULT 0
//! ) WITHOUT ROWID;
//! ```
//!
//! The table name is validated (`[A-Za-z_][A-Za-z0-9_]{0,62}`, anything else is
//! `InvalidArgument`) and quoted; it is the only identifier put into SQL text. Keys,
//! owners and durations are always bound parameters.
//!
//! # One atomic statement per operation, and whose clock decides
//!
//! A lock is held when `expires_at IS NULL OR expires_at > now`, with "now" read once
//! per statement, inside the statement:
//!
//! * **PostgreSQL and MySQL/MariaDB: the database server's clock**
//!   (`statement_timestamp()`, `UTC_TIMESTAMP(6)`; on MySQL/MariaDB a session that sets
//!   the `timestamp` variable overrides it — the store's own pool never does, a pool you
//!   pass with `from_mysql_pool` must not), never the application's: clients
//!   whose clocks disagree (tested with a client clock 10 minutes off) still agree on
//!   every lock.
//! * **SQLite: the machine's wall clock.** SQLite has no server: `julianday('now')` is
//!   computed inside each calling process, from the system clock. The processes sharing
//!   a SQLite file share one machine, hence one clock, so they agree with each other;
//!   but the clock may be stepped (by hand, or by NTP correcting a large error). A step
//!   **forward** by *d* makes every lock expire *d* early: a waiter can take a lock
//!   while its holder still believes it holds it (the holder's own
//!   [`remaining_time`](lock_core::Lock::remaining_time) runs on a monotonic clock and
//!   does not see the step). A step **back** by *d* keeps every lock *d* longer: a lock
//!   whose holder died stays taken that much longer. Gradual NTP slewing is harmless.
//!   Fencing tokens catch the first case at the resource they protect.
//!
//! The same holds for the server's clock on PostgreSQL and MySQL, which is stepped far
//! more rarely than a desktop's.
//!
//! | operation | PostgreSQL | MySQL / MariaDB | SQLite |
//! |---|---|---|---|
//! | acquire (`save`, `try_acquire`) | 1 statement, 1 round trip: `INSERT … ON CONFLICT (lock_key) DO UPDATE … WHERE expires_at <= now RETURNING fence` (plus the holder's remaining time, same statement); when the statement's snapshot already shows the key held, it is denied without inserting, so a denial takes no row lock and writes nothing | 2 round trips: `INSERT … ON DUPLICATE KEY UPDATE` with conditional assignments, which leaves the new token (or 0 = denied) in `LAST_INSERT_ID()`, then `SELECT LAST_INSERT_ID()` on the same connection | 1 statement: `INSERT … ON CONFLICT DO UPDATE … WHERE expired RETURNING fence`; when denied, a second local read for the holder's remaining time |
//! | release (`delete`) | 1: `UPDATE … WHERE key AND owner AND not expired`, with `pg_notify` in the same statement; [lazy](#durability-and-lazy-releases-on-postgresql) for a lock with an expiry | 1: `UPDATE …` (matched rows) | 1: `UPDATE …` |
//! | `force_delete` | 1 (with `pg_notify`) | 1 | 1 |
//! | `extend` | 1: `UPDATE … WHERE key AND owner AND not expired` | 1 | 1 |
//! | `exists` | 1 read | 1 read | 1 read |
//!
//! Release and extend of a lock that is not held by the owner (another owner, expired,
//! released) change 0 rows, which is [`LockError::NotOwned`](lock_core::LockError::NotOwned).
//! The MySQL acquire needs its second read because diesel-async sets `CLIENT_FOUND_ROWS`:
//! a fresh insert and a denied upsert both report one affected row. The decision is
//! still made by the one `INSERT`, under the row lock, and `LAST_INSERT_ID()` is private
//! to the connection, so no other statement can interleave.
//!
//! Each connection prepares these statements once, the first time it runs them, and
//! keeps them in diesel's statement cache (a few entries per connection), so an
//! operation is the round trips above and no more. A connection pooler in front of
//! PostgreSQL must therefore keep prepared statements per server connection
//! (PgBouncer in transaction mode needs `max_prepared_statements`, 1.21+).
//!
//! # Durability, and lazy releases on PostgreSQL
//!
//! Every operation commits as the server, database, role or pool session is configured
//! to commit — durably by default (`synchronous_commit = on`) — with one exception on
//! PostgreSQL: the release (and force release) of a lock or permit **that has an
//! expiry** commits with `synchronous_commit = off`, for its own transaction only. It is
//! visible to every session, and its `NOTIFY` delivered, as soon as it commits, but the
//! server answers without waiting for the disk (or for a synchronous standby). This
//! saves one of the two disk flushes of every hand-over (in this project's bench on one
//! machine, a hand-over went from ≈ 2.5× to ≈ 2.0× the time of one committed upsert:
//! BENCHMARKS.md). Acquires (with their fencing tokens), extensions and releases of
//! holdings without expiry keep the configured setting, and the WAL is flushed in order:
//! any durable commit after a lazy release takes the release to disk with it — in
//! particular the next owner's acquire. So, with the default setting, what a crash of
//! the server can undo is a release made in the moments before it (at most three times
//! `wal_writer_delay`, 600 ms by default): the lock is then held again by the owner that
//! released it, **until its expiry**, as if that owner had crashed while holding it;
//! no acknowledged acquire is lost, nobody is granted a lock another holds, and no
//! fencing token repeats. The same holds across a failover to a **synchronous** standby
//! (`synchronous_standby_names`, and a `synchronous_commit` of `on` or `remote_apply`).
//! It cannot hold where acknowledged commits themselves may be lost — a server or role
//! set to `synchronous_commit = off` (in a crash), `local` with a synchronous standby
//! (in a failover), or a failover to an asynchronous replica: there a lost acquire can
//! let two owners hold one lock, with this store as with any lock table, and fencing
//! tokens are what protects the resource.
//! MySQL/MariaDB and SQLite commit every operation as the server or the file is
//! configured to.
//!
//! # Capabilities
//!
//! * **Fencing tokens** on every backend: minted by the acquiring statement as
//!   `max(previous token of the key + 1, now in Unix milliseconds × 1000)` (now by the
//!   clock above). Strictly increasing per key across releases, expiry takeovers, force
//!   releases, store instances and processes — by the `+ 1` alone, whatever the clock,
//!   as long as the key's row exists (a release keeps it). When the row is gone
//!   (released rows purged, table dropped and re-created), the next token is the clock
//!   reading, still larger than every earlier one **provided the clock has not stepped
//!   back** past the last token **and at least one millisecond has passed** since the
//!   key's last acquisition (the clock is read in milliseconds: a purge and a fresh
//!   acquire within the millisecond of the previous one give the same token). Tokens are about 1.8 × 10¹⁵ today (below 2⁵³, so
//!   exact in a JavaScript number until the year 2255).
//! * **Holder TTL** on every backend: a denied acquire reports the holder's remaining
//!   time (a hint; `None` for a lock without expiry).
//! * **Release notification on PostgreSQL only.** Release and force release call
//!   `pg_notify(channel, hex(key))` in the releasing statement, delivered at commit.
//!   Each store keeps one `LISTEN` connection (outside the pool, opened on the first
//!   [`release_listener`](lock_core::LockStore::release_listener)) and wakes the waiters
//!   of the released key, in every process. A lost connection is re-established, and
//!   every waiter is woken to retry, since releases may have gone unheard meanwhile.
//!   A release by this process wakes its own waiters at once; its notification, when it
//!   comes back through `LISTEN`, is not passed on a second time (it would wake the next
//!   waiter for nothing, and that waiter would spend a statement finding the lock taken).
//!   **MySQL and SQLite poll:** waiters retry every retry `delay` (and no later than the
//!   holder's expiry). Permit releases notify on a channel of their own (see
//!   [Semaphores and reader-writer locks](#semaphores-and-reader-writer-locks)).
//!
//! # Semaphores and reader-writer locks
//!
//! A [`DatabaseStore`] offers lock-core's [`PermitStore`](lock_core::PermitStore)
//! capability on every backend, so [`Semaphore`](lock_core::Semaphore) and
//! [`RwLock`](lock_core::RwLock) work on it as on the other stores, under the rules of
//! [`PermitSet`](lock_core::PermitSet): holders with weights under the key's limit, no
//! second holding per owner, owner-checked release and extend, and a waiting writer's
//! *reservation* that keeps new readers out until it is granted or lapses.
//!
//! Permit keys live in a second table, `<table>_permits` (`locks_permits` by default),
//! so a semaphore and a lock on the same key never meet (and no lock table should be
//! named like another's permits table). One row per permit key ever used:
//!
//! | column | meaning |
//! |---|---|
//! | `permit_key` | the key's UTF-8 bytes, as `lock_key` |
//! | `holders` | a JSON array of `{"o": owner, "w": weight, "e": expiry}`; `e` in Unix ms by the backend's clock, `null` = never expires; expired entries are dropped by the key's next write |
//! | `reserved_by`, `reserved_until` | a waiting writer's reservation: its owner, and until when (Unix ms) |
//! | `fence` | the key's last fencing token, minted as the lock table's: `max(fence + 1, now_ms × 1000)` |
//!
//! The store creates it next to the lock table when
//! [`create_table`](DatabaseStoreOptions::create_table) is on. With it off, nothing is
//! checked at build (a store used only for locks needs no permits table): create it with
//! [`permits_ddl`]; until it exists, permit operations fail with `LockError::Storage`.
//! `<table>_permits` must fit the 63-byte identifier limit, so the lock table name may
//! have at most 55 bytes for permits: with a longer one the store still works for locks,
//! and its permit operations answer `InvalidArgument`. For the default table:
//!
//! ```sql
//! -- PostgreSQL
//! CREATE TABLE IF NOT EXISTS "locks_permits" (
//!     permit_key     BYTEA  NOT NULL PRIMARY KEY,
//!     holders        JSONB  NOT NULL DEFAULT '[]',
//!     reserved_by    TEXT   NULL,
//!     reserved_until BIGINT NULL,
//!     fence          BIGINT NOT NULL DEFAULT 0
//! );
//! -- MySQL / MariaDB
//! CREATE TABLE IF NOT EXISTS `locks_permits` (
//!     permit_key     VARBINARY(1024) NOT NULL PRIMARY KEY,
//!     holders        JSON            NOT NULL,
//!     reserved_by    VARBINARY(255)  NULL,
//!     reserved_until BIGINT          NULL,
//!     fence          BIGINT          NOT NULL DEFAULT 0
//! ) ENGINE = InnoDB;
//! -- SQLite
//! CREATE TABLE IF NOT EXISTS "locks_permits" (
//!     permit_key     BLOB    NOT NULL PRIMARY KEY,
//!     holders        TEXT    NOT NULL DEFAULT '[]',
//!     reserved_by    TEXT    NULL,
//!     reserved_until INTEGER NULL,
//!     fence          INTEGER NOT NULL DEFAULT 0
//! ) WITHOUT ROWID;
//! ```
//!
//! Each operation is one statement on the key's row that computes the new row from the
//! row's own columns while holding its lock (PostgreSQL, MySQL) or the database write
//! lock (SQLite), so racing requests from any number of processes are serialized:
//!
//! | operation | PostgreSQL | MySQL / MariaDB | SQLite |
//! |---|---|---|---|
//! | acquire | 1 statement, 1 round trip: `INSERT … ON CONFLICT DO UPDATE … WHERE <allowed> RETURNING` (plus the holder hint from the statement's snapshot) | 2 round trips: `INSERT … ON DUPLICATE KEY UPDATE` decides and leaves the token (or 0) in `LAST_INSERT_ID()`, then `SELECT LAST_INSERT_ID()` and the hint on the same connection | 1 statement: `INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`; when it writes nothing (denied), a second read for the hint |
//! | release | 1: `UPDATE … WHERE <owner holds>`, with `pg_notify` | 1: `UPDATE` | 1: `UPDATE` |
//! | extend | 1: `UPDATE … WHERE <owner holds>` | 1 | 1 |
//! | force release | 1: `UPDATE`, with `pg_notify` | 1 | 1 |
//! | usage | 1 read | 1 read | 1 read |
//!
//! A denied acquire reports the earliest live holder's remaining time (a hint). Expiry
//! of holdings and reservations is judged by the same clock as the locks': the server's
//! on PostgreSQL and MySQL/MariaDB, the machine's wall clock on SQLite (see above, with
//! what a stepped clock does). **Release notification on PostgreSQL:** release and force
//! release `pg_notify` the channel `<table>_permits_released` (not the locks' channel,
//! so a permit release never wakes lock waiters of the same key string, nor the other
//! way round); each store keeps a second `LISTEN` connection for it, opened by the first
//! permit waiter. **MySQL and SQLite poll**, as for locks.
//!
//! Versions: the permit statements need PostgreSQL 9.5+, MySQL 8.0.4+ or MariaDB 10.6+
//! (`JSON_TABLE`), and SQLite 3.35+ with JSON1 (the bundled library). They are tested
//! on PostgreSQL 15, MariaDB 10.11 and the bundled SQLite.
//!
//! # SQLite
//!
//! Every pooled connection sets `busy_timeout` (the operation timeout) and WAL, so one
//! file can be shared by several processes on one machine. Each statement runs alone in
//! autocommit mode, so writers never deadlock on a read-to-write upgrade.
//! A SQLite file is named by `sqlite://PATH` or [`DatabaseStoreOptions::sqlite_path`];
//! a connection string without a scheme (`localhost:5432`, `locks.db`) is
//! `InvalidArgument`, never taken for a file name.
//! `sqlite::memory:` gives a private in-process database: every SQLite connection to
//! `:memory:` is a database of its own, so the store's pool then has exactly one
//! connection, and two stores never share locks (use a file for that).
//!
//! # Timeouts and cancellation
//!
//! Every operation, waiting for a pooled connection included, is bounded by
//! [`operation_timeout`](DatabaseStoreOptions::operation_timeout) (default 5 s) and
//! fails with `LockError::Storage` on expiry. Building a store — connecting, creating
//! and checking the table — ends within one operation timeout in total, even against a
//! server that accepts connections and never answers; its error names the store and the
//! endpoint (without the password). A PostgreSQL or MySQL connection whose
//! statement timed out is closed, not reused; on PostgreSQL the statement is also
//! cancelled on the server. Still, a statement already sent may commit after its caller
//! gave up (always possible on MySQL, and on PostgreSQL when the cancel arrives late):
//! an acquire that timed out may have taken the lock, which then expires with its TTL
//! (or is force-released).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod engine;
mod error;
#[cfg(feature = "postgres")]
mod listener;
mod options;
mod permits;
mod prepared;
mod sql;
mod statements;
mod store;
mod tls;
mod url;

pub use backend::Backend;
/// The diesel-async this crate is built on, to build a pool of the matching version.
pub use diesel_async;
pub use options::{DEFAULT_OPERATION_TIMEOUT, DEFAULT_TABLE_NAME, DatabaseStoreOptions};
pub use permits::permits_ddl;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use sql::mysql::MysqlPool;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use sql::postgres::PgPool;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sql::sqlite::{AsyncSqliteConnection, SqlitePool};
pub use statements::{Statements, ddl, statements};
pub use store::{DatabaseStore, MAX_KEY_BYTES, MAX_OWNER_BYTES, database};

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The `what` DDL shown in the crate docs for each backend is the DDL the code runs.
    pub(crate) fn assert_documented(
        what: &str,
        ddl: fn(Backend, &str) -> Result<String, lock_core::LockError>,
    ) {
        let docs = include_str!("lib.rs");
        for backend in [Backend::Postgres, Backend::Mysql, Backend::Sqlite] {
            let sql = ddl(backend, DEFAULT_TABLE_NAME).unwrap();
            let documented: String = format!("{sql};")
                .lines()
                .map(|l| format!("//! {l}\n"))
                .collect();
            assert!(
                docs.contains(&documented),
                "crate docs show a different {what} for {backend}:\n{documented}"
            );
        }
    }

    /// The DDL shown in the crate docs is the DDL the code runs.
    #[test]
    fn documented_ddl_matches_the_code() {
        assert_documented("DDL", ddl);
    }
}
