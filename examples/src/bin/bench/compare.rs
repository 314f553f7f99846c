//! `--compare`: the project beside peer libraries and raw clients, case by case, in
//! interleaved rounds (see `lock_testkit::bench::compare_cycles`), and the servers' own
//! limits where their tools are installed (`redis-benchmark`, `pgbench`).
//!
//! Cases, for each of `memory`, `redis`, `postgres`:
//! * uncontended cycle: one task, one key, `acquire_immediately` + `release` (or the
//!   contender's equivalent), back to back — compared by median cycle time;
//! * many keys: 64 tasks over 10 000 keys — compared by cycles/s;
//! * handoff (the project only): N tasks on one key, from a holder calling `release` to
//!   the next holder's `acquire` returning, over the raw round trip measured just before
//!   (Redis: the raw fred client's delete script on an absent key; PostgreSQL: one
//!   prepared committed upsert on the raw tokio-postgres connection; memory: the sharded
//!   map's lock and unlock).
//!
//! Every case also runs the store alone (`save` + `delete` through the trait, no
//! `lock-core`), so what `lock-core` adds is visible in the same round, and reports the
//! process's CPU time per cycle. `LOCK_BENCH_REDIS_IN_FLIGHT=0,4` adds the project with
//! those in-flight limits (`RedisStoreOptions::with_max_in_flight`; 0 = never batch).
//! `LOCK_BENCH_REDIS_POOLS=2,4` adds the project on fred
//! pools of those sizes (to check the default of one client).

use std::sync::Arc;

use lock_core::{LockError, LockStore};
use lock_store_memory::MemoryStore;
use lock_testkit::bench::{
    Baseline, BaselineCycles, BenchConfig, CaseRounds, Contender, LockCycles, MutexBaseline,
    StoreOnly, compare_cycles, fmt_duration, run_contended,
};

use crate::lines::Out;
use crate::peers::ShardedMap;
use crate::redis::{FredRaw, RawCycle, host_port};

/// Name of the project's contender in every case.
const PROJECT: &str = "project (lock-core + store)";

/// One store's contenders (each builds its own keys) and its handoff round trip.
struct Field {
    store: Arc<dyn LockStore>,
    /// More configurations of the project (run right after it).
    extra: Vec<(String, Arc<dyn LockStore>)>,
    /// `(name, baseline)`: peers and raw clients, run through [`BaselineCycles`].
    others: Vec<(String, Arc<dyn Baseline>)>,
    /// The raw round trip of the handoff ratio.
    round_trip: Arc<dyn Baseline>,
    /// What the round trip is.
    round_trip_is: &'static str,
}

fn keys(prefix: &str, tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}cmp:{tag}:{i}")).collect()
}

async fn field(name: &str) -> Result<Field, String> {
    match name {
        "memory" => {
            let map: Arc<dyn Baseline> = Arc::new(ShardedMap::new());
            Ok(Field {
                store: Arc::new(MemoryStore::new()),
                extra: Vec::new(),
                others: vec![
                    (
                        "sharded map (32 x Mutex<HashMap>) + token".into(),
                        map.clone(),
                    ),
                    (
                        "bare tokio Mutex try_lock (4096 stripes)".into(),
                        Arc::new(MutexBaseline::new()),
                    ),
                ],
                round_trip: map,
                round_trip_is: "sharded map lock + unlock",
            })
        }
        "redis" => redis_field().await,
        "postgres" => postgres_field().await,
        other => Err(format!("no comparison for {other}")),
    }
}

async fn redis_field() -> Result<Field, String> {
    let url = lock_testkit::services::redis_url();
    let store = lock_store_redis::RedisStore::connect(
        lock_store_redis::RedisStoreOptions::from_url(url.clone()),
    )
    .await
    .map_err(|e| format!("redis store: {e}"))?;
    let fred: Arc<dyn Baseline> = Arc::new(RawCycle(
        FredRaw::connect(&url)
            .await
            .map_err(|e| format!("raw fred: {e}"))?,
    ));
    // Without the bench feature, only fred is compared.
    #[cfg_attr(not(feature = "bench"), allow(unused_mut))]
    let mut others: Vec<(String, Arc<dyn Baseline>)> = vec![(
        "raw fred own client: SET NX PX + EVALSHA".into(),
        fred.clone(),
    )];
    #[cfg(feature = "bench")]
    {
        let rslock = crate::peers::Rslock::connect(&url)
            .await
            .map_err(|e| format!("rslock: {e}"))?;
        let raw = crate::peers::RedisRsRaw::connect(&url)
            .await
            .map_err(|e| format!("raw redis-rs: {e}"))?;
        let scripts = crate::peers::RedisRsScripts::connect(&url, &store)
            .await
            .map_err(|e| format!("redis-rs with the store's scripts: {e}"))?;
        others.splice(
            0..0,
            [
                (
                    "rslock 0.10 (redis-rs)".to_owned(),
                    Arc::new(rslock) as Arc<dyn Baseline>,
                ),
                (
                    "raw redis-rs multiplexed: SET NX PX + EVALSHA".to_owned(),
                    Arc::new(RawCycle(raw)),
                ),
                (
                    "redis-rs, the store's scripts (fenced)".to_owned(),
                    Arc::new(scripts),
                ),
            ],
        );
    }
    let mut extra = Vec::new();
    // Experiments: the project on fred pools of these sizes.
    if let Ok(sizes) = std::env::var("LOCK_BENCH_REDIS_POOLS") {
        for n in sizes
            .split(',')
            .filter_map(|n| n.trim().parse::<usize>().ok())
        {
            let config = lock_store_redis::fred::prelude::Config::from_url(&url)
                .map_err(|e| format!("redis url: {e}"))?;
            let pool = lock_store_redis::fred::prelude::Pool::new(config, None, None, None, n)
                .map_err(|e| format!("fred pool: {e}"))?;
            let pooled = lock_store_redis::RedisStore::connect(
                lock_store_redis::RedisStoreOptions::from_pool(pool),
            )
            .await
            .map_err(|e| format!("redis store on a pool: {e}"))?;
            extra.push((
                format!("project on a fred pool of {n}"),
                Arc::new(pooled) as Arc<dyn LockStore>,
            ));
        }
    }
    // Experiments: the project with these in-flight limits (0 = never batch).
    if let Ok(limits) = std::env::var("LOCK_BENCH_REDIS_IN_FLIGHT") {
        for n in limits
            .split(',')
            .filter_map(|n| n.trim().parse::<usize>().ok())
        {
            let limited = lock_store_redis::RedisStore::connect(
                lock_store_redis::RedisStoreOptions::from_url(url.clone()).with_max_in_flight(n),
            )
            .await
            .map_err(|e| format!("redis store: {e}"))?;
            extra.push((
                format!("project, in-flight limit {n}"),
                Arc::new(limited) as Arc<dyn LockStore>,
            ));
        }
    }
    Ok(Field {
        store: Arc::new(store),
        extra,
        others,
        round_trip: fred,
        round_trip_is: "raw fred EVALSHA delete of an absent key",
    })
}

#[cfg(feature = "bench")]
async fn postgres_field() -> Result<Field, String> {
    use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
    let url = lock_testkit::services::postgres_url();
    let table = "lock_bench";
    // The store as a user gets it from a URL: its own pool, default size.
    let store = DatabaseStore::connect(DatabaseStoreOptions::new(url.clone()).table_name(table))
        .await
        .map_err(|e| format!("postgres store: {e}"))?;
    let raw: Arc<dyn Baseline> = Arc::new(
        crate::peers::PgRaw::connect(&url, table, &format!("{table}_lock_released"))
            .await
            .map_err(|e| format!("raw tokio-postgres: {e}"))?,
    );
    Ok(Field {
        store: Arc::new(store),
        extra: Vec::new(),
        others: vec![(
            "raw tokio-postgres, 1 connection, same statements prepared once".into(),
            raw.clone(),
        )],
        round_trip: raw,
        round_trip_is: "one prepared committed upsert on the raw connection",
    })
}

#[cfg(not(feature = "bench"))]
async fn postgres_field() -> Result<Field, String> {
    Err("the PostgreSQL comparison needs the bench feature (--features bench)".to_owned())
}

/// Compare `name` (memory, redis or postgres); `false` when something failed.
pub async fn compare_store(
    out: &Out,
    name: &str,
    config: &BenchConfig,
    only: Option<&str>,
) -> bool {
    let field = match field(name).await {
        Ok(f) => f,
        Err(reason) => {
            out.text(&format!("\n{name}: comparison skipped: {reason}"));
            return true;
        }
    };
    out.text(&format!("\n===== {name} ====="));
    if only.is_none() {
        limits(out, name).await;
    }
    let stats = if name == "redis" && only.is_some() {
        RedisStats::reset().await
    } else {
        None
    };
    let result = run_cases(out, name, field, config, only).await;
    if let Some(stats) = stats {
        stats.print(out).await;
    }
    match result {
        Ok(ok) => ok,
        Err(e) => {
            out.text(&format!("{name}: comparison failed: {e}"));
            false
        }
    }
}

async fn run_cases(
    out: &Out,
    name: &str,
    field: Field,
    config: &BenchConfig,
    only: Option<&str>,
) -> Result<bool, LockError> {
    let prefix = format!("{}{name}:", config.key_prefix);
    let ttl = config.ttl;
    let rounds = config.runs;
    for (case, tasks, n) in [
        ("uncontended cycle (1 key)", 1, 1),
        (
            "many keys (10 000 keys)",
            config.many_tasks,
            config.many_keys,
        ),
    ] {
        let tag = if tasks == 1 { "one" } else { "many" };
        let mut contenders: Vec<Arc<dyn Contender>> = vec![Arc::new(LockCycles::new(
            PROJECT,
            field.store.clone(),
            &keys(&prefix, &format!("{tag}:project"), n),
            ttl,
        )?)];
        for (i, (other, store)) in field.extra.iter().enumerate() {
            contenders.push(Arc::new(LockCycles::new(
                other.clone(),
                store.clone(),
                &keys(&prefix, &format!("{tag}:extra{i}"), n),
                ttl,
            )?));
        }
        // The store alone (no lock-core) first: what lock-core adds, in the same round.
        let store_alone: (String, Arc<dyn Baseline>) = (
            "store alone (save + delete, no lock-core)".to_owned(),
            Arc::new(StoreOnly(field.store.clone())),
        );
        for (i, (other, baseline)) in std::iter::once(&store_alone)
            .chain(&field.others)
            .enumerate()
        {
            contenders.push(Arc::new(BaselineCycles::new(
                other.clone(),
                baseline.clone(),
                &keys(&prefix, &format!("{tag}:other{i}"), n),
                ttl,
            )));
        }
        if let Some(only) = only {
            contenders.retain(|c| only.split('|').any(|o| c.name().contains(o)));
            if contenders.is_empty() {
                continue;
            }
        }
        let result: CaseRounds =
            compare_cycles(case, &contenders, tasks, config.phase, rounds).await?;
        // The project is contender 0 unless `--only` filtered it out.
        let subject = if only.is_none() { 0 } else { usize::MAX };
        out.text(&result.table(subject));
    }
    if only.is_some() {
        return Ok(true);
    }
    let mut handoff = config.clone();
    handoff.key_prefix = prefix;
    let contended = run_contended(field.store.clone(), field.round_trip.clone(), &handoff).await?;
    out.text(&format!(
        "handoff (project), {} round(s); × raw round trip = {}",
        rounds, field.round_trip_is
    ));
    let mut overlaps = 0;
    for c in &contended {
        overlaps += c.overlaps;
        out.text(&format!(
            "  {:>3} task(s): handoff {:>10}  RTT {:>10}  ratio {:.2}x ({:.2}–{:.2})  overlaps {}",
            c.tasks,
            fmt_duration(c.handoff.median),
            fmt_duration(c.round_trip.median),
            c.ratio,
            c.ratio_min,
            c.ratio_max,
            c.overlaps
        ));
    }
    Ok(overlaps == 0)
}

/// The Redis server's own time per command (`INFO commandstats`), over a profiling
/// run of the contenders `--only` kept.
struct RedisStats(lock_store_redis::fred::prelude::Client);

impl RedisStats {
    async fn command(&self, args: Vec<&str>) -> Option<String> {
        use lock_store_redis::fred::interfaces::ClientLike;
        use lock_store_redis::fred::types::{ClusterHash, CustomCommand};
        let (name, args) = args.split_first()?;
        self.0
            .custom(
                CustomCommand::new(name.to_string(), ClusterHash::FirstKey, false),
                args.to_vec(),
            )
            .await
            .ok()
    }

    async fn reset() -> Option<RedisStats> {
        use lock_store_redis::fred::interfaces::ClientLike;
        let config =
            lock_store_redis::fred::prelude::Config::from_url(&lock_testkit::services::redis_url())
                .ok()?;
        let client = lock_store_redis::fred::prelude::Client::new(config, None, None, None);
        client.init().await.ok()?;
        let stats = RedisStats(client);
        stats.command(vec!["CONFIG", "RESETSTAT"]).await?;
        Some(stats)
    }

    async fn print(&self, out: &Out) {
        if let Some(info) = self.command(vec!["INFO", "commandstats"]).await {
            for line in info.lines().filter(|l| {
                ["cmdstat_set:", "cmdstat_evalsha:", "cmdstat_eval:"]
                    .iter()
                    .any(|c| l.starts_with(c))
            }) {
                out.text(&format!("server: {line}"));
            }
        }
    }
}

/// What the server's own benchmark tool measures, when it is installed.
async fn limits(out: &Out, name: &str) {
    let runs: Vec<(String, Vec<String>)> = match name {
        "redis" => {
            let (host, port) = host_port(&lock_testkit::services::redis_url(), 6379);
            [("1", "20000"), ("64", "200000")]
                .iter()
                .map(|(c, n)| {
                    (
                        format!("redis-benchmark SET, {c} client(s)"),
                        [
                            "redis-benchmark",
                            "-h",
                            &host,
                            "-p",
                            &port.to_string(),
                            "-c",
                            c,
                            "-n",
                            n,
                            "-t",
                            "set",
                            "-q",
                        ]
                        .map(str::to_owned)
                        .to_vec(),
                    )
                })
                .collect()
        }
        "postgres" => match pgbench_script() {
            Some(script) => vec![(
                "pgbench, 1 client, prepared: INSERT … ON CONFLICT DO UPDATE + DELETE (2 commits)"
                    .to_owned(),
                [
                    "pgbench",
                    "-n",
                    "-M",
                    "prepared",
                    "-c",
                    "1",
                    "-T",
                    "3",
                    "-f",
                    &script,
                    &lock_testkit::services::postgres_url(),
                ]
                .map(str::to_owned)
                .to_vec(),
            )],
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    if name == "postgres" {
        // pgbench's table (the script's statements need it).
        let _ = tokio::process::Command::new("psql")
            .args([
                &lock_testkit::services::postgres_url(),
                "-qc",
                "CREATE TABLE IF NOT EXISTS lock_bench_pgbench (lock_key int PRIMARY KEY, owner text, expires_at bigint)",
            ])
            .output()
            .await;
    }
    for (what, argv) in runs {
        let output = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .await;
        match output {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                // redis-benchmark rewrites its progress line with carriage returns.
                let keep: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.rsplit('\r').next())
                    .filter(|l| {
                        l.contains("requests per second")
                            || l.contains("latency average")
                            || l.starts_with("tps")
                    })
                    .map(str::trim)
                    .collect();
                out.text(&format!("server limit: {what}: {}", keep.join("; ")));
            }
            Ok(o) => out.text(&format!(
                "server limit: {what}: failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => out.text(&format!("server limit: {what}: not run ({e})")),
        }
    }
}

fn pgbench_script() -> Option<String> {
    let path = std::env::temp_dir().join("lock-bench-pgbench.sql");
    std::fs::write(
        &path,
        "\\set k random(1, 100000)\n\
         INSERT INTO lock_bench_pgbench (lock_key, owner, expires_at) VALUES (:k, 'owner', 0) \
         ON CONFLICT (lock_key) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at;\n\
         DELETE FROM lock_bench_pgbench WHERE lock_key = :k;\n",
    )
    .ok()?;
    Some(path.display().to_string())
}
