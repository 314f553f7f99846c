//! The benchmark harness in `--quick` mode, for every store: it runs, reports every row
//! (the mutex's, the semaphore's and the reader-writer lock's), and sees no overlap and
//! no holders over a limit. No timing is asserted (machines are noisy).

use std::process::Command;

use lock_testkit::services::skip_or_fail;

/// Runs `bench --store <store> --quick --json` and checks its JSON lines.
fn smoke(store: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--store", store, "--quick", "--json", "--prefix"])
        .arg(format!("bench-smoke-{}:", std::process::id()))
        .output()
        .expect("the bench binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let kind =
        |k: &str| -> Vec<&serde_json::Value> { lines.iter().filter(|l| l["kind"] == k).collect() };
    if let Some(skipped) = kind("skipped").first() {
        return skip_or_fail(skipped["reason"].as_str().unwrap_or("unreachable"));
    }
    assert!(
        output.status.success(),
        "bench --store {store} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(kind("error").is_empty(), "bench reported errors:\n{stdout}");
    assert_eq!(kind("machine").len(), 1, "machine line missing:\n{stdout}");

    let uncontended = kind("uncontended");
    assert_eq!(uncontended.len(), 1, "uncontended row missing:\n{stdout}");
    assert!(uncontended[0]["store_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(uncontended[0]["baseline_per_sec"].as_f64().unwrap_or(0.0) > 0.0);

    let contended = kind("contended");
    let tasks: Vec<u64> = contended
        .iter()
        .filter_map(|c| c["tasks"].as_u64())
        .collect();
    assert_eq!(
        tasks,
        [1, 8, 64],
        "one contended row per task count:\n{stdout}"
    );
    for c in &contended {
        assert_eq!(
            c["overlaps"], 0,
            "two holders inside the critical section: {c}"
        );
        assert!(
            c["sections_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
            "no section ran: {c}"
        );
    }

    let many = kind("many_keys");
    assert_eq!(many.len(), 1, "many-keys row missing:\n{stdout}");
    assert!(many[0]["store_per_sec"].as_f64().unwrap_or(0.0) > 0.0);

    let permit_cycles = kind("permit_uncontended");
    assert_eq!(
        permit_cycles.len(),
        2,
        "one semaphore and one read-lock cycle row:\n{stdout}"
    );
    for u in &permit_cycles {
        assert!(u["store_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{u}");
        assert!(u["baseline_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{u}");
    }
    let permit_runs = kind("permit_contended");
    assert_eq!(
        permit_runs.len(),
        9,
        "1 permit, k permits and readers/writers for 1, 8, 64 tasks:\n{stdout}"
    );
    for c in &permit_runs {
        assert_eq!(c["over_limit"], 0, "more holders than the limit: {c}");
        assert!(
            c["sections_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
            "no section ran: {c}"
        );
    }

    if store == "memory" {
        let memory = kind("memory");
        assert_eq!(memory.len(), 1, "memory row missing:\n{stdout}");
        assert!(memory[0]["held_bytes"].as_i64().unwrap_or(0) > 0);
    }
    assert!(
        kind("target").iter().all(|t| t["target"]
            .as_str()
            .is_none_or(|name| !name.starts_with("overlaps"))
            || t["met"] == true),
        "overlap target missed:\n{stdout}"
    );
}

#[test]
fn bench_quick_memory() {
    smoke("memory");
}

#[test]
fn bench_quick_redis() {
    smoke("redis");
}

#[test]
fn bench_quick_postgres() {
    smoke("postgres");
}

#[test]
fn bench_quick_mysql() {
    smoke("mysql");
}

#[test]
fn bench_quick_sqlite() {
    smoke("sqlite");
}

/// `--compare` on the memory store (no server needed): every case and contender is
/// reported, and the handoff sees no overlap.
#[test]
fn bench_compare_quick_memory() {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--compare", "--store", "memory", "--quick", "--prefix"])
        .arg(format!("bench-smoke-cmp-{}:", std::process::id()))
        .output()
        .expect("the bench binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench --compare failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "uncontended cycle",
        "many keys",
        "sharded map",
        "project (lock-core + store) / sharded map",
        "64 task(s): handoff",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
    let handoffs: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("task(s): handoff"))
        .collect();
    assert_eq!(
        handoffs.len(),
        3,
        "one handoff line per task count:\n{stdout}"
    );
    assert!(
        handoffs
            .iter()
            .all(|l| l.trim_end().ends_with("overlaps 0")),
        "two holders inside the critical section:\n{stdout}"
    );
}
