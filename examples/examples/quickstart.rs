//! The main example: an order controller that processes each order once, however many
//! requests arrive for it at the same time, on the store named by `LOCK_STORE`
//! (default `memory`; `database` is a SQLite file shared by the processes of this
//! machine; `redis` needs a server).
//!
//!     cargo run -p examples --example quickstart
//!     LOCK_STORE=database cargo run -p examples --features database --example quickstart
//!     LOCK_STORE=redis cargo run -p examples --features redis --example quickstart
//!
//! `RUST_LOG=debug` shows every acquire and release.

use std::time::Duration;

use lock_core::{LockError, LockManager};

/// One try, no waiting; the lock is released on every path (return, error, panic,
/// or the request future being dropped).
async fn process(locks: &LockManager, order_id: u32) -> Result<&'static str, LockError> {
    let lock = locks.create_lock(format!("order.processing.{order_id}"))?;
    let processed = lock.run_immediately(|| process_order(order_id)).await?;
    Ok(match processed {
        None => "Order is already being processed",
        Some(()) => "Order processed successfully",
    })
}

async fn process_order(_order_id: u32) {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    examples::init_tracing();
    let locks = examples::locks()?;
    println!("lock store: {}", locks.default_store_name());

    // Three requests for order 1 and one for order 2 arrive together.
    let requests = [1, 1, 1, 2].map(|order| {
        let locks = locks.clone();
        tokio::spawn(async move { (order, process(&locks, order).await) })
    });
    let mut processed = 0;
    for request in requests {
        let (order, answer) = request.await.expect("request task");
        let answer = answer?;
        processed += usize::from(answer.ends_with("successfully"));
        println!("order {order}: {answer}");
    }
    assert_eq!(processed, 2, "each order is processed exactly once");

    // `acquire` waits (retrying, woken early on release) and `run` releases for you.
    let lock = locks.create_lock("report.daily")?;
    let total = lock.run(|| async { 40 + 2 }).await?;
    println!(
        "run returned {total:?}; still locked: {}",
        lock.is_locked().await?
    );

    // A guard releases on drop; `extend` pushes the expiry; the fencing token orders
    // the holders of a key.
    let lock = locks.create_lock_with_ttl("import.catalog", Some(Duration::from_secs(10)))?;
    if let Some(guard) = lock.acquire_guard().await? {
        guard.extend(Some(Duration::from_secs(60))).await?;
        println!(
            "holding {} for {:?} more, fencing token {:?}",
            guard.key(),
            guard.remaining_time().unwrap_or_default(),
            guard.fencing_token()
        );
        guard.release().await?;
    }
    Ok(())
}
