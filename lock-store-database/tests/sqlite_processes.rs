//! A SQLite file shared by two processes: the lock keeps them out of one critical
//! section. The test binary re-runs itself as the second process.

mod common;

use std::time::Duration;

use common::Raw;
use lock_core::LockStore;
use lock_store_database::{Backend, DatabaseStore, DatabaseStoreOptions};

const CHILD_ENV: &str = "LOCK_SQLITE_CHILD_DB";
const ROUNDS: i64 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_gives_mutual_exclusion_across_processes() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let path = common::sqlite_file();
    let mut raw = Raw::connect(Backend::Sqlite, &path).await;
    raw.exec("CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0);")
        .await;

    let exe = std::env::current_exe().expect("test binary path");
    let child = std::process::Command::new(exe)
        .args([
            "--exact",
            "sqlite_process_worker",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the second process");
    let child = tokio::task::spawn_blocking(move || child.wait_with_output());

    worker(&path, "parent").await;
    let output = child.await.unwrap().expect("second process output");
    assert!(
        output.status.success(),
        "second process failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Each round reads, pauses, then writes n + 1: any overlap loses an increment.
    let n = raw.n("SELECT n FROM counter").await;
    assert_eq!(
        n,
        2 * ROUNDS,
        "critical sections of the two processes overlapped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the second process of sqlite_file_gives_mutual_exclusion_across_processes"]
async fn sqlite_process_worker() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    worker(&path, "child").await;
}

async fn worker(path: &str, who: &str) {
    let store = DatabaseStore::connect(DatabaseStoreOptions::sqlite_path(path))
        .await
        .expect("SQLite store");
    let mut raw = Raw::connect(Backend::Sqlite, path).await;
    raw.exec("PRAGMA busy_timeout = 5000;").await;
    for round in 0..ROUNDS {
        let owner = format!("{who}-{round}");
        while !store
            .save("counter", &owner, Some(Duration::from_secs(10)))
            .await
            .expect("save")
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let n = raw.n("SELECT n FROM counter").await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        raw.exec(&format!("UPDATE counter SET n = {}", n + 1)).await;
        store.delete("counter", &owner).await.expect("release");
    }
}
