//! The seed's first example, kept in its shape: acquire immediately, and release in a
//! `finally`-like step whatever processing returned.
//!
//!     cargo run -p examples --example order_controller

use std::time::Duration;

use lock_core::{LockError, LockManager};

#[derive(Debug)]
struct ProcessError(&'static str);

/// `OrderController.process`.
async fn process(locks: &LockManager, order_id: u32) -> Result<String, LockError> {
    // Try to acquire the lock immediately (without retrying).
    let lock = locks.create_lock(format!("order.processing.{order_id}"))?;
    if !lock.acquire_immediately().await? {
        return Ok("Order is already being processed".into());
    }
    // The lock has been acquired: process the order.
    let processed = process_order(order_id).await;
    // Always release, whether processing succeeded or not (the seed's `finally`).
    lock.release().await?;
    Ok(match processed {
        Ok(()) => "Order processed successfully".into(),
        Err(ProcessError(why)) => format!("Order failed: {why}"),
    })
}

async fn process_order(order_id: u32) -> Result<(), ProcessError> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    if order_id.is_multiple_of(2) {
        Err(ProcessError("payment declined"))
    } else {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    examples::init_tracing();
    let locks = examples::locks()?;
    let (a, b) = tokio::join!(process(&locks, 7), process(&locks, 7));
    println!("first request:  {}", a?);
    println!("second request: {}", b?);
    // Order 8 fails to process, and its lock is released all the same.
    println!("order 8: {}", process(&locks, 8).await?);
    println!("order 8 again: {}", process(&locks, 8).await?);
    Ok(())
}
