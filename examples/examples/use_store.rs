//! Using another configured store than the default one (the seed's `locks.use('redis')`).
//!
//!     cargo run -p examples --features redis,database --example use_store
//!
//! Without a Redis server the example says so and uses the database (SQLite) store.

use lock_core::LockError;

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    examples::init_tracing();
    let locks = examples::locks()?;

    // The default store: omit `use_store`.
    let lock = locks.create_lock("order.processing.1")?;
    println!(
        "default store {}: acquired {}",
        locks.default_store_name(),
        lock.acquire_immediately().await?
    );
    lock.release().await?;

    // Another store, by name.
    for name in ["redis", "database"] {
        let lock = locks.use_store(name)?.create_lock("order.processing.1")?;
        match lock.acquire_immediately().await {
            Ok(acquired) => {
                println!("store {name}: acquired {acquired}");
                lock.release().await?;
                break;
            }
            Err(e @ LockError::Storage(_)) => println!("store {name} is unavailable: {e}"),
            Err(e) => return Err(e.into()),
        }
    }

    // A name that is not configured is a clear error listing the configured ones.
    match locks.use_store("dynamodb") {
        Err(e) => println!("{} ({})", e, e.code()),
        Ok(_) => unreachable!("not configured"),
    }
    Ok(())
}
