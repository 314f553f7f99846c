//! Managing a lock across processes (the seed's "main server" and "background job"):
//! this process acquires the lock and serializes it; a second process — this same
//! program started again with `worker` — restores it, does the work and releases it.
//!
//! The store must be shared by both processes: by default the database store on a
//! SQLite file in the temp folder; `LOCK_STORE=redis` or
//! `LOCK_STORE=database LOCK_DATABASE_URL=postgres://…` for servers.
//!
//!     cargo run -p examples --features database --example cross_process
//!     LOCK_STORE=redis cargo run -p examples --features database,redis --example cross_process

use std::process::Stdio;
use std::time::Duration;

use lock_core::{LockError, LockManager, SerializedLock};
use tokio::io::AsyncWriteExt;

fn locks() -> Result<LockManager, LockError> {
    examples::locks_with(
        examples::lock_config().default_store_from_env_or("LOCK_STORE", "database"),
    )
}

/// The main server: acquire, then hand the lock to a background job.
async fn server(order_id: u32) -> Result<(), Box<dyn std::error::Error>> {
    let locks = locks()?;
    let lock = locks.create_lock(format!("order.processing.{order_id}"))?;
    if !lock.acquire_immediately().await? {
        println!(
            "[server {}] order {order_id} is already being processed",
            std::process::id()
        );
        return Ok(());
    }
    println!(
        "[server {}] acquired order.processing.{order_id} on the {} store",
        std::process::id(),
        locks.default_store_name()
    );

    // Dispatch the job with the serialized lock (a capability: send it only through
    // channels you trust). Here the "queue" is the worker's standard input.
    let job = serde_json::json!({ "order_id": order_id, "lock": lock.serialize() });
    let mut worker = tokio::process::Command::new(std::env::current_exe()?)
        .arg("worker")
        .stdin(Stdio::piped())
        .spawn()?;
    let mut stdin = worker.stdin.take().ok_or("no stdin")?;
    stdin.write_all(job.to_string().as_bytes()).await?;
    drop(stdin);

    // While the job runs, nobody else gets the order.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rival = locks.create_lock(format!("order.processing.{order_id}"))?;
    println!(
        "[server] a second request acquires it: {}",
        rival.acquire_immediately().await?
    );

    let status = worker.wait().await?;
    if !status.success() {
        return Err(format!("worker failed: {status}").into());
    }
    println!(
        "[server] after the job, the order is locked: {}",
        lock.is_locked().await?
    );
    if lock.is_locked().await? {
        return Err("the worker did not release the lock".into());
    }
    Ok(())
}

/// The background job: restore the lock, process the order, release.
async fn worker() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = String::new();
    std::io::stdin().read_line(&mut input)?;
    let job: serde_json::Value = serde_json::from_str(&input)?;
    let serialized: SerializedLock = serde_json::from_value(job["lock"].clone())?;
    let lock = locks()?.restore_lock(serialized)?;
    println!(
        "[worker {}] restored {}; processing order {}",
        std::process::id(),
        lock.key(),
        job["order_id"]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.release().await?;
    println!("[worker] released");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    examples::init_tracing();
    if std::env::args().nth(1).as_deref() == Some("worker") {
        Ok(worker().await?)
    } else {
        Ok(server(std::process::id() % 1000).await?)
    }
}
