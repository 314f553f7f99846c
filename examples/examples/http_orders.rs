//! Two instances of a web app share their order locks through Redis: whichever instance
//! a request lands on, an order is processed once at a time.
//!
//!     cargo run -p examples --features http --example http_orders
//!
//! `LOCK_STORE=database` shares them through the SQLite file instead (no server).

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use examples::http::{AppState, post_to, serve};

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    examples::init_tracing();
    // Each instance has its own lock service and its own connection, as two
    // deployments of the app would.
    let instance = |name| -> Result<AppState, lock_core::LockError> {
        Ok(AppState {
            locks: examples::locks_with(
                examples::lock_config().default_store_from_env_or("LOCK_STORE", "redis"),
            )?,
            instance: name,
            processed: Arc::new(AtomicUsize::new(0)),
        })
    };
    let a = serve(instance("instance-a")?).await?;
    let b = serve(instance("instance-b")?).await?;
    println!("instance-a on {a}, instance-b on {b}");

    // Four requests for order 42 hit both instances at once.
    let requests = [a, b, a, b].map(|addr| tokio::spawn(post_to(addr, "/orders/42/process")));
    for r in requests {
        let (status, body) = r.await??;
        println!("{status} {body}");
    }
    // Once done, the order can be processed again.
    let (status, body) = post_to(b, "/orders/42/process").await?;
    println!("later: {status} {body}");
    Ok(())
}
