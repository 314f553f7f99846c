//! The worked example of "Your own store": a file-system store written only against
//! lock-core's public API (`examples/src/fs_store.rs`: one lock file per key in a
//! directory, `flock`-guarded, shared by every process of the machine), used through a
//! `LockManager`, and validated by the conformance kit.
//!
//!     cargo run -p examples --features testkit --example fs_store
//!
//! Its tests (`examples/tests/fs_store.rs`) run the kit with `store_tests!`, the model
//! checker with `model_tests!`, and a cross-process counter.

use std::time::Duration;

use examples::fs_store::{FsStore, fs_store};
use lock_core::{LockConfig, LockManager, LockStore};

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    // The conformance cases below lose locks and break stores on purpose: their
    // warnings are shown only when asked for with RUST_LOG.
    examples::init_tracing_or("off");
    let dir = std::env::temp_dir().join(format!("atomic-locks-fs-example-{}", std::process::id()));

    // Using the store: a factory in the configuration, like any bundled store.
    let locks = LockManager::new(
        LockConfig::new()
            .default_store("files")
            .store("files", fs_store(dir.clone())),
    )?;
    let lock = locks.create_lock_with_ttl("orders.1", Some(Duration::from_secs(10)))?;
    let total = lock
        .run(|| async {
            println!(
                "holding orders.1 with fencing token {:?}",
                lock.fencing_token()
            );
            40 + 2
        })
        .await?;
    println!(
        "run returned {total:?}; held now: {}",
        lock.is_locked().await?
    );

    // Validating it: every instance the kit builds opens the same directory, as another
    // process would, so all of them share their locks.
    let kit_dir = dir.join("conformance");
    let store = FsStore::open(&kit_dir)?;
    println!(
        "store {:?} declares {:?}",
        store.name(),
        store.capabilities()
    );
    let report = lock_testkit::run_suite(lock_testkit::maker(move || {
        let dir = kit_dir.clone();
        async move { FsStore::open(dir).expect("lock directory") }
    }))
    .await;
    println!(
        "conformance: {} (not applicable: the store lacks the capability)",
        report.summary()
    );
    for case in report.failures() {
        println!("  {}: {:?}", case.name, case.outcome);
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(report.failed().is_empty(), "the file store fails the kit");
    Ok(())
}
