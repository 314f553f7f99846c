//! A configuration cache with many readers and a rare writer: a reader-writer lock.
//! Readers share the lock; the writer excludes everyone, and once it waits no new reader
//! gets in, so a steady stream of readers never starves it.
//!
//!     cargo run -p examples --example config_cache
//!     LOCK_STORE=redis cargo run -p examples --features redis --example config_cache
//!
//! With `LOCK_STORE=redis` or `LOCK_STORE=database`, readers and writers in several
//! processes exclude each other the same way.

use std::sync::Arc;
use std::time::Duration;

use lock_core::LockError;
use tokio::sync::Mutex;

/// Stands for a file or a table the processes share.
type Config = Arc<Mutex<String>>;

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    examples::init_tracing();
    let locks = examples::locks()?;
    let config: Config = Arc::new(Mutex::new("version 1".to_owned()));
    let mut readers = Vec::new();
    for reader in 1..=4 {
        // One `RwLock` per task: each is one would-be reader and one would-be writer.
        let rw = locks.create_rw_lock("config.app")?;
        let config = config.clone();
        readers.push(tokio::spawn(async move {
            for _ in 0..3 {
                rw.read()
                    .run(|| async {
                        let seen = config.lock().await.clone();
                        println!("reader {reader} sees {seen}");
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    })
                    .await?;
            }
            Ok::<_, LockError>(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    let writer = locks.create_rw_lock("config.app")?;
    writer
        .write()
        .run(|| async {
            println!(
                "writer: {} reader(s) inside while writing (always 0)",
                writer.readers().await.unwrap_or(0)
            );
            *config.lock().await = "version 2".to_owned();
        })
        .await?;
    println!("writer: published version 2");
    for reader in readers {
        reader.await.expect("the reader task panicked")?;
    }
    Ok(())
}
