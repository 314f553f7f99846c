//! Cross-process mutual exclusion: 4 OS processes × 8 tasks do unsafe read-modify-write
//! increments of a counter file, guarded by one lock, on Redis, PostgreSQL, MariaDB and a
//! SQLite file; with short TTLs and auto-extension (one section per process lasts 1.5 TTL,
//! and, in the mixed runs, guards are dropped right before the same lock acquires again),
//! and without it (sections far shorter than the TTL). Any overlap loses an increment and
//! trips the `O_EXCL` marker of the worker.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Kind, TABLE, connect, temp_dir, unique};

const PROCESSES: u32 = 4;
const TASKS: u32 = 8;
const SECTIONS: u32 = 4;

struct Mode {
    ttl_ms: u64,
    auto_extend: bool,
    long_ms: Option<u64>,
    /// Rotate `run`, released guards and dropped guards (see the worker's `--forms`).
    mixed: bool,
    /// The worker's `--primitive`: `mutex`, `semaphore:N` or `rw`.
    primitive: &'static str,
}

/// Auto-extension on: TTL 2 s, the first section of each process lasts 3 s (the TTL
/// leaves the extender 1.33 s of scheduling slack on a loaded 2-core machine; a process
/// stalled longer than that loses the lock, and the test then fails on its lost signal).
const AUTO: Mode = Mode {
    ttl_ms: 2_000,
    auto_extend: true,
    long_ms: Some(3_000),
    mixed: false,
    primitive: "mutex",
};

/// Auto-extension on, and every third section ends by dropping its guard right before
/// the same lock acquires again.
const MIXED: Mode = Mode {
    ttl_ms: 2_000,
    auto_extend: true,
    long_ms: Some(3_000),
    mixed: true,
    primitive: "mutex",
};

/// A semaphore of 3 instead of a lock, in the mixed forms with auto-extension.
const SEMAPHORE: Mode = Mode {
    primitive: "semaphore:3",
    ..MIXED
};

/// A reader-writer lock (every fourth task writes), in the mixed forms with
/// auto-extension.
const RW: Mode = Mode {
    primitive: "rw",
    ..MIXED
};

/// Auto-extension off: TTL 5 s, sections of 0–2 ms.
const PLAIN: Mode = Mode {
    ttl_ms: 5_000,
    auto_extend: false,
    long_ms: None,
    mixed: false,
    primitive: "mutex",
};

/// At most two runs (eight worker processes) at a time: on two cores, more starve the
/// extenders of CPU and the test would measure the scheduler, not the locks.
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

async fn run(kind: Kind, mode: Mode) {
    let _turn = GATE.acquire().await.expect("the gate is never closed");
    let url = kind.url();
    // Reachable? (Also creates the table once, before four processes race to.)
    if connect(kind, &url).await.is_none() {
        return;
    }
    let dir = temp_dir(&format!("xproc-{}", kind.name()));
    let key = unique(&format!("xproc.{}", kind.name()));
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_stress_worker"));
        cmd.args(["--store", kind.name(), "--url", &url, "--table", TABLE])
            .args(["--key", &key])
            .args(["--tasks", &TASKS.to_string()])
            .args(["--sections", &SECTIONS.to_string()])
            .args(["--ttl-ms", &mode.ttl_ms.to_string()])
            .args(["--auto-extend", if mode.auto_extend { "on" } else { "off" }])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(long) = mode.long_ms {
            cmd.args(["--long-ms", &long.to_string()]);
        }
        if mode.mixed {
            cmd.args(["--forms", "mixed"]);
        }
        cmd.args(["--primitive", mode.primitive]);
        children.push(cmd.spawn().expect("spawn stress_worker"));
    }
    let (mut sections, mut overlaps, mut lost, mut storage_errors) = (0u64, 0u64, 0u64, 0u64);
    let (mut max_holders, mut writes) = (0u64, 0u64);
    for child in children {
        let out = tokio::time::timeout(Duration::from_secs(45), child.wait_with_output())
            .await
            .expect("a stress_worker did not finish within 45 s")
            .expect("stress_worker output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: worker failed ({}): {stderr}{stdout}",
            kind.name(),
            out.status
        );
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("worker output {stdout:?}: {e}"));
        sections += v["sections"].as_u64().expect("sections");
        overlaps += v["overlaps"].as_u64().expect("overlaps");
        lost += v["lost"].as_u64().expect("lost");
        storage_errors += v["storage_errors"].as_u64().expect("storage_errors");
        max_holders = max_holders.max(v["max_holders"].as_u64().expect("max_holders"));
        writes += v["writes"].as_u64().expect("writes");
    }
    let counter: u64 = std::fs::read_to_string(dir.join("counter"))
        .map(|s| s.trim().parse().expect("counter value"))
        .unwrap_or(0);
    let expected = u64::from(PROCESSES * TASKS * SECTIONS);
    println!(
        "{}: {} auto_extend={} mixed={} processes={PROCESSES} sections={sections} counter={counter} writes={writes} max_holders={max_holders} overlaps={overlaps} lost={lost} tolerated_storage_errors={storage_errors} in {:?}",
        kind.name(),
        mode.primitive,
        mode.auto_extend,
        mode.mixed,
        started.elapsed()
    );
    assert_eq!(sections, expected, "{}: sections completed", kind.name());
    assert_eq!(
        overlaps,
        0,
        "{}: two holders were inside at once",
        kind.name()
    );
    match mode.primitive {
        "mutex" => assert_eq!(counter, expected, "{}: increments were lost", kind.name()),
        "rw" => {
            assert!(writes > 0, "{}: no writer ran", kind.name());
            assert_eq!(
                counter,
                writes,
                "{}: writers' increments were lost",
                kind.name()
            );
        }
        semaphore => assert_eq!(
            max_holders,
            3,
            "{}: {semaphore}: at most 3 holders may be inside, and 3 should be at times",
            kind.name()
        ),
    }
    assert_eq!(lost, 0, "{}: auto-extension let a lock go", kind.name());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_four_processes_never_overlap_with_auto_extension() {
    run(Kind::Redis, AUTO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_four_processes_never_overlap_without_auto_extension() {
    run(Kind::Redis, PLAIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_four_processes_never_overlap_with_guard_drops_and_auto_extension() {
    run(Kind::Redis, MIXED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_semaphore_of_three_is_never_exceeded_across_processes() {
    run(Kind::Redis, SEMAPHORE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rw_lock_writers_never_overlap_anyone_across_processes() {
    run(Kind::Redis, RW).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_four_processes_never_overlap_with_auto_extension() {
    run(Kind::Postgres, AUTO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_four_processes_never_overlap_without_auto_extension() {
    run(Kind::Postgres, PLAIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_four_processes_never_overlap_with_guard_drops_and_auto_extension() {
    run(Kind::Postgres, MIXED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_four_processes_never_overlap_with_auto_extension() {
    run(Kind::Mysql, AUTO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_four_processes_never_overlap_without_auto_extension() {
    run(Kind::Mysql, PLAIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_four_processes_never_overlap_with_guard_drops_and_auto_extension() {
    run(Kind::Mysql, MIXED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_four_processes_never_overlap_with_auto_extension() {
    run(Kind::Sqlite, AUTO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_four_processes_never_overlap_without_auto_extension() {
    run(Kind::Sqlite, PLAIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_four_processes_never_overlap_with_guard_drops_and_auto_extension() {
    run(Kind::Sqlite, MIXED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_semaphore_of_three_is_never_exceeded_across_processes() {
    run(Kind::Postgres, SEMAPHORE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rw_lock_writers_never_overlap_anyone_across_processes() {
    run(Kind::Postgres, RW).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_semaphore_of_three_is_never_exceeded_across_processes() {
    run(Kind::Mysql, SEMAPHORE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_rw_lock_writers_never_overlap_anyone_across_processes() {
    run(Kind::Mysql, RW).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_semaphore_of_three_is_never_exceeded_across_processes() {
    run(Kind::Sqlite, SEMAPHORE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rw_lock_writers_never_overlap_anyone_across_processes() {
    run(Kind::Sqlite, RW).await;
}

/// The detector bites: with a store per process (memory), the "lock" excludes nobody
/// across processes, and the counter or the marker must show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_memory_store_across_processes_is_caught_overlapping() {
    let (overlaps, counter, _) = control_run("mutex", 1).await;
    assert!(
        overlaps > 0 || counter != u64::from(PROCESSES * 32),
        "the overlap detector saw nothing although the processes did not exclude each other"
    );
}

/// The same for the semaphore and reader-writer detectors: per-process semaphores of 3
/// let in more than 3 across processes, per-process reader-writer locks let writers meet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_memory_semaphores_and_rw_locks_across_processes_are_caught() {
    let (_, _, max_holders) = control_run("semaphore:3", 20).await;
    assert!(
        max_holders > 3,
        "the holder count saw at most {max_holders} although 4 processes each let 3 in"
    );
    let (overlaps, _, _) = control_run("rw", 20).await;
    assert!(
        overlaps > 0,
        "the writer detector saw nothing across 4 unrelated processes"
    );
}

/// Four memory-store workers (which exclude nobody across processes): the overlaps, the
/// counter and the most holders seen at once.
async fn control_run(primitive: &str, hold_ms: u64) -> (u64, u64, u64) {
    let dir = temp_dir("xproc-control");
    let key = unique("xproc.control");
    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        children.push(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_stress_worker"))
                .args(["--store", "memory", "--key", &key, "--primitive", primitive])
                .args(["--long-ms", &hold_ms.to_string()])
                .args(["--tasks", "8", "--sections", "4", "--ttl-ms", "5000"])
                .args(["--auto-extend", "off"])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn"),
        );
    }
    let (mut overlaps, mut max_holders) = (0, 0);
    for child in children {
        let out = tokio::time::timeout(Duration::from_secs(45), child.wait_with_output())
            .await
            .expect("finished")
            .expect("output");
        // A racing process may find the marker gone mid-section: a failure exit is an
        // overlap too.
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or_default();
        overlaps += v["overlaps"].as_u64().unwrap_or(1);
        max_holders = v["max_holders"].as_u64().unwrap_or(0).max(max_holders);
    }
    let counter: u64 = std::fs::read_to_string(dir.join("counter"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    (overlaps, counter, max_holders)
}
