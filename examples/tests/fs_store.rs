//! The file store of `examples/src/fs_store.rs` — a store written only against the public
//! API — passes the whole conformance kit, the model checker, and a cross-process
//! counter: several OS processes increment one counter file under one lock, exactly.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use examples::fs_store::FsStore;

/// One lock directory for this test process. Every instance the kit asks for opens it
/// anew, as another process would: they share their locks through the directory.
fn lock_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("random bytes");
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fs-store-{:016x}", u64::from_le_bytes(bytes)))
    })
    .clone()
}

lock_testkit::store_tests!(
    fs,
    capabilities: [fencing_tokens, holder_ttl],
    || async { FsStore::open(lock_dir()).expect("lock directory") }
);

lock_testkit::model_tests!(fs_model, || async {
    FsStore::open(lock_dir()).expect("lock directory")
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_increment_a_shared_counter_exactly() {
    const PROCESSES: u32 = 4;
    const TASKS: u32 = 4;
    const INCREMENTS: u32 = 10;
    let counter_dir = lock_dir().join("counter");
    std::fs::create_dir_all(&counter_dir).expect("counter dir");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_fs_counter_worker"))
                .arg("--locks")
                .arg(lock_dir())
                .arg("--counter")
                .arg(&counter_dir)
                .args(["--key", "counter", "--tasks", &TASKS.to_string()])
                .args(["--increments", &INCREMENTS.to_string()])
                .kill_on_drop(true)
                .output()
        })
        .collect();
    for child in children {
        let out = tokio::time::timeout(Duration::from_secs(120), child)
            .await
            .expect("a worker did not finish within 120 s")
            .expect("worker output");
        assert!(
            out.status.success(),
            "worker failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let count: u32 = std::fs::read_to_string(counter_dir.join("counter"))
        .expect("counter")
        .trim()
        .parse()
        .expect("a number");
    assert_eq!(
        count,
        PROCESSES * TASKS * INCREMENTS,
        "increments were lost: the processes overlapped"
    );
}
