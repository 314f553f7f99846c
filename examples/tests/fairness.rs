//! No starvation across processes: 4 processes × 2 tasks take turns on one key for a
//! fixed time; every contender must complete at least half of its fair share.

use std::time::Duration;

use lock_testkit::services::{postgres_url, redis_url, skip_unreachable};

const PROCESSES: usize = 4;
const TASKS: usize = 2;
const MILLIS: u64 = 4000;

async fn contend(store: &str) -> Option<Vec<usize>> {
    let key = format!(
        "fairness.{}.{}",
        store.replace(['/', ':'], "_"),
        std::process::id()
    );
    // All processes start contending together, 3 s from now (time to start and connect).
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
        + 3000;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_fairness_worker"))
                .args([store, &key, &TASKS.to_string(), &MILLIS.to_string()])
                .arg(start_at.to_string())
                .output()
        })
        .collect();
    let mut sections = Vec::new();
    for child in children {
        let out = tokio::time::timeout(Duration::from_secs(60), child)
            .await
            .expect("worker hung")
            .expect("worker started");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            if err.contains("E_LOCK_STORAGE_ERROR") || err.contains("lock store failed") {
                let url = if store == "redis" {
                    redis_url()
                } else {
                    postgres_url()
                };
                skip_unreachable(store, &url, err.trim());
                return None;
            }
            panic!("worker failed on {store}: {err}");
        }
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        let report: serde_json::Value = serde_json::from_str(line.trim()).expect("worker report");
        assert_eq!(
            report["overlaps"], 0,
            "{store}: overlapping sections: {line}"
        );
        for n in report["sections"].as_array().expect("sections") {
            sections.push(n.as_u64().expect("count") as usize);
        }
    }
    Some(sections)
}

fn assert_fair(store: &str, sections: &[usize]) {
    let total: usize = sections.iter().sum();
    let fair = total / sections.len();
    println!(
        "{store}: {total} sections in {MILLIS} ms over {} contenders: {sections:?} (fair share {fair})",
        sections.len()
    );
    assert!(
        total >= sections.len() * 4,
        "{store}: too few sections: {sections:?}"
    );
    assert!(
        sections.iter().all(|&n| n * 2 >= fair),
        "{store}: a contender got less than half its fair share: {sections:?}"
    );
}

#[tokio::test]
async fn redis_contenders_across_processes_are_served_fairly() {
    if let Some(s) = contend("redis").await {
        assert_fair("redis", &s);
    }
}

#[tokio::test]
async fn postgres_contenders_across_processes_are_served_fairly() {
    if let Some(s) = contend("postgres").await {
        assert_fair("postgres", &s);
    }
}
