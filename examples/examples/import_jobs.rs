//! A job runner that lets at most 3 imports run at once, across every instance of the
//! application: a semaphore of 3 permits on the shared store.
//!
//!     cargo run -p examples --example import_jobs
//!     LOCK_STORE=redis cargo run -p examples --features redis --example import_jobs
//!
//! On the default memory store the limit holds within this process; run several
//! instances at once with `LOCK_STORE=redis` (or `LOCK_STORE=database`, a SQLite file
//! shared by the processes of this machine) and the 3 are shared by all of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How many imports may run at once, everywhere.
const MAX_IMPORTS: u32 = 3;

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    examples::init_tracing();
    let locks = examples::locks()?;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut jobs = Vec::new();
    for file in 1..=8 {
        // One semaphore per job: each is one would-be holder of one permit.
        let imports = locks.create_semaphore("imports.catalog", MAX_IMPORTS)?;
        let (running, most) = (running.clone(), most.clone());
        jobs.push(tokio::spawn(async move {
            // Waits for a permit (first come, first served within this process; across
            // processes a release wakes the waiters on Redis and PostgreSQL, and they poll
            // every retry delay on MySQL and SQLite), runs, gives it back
            // — also on panic or cancellation.
            imports
                .run(|| async {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    println!("import of file {file} started ({now} running)");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
        }));
    }
    for job in jobs {
        let ran = job.await.expect("the job task panicked")?;
        assert!(
            ran.is_some(),
            "the default retry waits until a permit is free"
        );
    }
    let probe = locks.create_semaphore("imports.catalog", MAX_IMPORTS)?;
    println!(
        "all imports done; at most {} ran at once; {} of {MAX_IMPORTS} permits free",
        most.load(Ordering::SeqCst),
        probe.available().await?
    );
    assert!(most.load(Ordering::SeqCst) <= MAX_IMPORTS as usize);

    // Without waiting: run only if a permit is free now.
    let urgent = locks.create_semaphore("imports.catalog", MAX_IMPORTS)?;
    match urgent.run_immediately(|| async { "urgent import" }).await? {
        Some(done) => println!("{done}: ran at once"),
        None => println!("all permits taken: try again later"),
    }
    Ok(())
}
