//! Tests use the memory store through `LOCK_STORE=memory` (the seed's `.env.test`),
//! and the variable is validated against the configured stores (the seed's
//! `Env.schema.enum(['redis', 'database', 'memory'])`).
//!
//!     LOCK_STORE=memory cargo run -p examples --example testing_env

use lock_core::LockManager;

fn main() -> Result<(), examples::Report> {
    let config = || examples::lock_config().default_store_from_env("LOCK_STORE");
    match LockManager::new(config()) {
        Ok(locks) => println!(
            "LOCK_STORE selects the {} store",
            locks.default_store_name()
        ),
        Err(e) => println!("rejected: {e}"),
    }

    // What a typo looks like.
    // SAFETY: single-threaded here; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("LOCK_STORE", "memroy") };
    match LockManager::new(config()) {
        Err(e) => println!("LOCK_STORE=memroy is rejected: {e} ({})", e.code()),
        Ok(_) => unreachable!("memroy is not a configured store"),
    }
    Ok(())
}
