//! The benchmark front end: every store against its raw baseline, in one run.
//!
//! ```text
//! cargo run --release -p examples --bin bench -- --store memory|redis|postgres|mysql|sqlite|all [--json] [--quick]
//! ```
//!
//! * `--store` (repeatable, or comma-separated; default `all`);
//! * `--json`: JSON lines on stdout (the table goes to stderr);
//! * `--quick`: one short run of everything (the smoke mode CI runs);
//! * `--compare-polling`: also measure the contended handoff with the store's release
//!   notification and holder TTL hidden (waiters poll every 250 ms, as Verrou's do), in
//!   the same run;
//! * `--runs N`: runs per figure (default 3; `--quick`: 1);
//! * `--prefix P`: key prefix (default `bench:`), so two benches can share a server.
//!
//! Servers: `LOCK_REDIS_URL`, `LOCK_POSTGRES_URL`, `LOCK_MYSQL_URL` (see the README);
//! SQLite uses a file in the system temp folder. An unreachable server is reported as
//! `skipped` (a JSON line `{"kind":"skipped",…}`) and the others still run.
//!
//! The baselines send the raw commands through the store's own connection:
//! * memory: `tokio::sync::Mutex` try_lock + unlock;
//! * Redis: `SET key owner NX PX ttl` + `EVALSHA` of the owner-checked delete script
//!   (`GET` = owner → `DEL`), on the store's fred client;
//! * SQL: the store's own acquire and release statements (copied below from
//!   `lock-store-database/src/sql/`), on the pool the store was given.
//!
//! The "raw round trip" of the handoff ratio is one baseline command: for memory a
//! mutex lock + unlock; for Redis the delete script on an absent key; for SQL one
//! committed single-row upsert (a no-op statement would skip the commit's WAL flush,
//! which every lock state change pays and a handoff pays twice).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::{QueryableByName, sql_query};
use lock_core::{LockError, LockStore, async_trait};
use lock_store_database::diesel_async::pooled_connection::deadpool::Pool;
use lock_store_database::diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use lock_store_database::diesel_async::{
    AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
};
use lock_store_database::{
    AsyncSqliteConnection, Backend, DatabaseStore, DatabaseStoreOptions, MysqlPool, PgPool,
    SqlitePool,
};
use lock_store_memory::MemoryStore;
use lock_store_redis::fred::interfaces::{ClientLike, KeysInterface, LuaInterface};
use lock_store_redis::fred::prelude::Client;
use lock_store_redis::fred::types::scripts::Script;
use lock_store_redis::fred::types::{ClusterHash, CustomCommand, Expiration, SetOptions};
use lock_store_redis::{RedisStore, RedisStoreOptions};
use lock_testkit::bench::{
    Baseline, BenchConfig, BenchReport, CountingAllocator, MutexBaseline, json_string, run_bench,
};
use lock_testkit::services::{mysql_url, postgres_url, redis_url};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const STORES: [&str; 5] = ["memory", "redis", "postgres", "mysql", "sqlite"];
/// The table of the SQL benches (kept apart from the tests' `locks`).
const TABLE: &str = "lock_bench";
const POOL_SIZE: usize = 10;
const OP_TIMEOUT: Duration = Duration::from_secs(5);

struct Args {
    stores: Vec<String>,
    json: bool,
    quick: bool,
    runs: Option<usize>,
    prefix: String,
    compare_polling: bool,
}

fn usage() -> &'static str {
    "usage: bench [--store memory|redis|postgres|mysql|sqlite|all]... [--json] [--quick] [--runs N] [--prefix P] [--compare-polling]"
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        stores: Vec::new(),
        json: false,
        quick: false,
        runs: None,
        prefix: "bench:".to_owned(),
        compare_polling: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{what} needs a value\n{}", usage()))
        };
        match name.as_str() {
            "--store" | "-s" => {
                for s in value("--store")?.split(',') {
                    match s {
                        "all" => args.stores.extend(STORES.iter().map(|s| s.to_string())),
                        s if STORES.contains(&s) => args.stores.push(s.to_owned()),
                        other => return Err(format!("unknown store {other:?}\n{}", usage())),
                    }
                }
            }
            "--json" => args.json = true,
            "--quick" => args.quick = true,
            "--compare-polling" => args.compare_polling = true,
            "--runs" => {
                let n = value("--runs")?;
                args.runs = Some(
                    n.parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("--runs needs a positive number, not {n:?}"))?,
                );
            }
            "--prefix" => args.prefix = value("--prefix")?,
            "--help" | "-h" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if args.stores.is_empty() {
        args.stores = STORES.iter().map(|s| s.to_string()).collect();
    }
    args.stores.dedup();
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(args))
}

/// Prints to stdout, or to stderr when stdout carries JSON.
struct Out {
    json: bool,
}

impl Out {
    fn text(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }

    fn json(&self, line: &str) {
        if self.json {
            println!("{line}");
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let out = Out { json: args.json };
    let machine = Machine::detect();
    out.text(&machine.describe());
    out.json(&machine.json());
    let mut failed = false;
    for name in &args.stores {
        let mut config = if args.quick {
            BenchConfig::quick()
        } else {
            BenchConfig::full()
        };
        if let Some(runs) = args.runs {
            config.runs = runs;
        }
        config.key_prefix = args.prefix.clone();
        let prepared = match prepare(name, &mut config, args.quick).await {
            Ok(p) => p,
            Err(Prep::Skip(reason)) => {
                out.text(&format!("\n{name}: skipped: {reason}"));
                out.json(&format!(
                    "{{\"kind\":\"skipped\",\"store\":{},\"reason\":{}}}",
                    json_string(name),
                    json_string(&reason)
                ));
                continue;
            }
            Err(Prep::Fail(error)) => {
                out.text(&format!("\n{name}: failed to set up: {error}"));
                out.json(&error_line(name, &error));
                failed = true;
                continue;
            }
        };
        out.text(&format!("\n{name} — server: {}", prepared.version));
        out.json(&format!(
            "{{\"kind\":\"store\",\"store\":{},\"server_version\":{}}}",
            json_string(name),
            json_string(&prepared.version)
        ));
        let polling_view = args.compare_polling.then(|| {
            (
                Arc::new(lock_testkit::wrap::PollingOnly(prepared.store.clone()))
                    as Arc<dyn LockStore>,
                prepared.baseline.clone(),
            )
        });
        match run_bench(prepared.store, prepared.baseline, &config).await {
            Ok(report) => {
                out.text(&report.table());
                for line in report.json_lines() {
                    out.json(&line);
                }
                for target in targets(name, &report) {
                    out.text(&target.text());
                    out.json(&target.json(name));
                }
                if report.overlaps() > 0 {
                    failed = true;
                }
                if let Some((polling, baseline)) = polling_view {
                    failed |=
                        compare_polling(&out, name, &report, polling, baseline, &config).await;
                }
            }
            Err(error) => {
                out.text(&format!("{name}: bench failed: {error}"));
                out.json(&error_line(name, &error.to_string()));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The contended handoff again with notification hidden (Verrou-style polling), beside
/// the event-driven figures of the same run. Returns whether it failed.
async fn compare_polling(
    out: &Out,
    name: &str,
    report: &lock_testkit::bench::BenchReport,
    polling: Arc<dyn LockStore>,
    baseline: Arc<dyn lock_testkit::bench::Baseline>,
    config: &BenchConfig,
) -> bool {
    match lock_testkit::bench::run_contended(polling, baseline, config).await {
        Ok(before) => {
            out.text("handoff median: polling (before) -> event-driven (after), same run");
            for (b, a) in before.iter().zip(&report.contended) {
                let gain =
                    b.handoff.median.as_secs_f64() / a.handoff.median.as_secs_f64().max(1e-12);
                out.text(&format!(
                    "  {:>3} task(s): {:>12?} -> {:>12?}  ({gain:.0}x faster; overlaps {} / {})",
                    a.tasks, b.handoff.median, a.handoff.median, b.overlaps, a.overlaps
                ));
                out.json(&format!(
                    "{{\"kind\":\"polling_vs_notified\",\"store\":{},\"tasks\":{},\"polling_median_ns\":{},\"notified_median_ns\":{},\"polling_overlaps\":{}}}",
                    json_string(name),
                    a.tasks,
                    b.handoff.median.as_nanos(),
                    a.handoff.median.as_nanos(),
                    b.overlaps
                ));
            }
            before.iter().any(|b| b.overlaps > 0)
        }
        Err(error) => {
            out.text(&format!("{name}: polling comparison failed: {error}"));
            true
        }
    }
}

fn error_line(store: &str, error: &str) -> String {
    format!(
        "{{\"kind\":\"error\",\"store\":{},\"error\":{}}}",
        json_string(store),
        json_string(error)
    )
}

// ---- the machine --------------------------------------------------------------------

struct Machine {
    cpus: usize,
    cpu_model: String,
    load: String,
    rustc: String,
}

impl Machine {
    fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "unknown".to_owned());
        let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            load,
            rustc,
        }
    }

    fn describe(&self) -> String {
        format!(
            "machine: {} CPU(s), {}; load average {}; {}; build: {}",
            self.cpus,
            self.cpu_model,
            self.load,
            self.rustc,
            if cfg!(debug_assertions) {
                "debug (timings meaningless)"
            } else {
                "release"
            }
        )
    }

    fn json(&self) -> String {
        format!(
            "{{\"kind\":\"machine\",\"cpus\":{},\"cpu_model\":{},\"load_average\":{},\"rustc\":{},\"release\":{}}}",
            self.cpus,
            json_string(&self.cpu_model),
            json_string(&self.load),
            json_string(&self.rustc),
            !cfg!(debug_assertions)
        )
    }
}

// ---- stores and their baselines -----------------------------------------------------------

struct Prepared {
    store: Arc<dyn LockStore>,
    baseline: Arc<dyn Baseline>,
    version: String,
}

enum Prep {
    /// The server is unreachable.
    Skip(String),
    /// Reachable, but something else went wrong.
    Fail(String),
}

async fn prepare(name: &str, config: &mut BenchConfig, quick: bool) -> Result<Prepared, Prep> {
    match name {
        "memory" => {
            config.memory_keys = Some(if quick { 100_000 } else { 1_000_000 });
            config.allocated_bytes = Some(CountingAllocator::allocated);
            Ok(Prepared {
                store: Arc::new(MemoryStore::new()),
                baseline: Arc::new(MutexBaseline::new()),
                version: "in process".to_owned(),
            })
        }
        "redis" => prepare_redis().await,
        "postgres" => prepare_postgres().await,
        "mysql" => prepare_mysql().await,
        "sqlite" => prepare_sqlite().await,
        other => Err(Prep::Fail(format!("unknown store {other}"))),
    }
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> LockError {
    LockError::storage(e)
}

// ---- Redis --------------------------------------------------------------------------------

/// The classic owner-checked delete (the store's release also `PUBLISH`es).
const REDIS_DELETE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

struct RedisBaseline {
    store: RedisStore,
    delete: Script,
}

impl RedisBaseline {
    fn client(&self) -> &Client {
        self.store.client()
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<i64, LockError> {
        self.client()
            .evalsha(self.delete.sha1().clone(), key, vec![owner])
            .await
            .map_err(storage)
    }
}

#[async_trait]
impl Baseline for RedisBaseline {
    fn describe(&self) -> String {
        "SET key owner NX PX ttl + EVALSHA owner-checked DEL, on the store's fred client".to_owned()
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let key = self.store.redis_key(key);
        let set: Option<String> = self
            .client()
            .set(
                key.as_str(),
                owner,
                Some(Expiration::PX(ttl.as_millis() as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(storage)?;
        if set.is_none() {
            return Ok(false);
        }
        Ok(self.delete(&key, owner).await? == 1)
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        self.delete(&self.store.redis_key(key), "nobody").await?;
        Ok(())
    }
}

async fn prepare_redis() -> Result<Prepared, Prep> {
    let url = redis_url();
    let store = RedisStore::connect(RedisStoreOptions::from_url(url.clone()))
        .await
        .map_err(|e| Prep::Skip(format!("redis unreachable at {url}: {e}")))?;
    let delete = Script::from_lua(REDIS_DELETE);
    Script::load(&delete, store.client())
        .await
        .map_err(|e| Prep::Fail(format!("SCRIPT LOAD: {e}")))?;
    let info: String = store
        .client()
        .custom(
            CustomCommand::new_static("INFO", ClusterHash::FirstKey, false),
            vec!["server"],
        )
        .await
        .map_err(|e| Prep::Fail(format!("INFO server: {e}")))?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(|v| format!("Redis {}", v.trim()))
        .unwrap_or_else(|| "Redis (unknown version)".to_owned());
    Ok(Prepared {
        baseline: Arc::new(RedisBaseline {
            store: store.clone(),
            delete,
        }),
        store: Arc::new(store),
        version,
    })
}

// ---- SQL ------------------------------------------------------------------------------------
//
// The baseline runs the very statements the store runs (`lock_store_database::statements`),
// on the same pool, without the store and lock-core around them.

/// The SQL "round trip": one committed single-row write (the fence of a released bench
/// row is bumped). A no-op statement would hide the commit (WAL flush) that every lock
/// state change pays, and that a handoff (a release and an acquire) pays twice.
const PG_WRITE: &str = "INSERT INTO {table} AS l (lock_key, owner, expires_at, fence)
VALUES ($1, NULL, 0, 0) ON CONFLICT (lock_key) DO UPDATE SET fence = l.fence + 1";
const MY_WRITE: &str = "INSERT INTO {table} (lock_key, owner, expires_at, fence)
VALUES (?, NULL, 0, 0) ON DUPLICATE KEY UPDATE fence = fence + 1";
const LITE_WRITE: &str = "INSERT INTO {table} (lock_key, owner, expires_at, fence)
VALUES (?1, NULL, 0, 0) ON CONFLICT (lock_key) DO UPDATE SET fence = fence + 1";

fn render(template: &str, quoted_table: &str) -> String {
    template.replace("{table}", quoted_table)
}

fn store_sql(backend: Backend) -> Result<lock_store_database::Statements, Prep> {
    lock_store_database::statements(backend, TABLE).map_err(|e| Prep::Fail(e.to_string()))
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
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
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

struct PgBaseline {
    pool: PgPool,
    acquire: String,
    release: String,
    write: String,
    channel: String,
}

impl PgBaseline {
    async fn release(&self, key: &str, owner: &str) -> Result<i64, LockError> {
        let mut conn = self.pool.get().await.map_err(storage)?;
        let row: CountRow = sql_query(&self.release)
            .bind::<Binary, _>(key.as_bytes())
            .bind::<Binary, _>(owner.as_bytes())
            .bind::<Text, _>(&self.channel)
            .get_result(&mut conn)
            .await
            .map_err(storage)?;
        Ok(row.n)
    }
}

#[async_trait]
impl Baseline for PgBaseline {
    fn describe(&self) -> String {
        "the store's INSERT … ON CONFLICT and UPDATE + pg_notify statements, on the store's pool; round trip = one committed upsert"
            .to_owned()
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let row: AcquireRow = {
            let mut conn = self.pool.get().await.map_err(storage)?;
            sql_query(&self.acquire)
                .bind::<Binary, _>(key.as_bytes())
                .bind::<Binary, _>(owner.as_bytes())
                .bind::<Nullable<BigInt>, _>(Some(ms(ttl)))
                .get_result(&mut conn)
                .await
                .map_err(storage)?
        };
        if row.fence.is_none() {
            return Ok(false);
        }
        Ok(self.release(key, owner).await? == 1)
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        let mut conn = self.pool.get().await.map_err(storage)?;
        sql_query(&self.write)
            .bind::<Binary, _>(key.as_bytes())
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(storage)
    }
}

struct MysqlBaseline {
    pool: MysqlPool,
    acquire: String,
    acquire_result: String,
    release: String,
    write: String,
}

impl MysqlBaseline {
    async fn release(&self, key: &str, owner: &str) -> Result<usize, LockError> {
        let mut conn = self.pool.get().await.map_err(storage)?;
        sql_query(&self.release)
            .bind::<Binary, _>(key.as_bytes())
            .bind::<Binary, _>(owner.as_bytes())
            .execute(&mut conn)
            .await
            .map_err(storage)
    }
}

#[async_trait]
impl Baseline for MysqlBaseline {
    fn describe(&self) -> String {
        "the store's INSERT … ON DUPLICATE KEY UPDATE + SELECT LAST_INSERT_ID() and UPDATE statements, on the store's pool".to_owned()
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let row: AcquireRow = {
            let mut conn = self.pool.get().await.map_err(storage)?;
            sql_query(&self.acquire)
                .bind::<Binary, _>(key.as_bytes())
                .bind::<Binary, _>(owner.as_bytes())
                .bind::<Nullable<BigInt>, _>(Some(ms(ttl)))
                .bind::<Binary, _>(owner.as_bytes())
                .bind::<Nullable<BigInt>, _>(Some(ms(ttl)))
                .execute(&mut conn)
                .await
                .map_err(storage)?;
            sql_query(&self.acquire_result)
                .bind::<Binary, _>(key.as_bytes())
                .get_result(&mut conn)
                .await
                .map_err(storage)?
        };
        if row.fence.is_none_or(|f| f <= 0) {
            return Ok(false);
        }
        Ok(self.release(key, owner).await? == 1)
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        let mut conn = self.pool.get().await.map_err(storage)?;
        sql_query(&self.write)
            .bind::<Binary, _>(key.as_bytes())
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(storage)
    }
}

struct SqliteBaseline {
    pool: SqlitePool,
    acquire: String,
    release: String,
    write: String,
}

impl SqliteBaseline {
    async fn release(&self, key: &str, owner: &str) -> Result<usize, LockError> {
        let mut conn = self.pool.get().await.map_err(storage)?;
        sql_query(self.release.clone())
            .bind::<Binary, _>(key.as_bytes().to_vec())
            .bind::<Binary, _>(owner.as_bytes().to_vec())
            .execute(&mut conn)
            .await
            .map_err(storage)
    }
}

#[async_trait]
impl Baseline for SqliteBaseline {
    fn describe(&self) -> String {
        "the store's INSERT … ON CONFLICT … RETURNING and UPDATE statements, on the store's pool"
            .to_owned()
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let rows: Vec<FenceRow> = {
            let mut conn = self.pool.get().await.map_err(storage)?;
            sql_query(self.acquire.clone())
                .bind::<Binary, _>(key.as_bytes().to_vec())
                .bind::<Binary, _>(owner.as_bytes().to_vec())
                .bind::<Nullable<BigInt>, _>(Some(ms(ttl)))
                .load(&mut conn)
                .await
                .map_err(storage)?
        };
        if rows.is_empty() {
            return Ok(false);
        }
        Ok(self.release(key, owner).await? == 1)
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        let mut conn = self.pool.get().await.map_err(storage)?;
        sql_query(self.write.clone())
            .bind::<Binary, _>(key.as_bytes().to_vec())
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(storage)
    }
}

/// A pool built as the store builds its own for a URL (fast recycling, same size and
/// timeouts), so that the store can be handed the pool and the baseline can share it.
fn pool_of<C>(manager: AsyncDieselConnectionManager<C>, size: usize) -> Result<Pool<C>, Prep>
where
    C: lock_store_database::diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager<
            Type = C,
            Error = lock_store_database::diesel_async::pooled_connection::PoolError,
        >,
{
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(OP_TIMEOUT))
        .create_timeout(Some(OP_TIMEOUT))
        .recycle_timeout(Some(OP_TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Prep::Fail(format!("pool: {e}")))
}

fn fast<C: AsyncConnection + 'static>() -> ManagerConfig<C> {
    let mut config = ManagerConfig::<C>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config
}

async fn connect_store(options: DatabaseStoreOptions, what: &str) -> Result<DatabaseStore, Prep> {
    DatabaseStore::connect(options.table_name(TABLE))
        .await
        .map_err(|e| match e {
            LockError::Storage(_) => Prep::Skip(format!("{what} unreachable: {e}")),
            other => Prep::Fail(other.to_string()),
        })
}

async fn prepare_postgres() -> Result<Prepared, Prep> {
    let url = postgres_url();
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url.clone(), fast());
    let pool = pool_of(manager, POOL_SIZE)?;
    let store = connect_store(
        DatabaseStoreOptions::from_postgres_pool(pool.clone()),
        "postgres",
    )
    .await?;
    let version = {
        let mut conn = pool
            .get()
            .await
            .map_err(|e| Prep::Fail(format!("postgres: {e}")))?;
        sql_query("SELECT version() AS v")
            .get_result::<VersionRow>(&mut conn)
            .await
            .map(|r| r.v)
            .map_err(|e| Prep::Fail(format!("SELECT version(): {e}")))?
    };
    let quoted = format!("\"{TABLE}\"");
    let sql = store_sql(Backend::Postgres)?;
    Ok(Prepared {
        baseline: Arc::new(PgBaseline {
            pool,
            acquire: sql.acquire,
            release: sql.release,
            write: render(PG_WRITE, &quoted),
            channel: format!("{TABLE}_lock_released"),
        }),
        store: Arc::new(store),
        version,
    })
}

async fn prepare_mysql() -> Result<Prepared, Prep> {
    let url = mysql_url();
    let manager =
        AsyncDieselConnectionManager::<AsyncMysqlConnection>::new_with_config(url.clone(), fast());
    let pool = pool_of(manager, POOL_SIZE)?;
    let store = connect_store(DatabaseStoreOptions::from_mysql_pool(pool.clone()), "mysql").await?;
    let version = {
        let mut conn = pool
            .get()
            .await
            .map_err(|e| Prep::Fail(format!("mysql: {e}")))?;
        sql_query("SELECT CAST(version() AS CHAR) AS v")
            .get_result::<VersionRow>(&mut conn)
            .await
            .map(|r| r.v)
            .map_err(|e| Prep::Fail(format!("SELECT version(): {e}")))?
    };
    let quoted = format!("`{TABLE}`");
    let sql = store_sql(Backend::Mysql)?;
    Ok(Prepared {
        baseline: Arc::new(MysqlBaseline {
            pool,
            acquire: sql.acquire,
            acquire_result: sql
                .acquire_followup
                .ok_or_else(|| Prep::Fail("MySQL acquire has no result read".to_owned()))?,
            release: sql.release,
            write: render(MY_WRITE, &quoted),
        }),
        store: Arc::new(store),
        version: format!("MySQL/MariaDB {version}"),
    })
}

async fn prepare_sqlite() -> Result<Prepared, Prep> {
    let path = std::env::temp_dir().join("lock-bench.sqlite");
    let url = path.display().to_string();
    // As the store's own SQLite pool: busy timeout, then WAL, on every connection.
    let mut config = fast::<AsyncSqliteConnection>();
    config.custom_setup = Box::new(|url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = AsyncSqliteConnection::establish(&url).await?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;",
                OP_TIMEOUT.as_millis()
            ))
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncSqliteConnection>::new_with_config(url, config);
    let pool = pool_of(manager, 4)?;
    let store = connect_store(
        DatabaseStoreOptions::from_sqlite_pool(pool.clone()),
        "sqlite",
    )
    .await?;
    let version = {
        let mut conn = pool
            .get()
            .await
            .map_err(|e| Prep::Fail(format!("sqlite: {e}")))?;
        sql_query("SELECT sqlite_version() AS v")
            .get_result::<VersionRow>(&mut conn)
            .await
            .map(|r| r.v)
            .map_err(|e| Prep::Fail(format!("SELECT sqlite_version(): {e}")))?
    };
    let quoted = format!("\"{TABLE}\"");
    let sql = store_sql(Backend::Sqlite)?;
    Ok(Prepared {
        baseline: Arc::new(SqliteBaseline {
            pool,
            acquire: sql.acquire,
            release: sql.release,
            write: render(LITE_WRITE, &quoted),
        }),
        store: Arc::new(store),
        version: format!("SQLite {version} (file {})", path.display()),
    })
}

// ---- targets (issue 6) ------------------------------------------------------------------------

struct Target {
    what: String,
    measured: String,
    met: bool,
}

impl Target {
    fn text(&self) -> String {
        format!(
            "target {:<46} measured {:<12} {}",
            self.what,
            self.measured,
            if self.met { "met" } else { "NOT MET" }
        )
    }

    fn json(&self, store: &str) -> String {
        format!(
            "{{\"kind\":\"target\",\"store\":{},\"target\":{},\"measured\":{},\"met\":{}}}",
            json_string(store),
            json_string(&self.what),
            json_string(&self.measured),
            self.met
        )
    }
}

fn targets(store: &str, r: &BenchReport) -> Vec<Target> {
    use lock_testkit::bench::fmt_duration;
    let mut t = Vec::new();
    let cycle_ratio = match store {
        "redis" => Some(1.15),
        "postgres" => Some(1.2),
        _ => None,
    };
    if let Some(max) = cycle_ratio {
        t.push(Target {
            what: format!("uncontended cycle <= {max}x baseline"),
            measured: format!("{:.2}x", r.uncontended.ratio),
            met: r.uncontended.ratio <= max,
        });
    }
    if store == "memory" {
        t.push(Target {
            what: "uncontended cycle <= 1 µs".to_owned(),
            measured: fmt_duration(r.uncontended.store.median),
            met: r.uncontended.store.median <= Duration::from_micros(1),
        });
    }
    for c in &r.contended {
        match store {
            "redis" | "postgres" => t.push(Target {
                what: format!("handoff ({} tasks) <= 3x round trip", c.tasks),
                measured: format!("{:.2}x", c.ratio),
                met: c.ratio <= 3.0,
            }),
            "memory" => t.push(Target {
                what: format!("handoff ({} tasks) <= 10 µs", c.tasks),
                measured: fmt_duration(c.handoff.median),
                met: c.handoff.median <= Duration::from_micros(10),
            }),
            _ => {}
        }
        t.push(Target {
            what: format!("overlaps ({} tasks) = 0", c.tasks),
            measured: c.overlaps.to_string(),
            met: c.overlaps == 0,
        });
    }
    t.push(Target {
        what: "many keys >= 0.8x baseline cycles/s".to_owned(),
        measured: format!("{:.2}x", r.many_keys.ratio),
        met: r.many_keys.ratio >= 0.8,
    });
    t
}
