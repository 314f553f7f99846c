//! One contender process for the fairness measurement (`examples/tests/fairness.rs`):
//! `fairness_worker STORE KEY TASKS MILLIS` runs TASKS tasks that take turns on KEY
//! with default retry options for MILLIS ms, then prints one JSON line:
//! `{"pid":…,"sections":[n_task0, n_task1, …],"overlaps":0}`.
//!
//! STORE: `memory`, `redis`, `postgres`, `mysql`, `sqlite:PATH`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::{LockError, LockFactory, LockStore};
use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
use lock_store_memory::MemoryStore;
use lock_store_redis::{RedisStore, RedisStoreOptions};
use lock_testkit::services;

async fn store(kind: &str) -> Result<Arc<dyn LockStore>, LockError> {
    Ok(match kind {
        "memory" => Arc::new(MemoryStore::new()),
        "redis" => {
            Arc::new(RedisStore::connect(RedisStoreOptions::from_url(services::redis_url())).await?)
        }
        "postgres" => Arc::new(
            DatabaseStore::connect(DatabaseStoreOptions::new(services::postgres_url())).await?,
        ),
        "mysql" => Arc::new(
            DatabaseStore::connect(DatabaseStoreOptions::new(services::mysql_url())).await?,
        ),
        other => match other.strip_prefix("sqlite:") {
            Some(path) => Arc::new(
                DatabaseStore::connect(DatabaseStoreOptions::new(format!("sqlite://{path}")))
                    .await?,
            ),
            None => return Err(LockError::invalid(format!("unknown store {other:?}"))),
        },
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match contend().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fairness_worker: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn contend() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, key, tasks, millis, start_at] = args.as_slice() else {
        return Err("usage: fairness_worker STORE KEY TASKS MILLIS START_AT_UNIX_MS".into());
    };
    let tasks: usize = tasks.parse()?;
    let run_for = Duration::from_millis(millis.parse()?);
    let locks = LockFactory::from_shared(store(kind).await?, Default::default());
    // Every process starts contending at the same wall-clock instant (after connecting),
    // so that one that took longer to start or connect is not counted as starved.
    let start_at = std::time::UNIX_EPOCH + Duration::from_millis(start_at.parse()?);
    if let Ok(wait) = start_at.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..tasks).map(|_| AtomicUsize::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..tasks {
        let lock = locks.create_lock(key.clone())?;
        let (counts, stop, inside, overlaps) = (
            counts.clone(),
            stop.clone(),
            inside.clone(),
            overlaps.clone(),
        );
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                lock.run(|| async {
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    counts[i].fetch_add(1, Ordering::SeqCst);
                })
                .await?;
            }
            Ok::<_, LockError>(())
        }));
    }
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.await??;
    }
    let sections: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    println!(
        "{}",
        serde_json::json!({ "pid": std::process::id(), "sections": sections, "overlaps": overlaps.load(Ordering::SeqCst) })
    );
    Ok(())
}
