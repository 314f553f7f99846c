//! Semaphores and reader-writer locks: their uncontended cycle against a
//! [`PermitBaseline`], and their contended handoffs, where a counter of the holders
//! inside must never pass the limit.

use std::sync::Arc;

use lock_core::permits::RW_LIMIT;
use lock_core::{
    LockError, LockFactory, LockStore, PermitRequest, PermitStore, PermitTable, async_trait,
};

use super::BenchConfig;
use super::baseline::Baseline;
use super::contended::{Contestant, contended_runs};
use super::contender::lock_cycle;
use super::harness::{factory, on_worker, time_cycles, uncontended_runs};
use super::permit_report::{PermitContended, PermitReport, PermitUncontended};

/// The store work of a semaphore or read-lock cycle without the library: what the
/// permit rows are measured against.
#[async_trait]
pub trait PermitBaseline: Send + Sync + 'static {
    /// What it does, for the report.
    fn describe(&self) -> String;

    /// Take a holding of `request` on `key` for `owner` and give it back. `Ok(false)`
    /// when the key had no room.
    async fn cycle(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<bool, LockError>;
}

/// `try_acquire_permit` then `release_permit` on `permits`.
async fn permit_cycle(
    permits: &dyn PermitStore,
    key: &str,
    owner: &str,
    request: PermitRequest,
) -> Result<bool, LockError> {
    if !permits
        .try_acquire_permit(key, owner, request)
        .await?
        .acquired
    {
        return Ok(false);
    }
    permits.release_permit(key, owner).await?;
    Ok(true)
}

/// The in-process baseline: lock-core's [`PermitTable`] called directly (the memory
/// store's permit table, in a table of its own, without the store or a `Lock`).
#[derive(Debug, Default)]
pub struct PermitTableBaseline(PermitTable);

#[async_trait]
impl PermitBaseline for PermitTableBaseline {
    fn describe(&self) -> String {
        "lock-core PermitTable called directly: try_acquire_permit + release_permit".to_owned()
    }

    async fn cycle(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<bool, LockError> {
        permit_cycle(&self.0, key, owner, request).await
    }
}

/// The store alone, through its [`PermitStore`] capability, without `lock-core`: its
/// own scripts or statements on its own connection.
pub struct StorePermitsOnly(pub Arc<dyn LockStore>);

#[async_trait]
impl PermitBaseline for StorePermitsOnly {
    fn describe(&self) -> String {
        format!(
            "{} store alone: try_acquire_permit + release_permit, no lock-core",
            self.0.name()
        )
    }

    async fn cycle(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<bool, LockError> {
        let permits = self
            .0
            .permits()
            .ok_or_else(|| LockError::invalid(format!("{} has no semaphores", self.0.name())))?;
        permit_cycle(permits, key, owner, request).await
    }
}

/// The semaphore and read-lock rows of `store`: uncontended cycles against
/// `baseline`, contended handoffs against `round_trip`'s raw round trip (the mutex
/// baseline's, as for the mutex rows).
///
/// Contended rows, for each N of [`BenchConfig::contended_tasks`]: a semaphore of 1
/// permit with N tasks (as the mutex rows); a semaphore of
/// [`BenchConfig::semaphore_permits`] `k` with `k + N` tasks; a reader-writer lock
/// with N readers and `max(1, N / 4)` writers. Errors: a store without semaphores, a
/// store or baseline error, a bench key held by someone else.
pub async fn run_permit_bench(
    store: Arc<dyn LockStore>,
    round_trip: Arc<dyn Baseline>,
    baseline: Arc<dyn PermitBaseline>,
    config: &BenchConfig,
) -> Result<PermitReport, LockError> {
    let config = config.clone();
    on_worker(async move { permit_scenarios(store, round_trip, baseline, &config).await }).await
}

async fn permit_scenarios(
    store: Arc<dyn LockStore>,
    round_trip: Arc<dyn Baseline>,
    baseline: Arc<dyn PermitBaseline>,
    config: &BenchConfig,
) -> Result<PermitReport, LockError> {
    if store.permits().is_none() {
        return Err(LockError::invalid(format!(
            "{} does not offer semaphores",
            store.name()
        )));
    }
    if config.runs == 0 || config.semaphore_permits == 0 {
        return Err(LockError::invalid(
            "runs and semaphore_permits must be at least 1",
        ));
    }
    let k = config.semaphore_permits;
    let locks = factory(&store);
    let ttl = Some(config.ttl);
    let mut report = PermitReport {
        store: store.name().to_owned(),
        baseline: baseline.describe(),
        runs: config.runs,
        ..Default::default()
    };
    for (what, tag, limit) in [
        (format!("semaphore ({k} permits)"), "sem", k),
        ("read lock".to_owned(), "read", RW_LIMIT),
    ] {
        let key = format!("{}permits:uncontended:{tag}", config.key_prefix);
        let lock = if tag == "sem" {
            locks
                .create_semaphore_with_ttl(&key, k, ttl)?
                .as_lock()
                .clone()
        } else {
            locks.create_rw_lock_with_ttl(&key, ttl)?.read().clone()
        };
        lock.force_release().await?;
        let base_key = format!("{}base:permits:{tag}", config.key_prefix);
        let request = PermitRequest::new(limit, 1, ttl);
        let base = &*baseline;
        let (cycle, ratio) = uncontended_runs(
            config,
            |phase| time_cycles(&key, phase, || lock_cycle(&lock)),
            |phase| {
                time_cycles(&base_key, phase, || {
                    base.cycle(&base_key, "bench-baseline-owner", request)
                })
            },
        )
        .await?;
        report
            .uncontended
            .push(PermitUncontended { what, cycle, ratio });
    }
    for &n in &config.contended_tasks {
        let writers = (n / 4).max(1);
        let rows: [(String, u32, ContestantsOf); 3] = [
            (format!("semaphore (1 permit), {n} task(s)"), 1, (n, 0)),
            (
                format!("semaphore ({k} permits), {k}+{n} tasks"),
                k,
                (k as usize + n, 0),
            ),
            (
                format!("rw lock, {n} reader(s) + {writers} writer(s)"),
                RW_LIMIT,
                (n, writers),
            ),
        ];
        for (i, (what, limit, shape)) in rows.into_iter().enumerate() {
            let contended = contended_runs(
                &round_trip,
                config,
                &format!("permits:contended:{i}:{n}"),
                u64::from(limit),
                |key| contestants(&locks, key, limit, shape, config),
            )
            .await?;
            report.contended.push(PermitContended {
                what,
                limit,
                contended,
            });
        }
    }
    Ok(report)
}

/// `(holders of weight 1, writers)`: a semaphore's tasks, or a reader-writer lock's
/// readers and writers.
type ContestantsOf = (usize, usize);

/// The tasks of one contended run on `key`: semaphores of `limit` permits, or (limit
/// [`RW_LIMIT`]) readers and writers of one reader-writer lock each.
fn contestants(
    locks: &LockFactory,
    key: &str,
    limit: u32,
    (ones, writers): ContestantsOf,
    config: &BenchConfig,
) -> Result<Vec<Contestant>, LockError> {
    let ttl = Some(config.ttl);
    if limit != RW_LIMIT {
        return (0..ones)
            .map(|_| {
                Ok((
                    locks
                        .create_semaphore_with_ttl(key, limit, ttl)?
                        .as_lock()
                        .clone(),
                    1,
                ))
            })
            .collect();
    }
    let mut all = Vec::with_capacity(ones + writers);
    for i in 0..ones + writers {
        let rw = locks.create_rw_lock_with_ttl(key, ttl)?;
        all.push(if i < ones {
            (rw.read().clone(), 1)
        } else {
            (rw.write().clone(), u64::from(RW_LIMIT))
        });
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::MutexBaseline;
    use crate::broken::{Flaw, FlawedStore};

    fn short() -> BenchConfig {
        let mut config = BenchConfig::quick();
        config.phase = Duration::from_millis(20);
        config.contended_phase = Duration::from_millis(60);
        config.contended_tasks = vec![1, 4];
        config.semaphore_permits = 2;
        config
    }

    async fn bench(store: Arc<dyn LockStore>) -> PermitReport {
        run_permit_bench(
            store,
            Arc::new(MutexBaseline::new()),
            Arc::new(PermitTableBaseline::default()),
            &short(),
        )
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn permit_rows_run_on_the_test_store_within_the_limit() {
        let report = bench(Arc::new(lock_core::testing::TestStore::default())).await;
        assert_eq!(report.over_limit(), 0, "{}", report.table());
        assert_eq!(report.uncontended.len(), 2);
        for u in &report.uncontended {
            assert!(
                u.cycle.store.count > 0 && u.cycle.baseline.count > 0,
                "{u:?}"
            );
        }
        // 3 kinds (1 permit, k permits, readers and writers) per task count.
        assert_eq!(report.contended.len(), 6);
        let tasks: Vec<usize> = report.contended.iter().map(|c| c.contended.tasks).collect();
        assert_eq!(tasks, [1, 3, 2, 4, 6, 5]);
        assert!(
            report
                .contended
                .iter()
                .all(|c| c.contended.sections_per_sec > 0.0)
        );
        assert_eq!(report.json_lines().len(), 8);
        assert!(
            report
                .table()
                .contains("rw lock, 4 reader(s) + 1 writer(s)")
        );
    }

    /// The holder counter bites: a store that ignores the semaphore's limit, or a
    /// writer's weight, is caught over the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_over_the_limit_is_counted() {
        for flaw in [Flaw::PermitNoLimit, Flaw::PermitWeightIgnored] {
            let report = bench(Arc::new(FlawedStore::new(flaw))).await;
            assert!(report.over_limit() > 0, "{flaw:?}:\n{}", report.table());
        }
        let control = bench(Arc::new(FlawedStore::new(Flaw::None))).await;
        assert_eq!(control.over_limit(), 0, "{}", control.table());
    }

    #[tokio::test]
    async fn a_store_without_semaphores_is_refused() {
        let store: Arc<dyn LockStore> = Arc::new(crate::wrap::PollingOnly(Arc::new(
            lock_core::testing::TestStore::default(),
        )));
        let refused = run_permit_bench(
            store,
            Arc::new(MutexBaseline::new()),
            Arc::new(PermitTableBaseline::default()),
            &short(),
        )
        .await;
        assert!(refused.is_err());
    }
}
