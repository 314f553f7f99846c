//! One process of the file store's cross-process counter test (`tests/fs_store.rs`).
//!
//! ```text
//! fs_counter_worker --locks LOCK_DIR --counter COUNTER_DIR --key KEY --tasks N --increments N
//! ```
//!
//! Each of `tasks` tasks increments `COUNTER_DIR/counter` `increments` times, each time
//! under the lock `key` of a [`FsStore`] in `LOCK_DIR`: a deliberately unsafe
//! read, pause, write, which loses an increment if two holders overlap. An `O_EXCL`
//! marker (`COUNTER_DIR/marker`) detects overlaps directly. Exits 0 after printing the
//! number of increments done, or prints the error and exits 1.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use examples::fs_store::FsStore;
use lock_core::{FactoryOptions, LockFactory, RetryConfig};

fn arg(name: &str) -> Result<String, String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1).cloned())
        .ok_or_else(|| format!("missing --{name}"))
}

fn num(name: &str) -> Result<u32, String> {
    arg(name)?.parse().map_err(|e| format!("--{name}: {e}"))
}

/// One unsafe increment, with an overlap detector around it.
async fn increment(dir: &Path) -> Result<(), String> {
    let marker = dir.join("marker");
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => "overlap: another holder is inside".to_owned(),
            _ => format!("marker: {e}"),
        })?;
    let counter = dir.join("counter");
    let seen: u64 = match std::fs::read_to_string(&counter) {
        Ok(text) => text.trim().parse().map_err(|e| format!("counter: {e}"))?,
        Err(e) if e.kind() == ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("counter: {e}")),
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    std::fs::write(&counter, (seen + 1).to_string()).map_err(|e| format!("counter: {e}"))?;
    std::fs::remove_file(&marker).map_err(|e| format!("marker: {e}"))
}

async fn run() -> Result<u32, String> {
    let locks_dir = PathBuf::from(arg("locks")?);
    let counter_dir = PathBuf::from(arg("counter")?);
    let key = arg("key")?;
    let (tasks, increments) = (num("tasks")?, num("increments")?);
    let store = FsStore::open(locks_dir).map_err(|e| e.to_string())?;
    let locks = LockFactory::with_options(
        store,
        FactoryOptions::default()
            .retry(
                RetryConfig::default()
                    .delay(Duration::from_millis(5))
                    .timeout(Duration::from_secs(60)),
            )
            .default_ttl(Some(Duration::from_secs(10))),
    );
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let lock = locks.create_lock(key.clone()).map_err(|e| e.to_string())?;
        let dir = counter_dir.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..increments {
                lock.run(|| increment(&dir))
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the lock was not acquired within 60 s")??;
            }
            Ok::<_, String>(())
        }));
    }
    for h in handles {
        h.await.map_err(|e| e.to_string())??;
    }
    Ok(tasks * increments)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fs_counter_worker: {e}");
            ExitCode::FAILURE
        }
    }
}
