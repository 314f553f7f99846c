use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use lock_core::{FactoryOptions, LockError, LockFactory, LockStore};

use crate::services::Skip;

/// Builds a fresh store instance (a new connection to the same backend) for a case.
pub type StoreMaker = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Arc<dyn LockStore>, Skip>> + Send>>
        + Send
        + Sync,
>;

/// A [`StoreMaker`] from an infallible constructor.
pub fn maker<F, Fut, S>(ctor: F) -> StoreMaker
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = S> + Send + 'static,
    S: LockStore,
{
    Arc::new(move || {
        let fut = ctor();
        Box::pin(async move { Ok(Arc::new(fut.await) as Arc<dyn LockStore>) })
    })
}

/// A constructor that hands out clones of one store: every instance built for a case
/// shares the same locks, which is what the suite requires (see the crate docs,
/// "Wiring"). For an in-process store, or any store whose clones share a connection.
///
/// The clones must share their state: a store whose `Clone` copies its map (a
/// `#[derive(Clone)]` over a `HashMap` held by value) gives each instance its own locks,
/// and the kit then fails with a `wiring:` message. A store that is not `Clone`, or
/// whose clones would not share, goes behind an `Arc` (an `Arc` of a store is a store):
///
/// ```
/// use std::sync::Arc;
/// let maker = lock_testkit::maker(lock_testkit::clones(Arc::new(
///     lock_core::testing::TestStore::default(),
/// )));
/// ```
pub fn clones<S: LockStore + Clone>(
    store: S,
) -> impl Fn() -> std::future::Ready<S> + Send + Sync + 'static {
    move || std::future::ready(store.clone())
}

/// A [`StoreMaker`] from a constructor that may find its server unreachable.
pub fn service_maker<F, Fut, S>(ctor: F) -> StoreMaker
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<S, Skip>> + Send + 'static,
    S: LockStore,
{
    Arc::new(move || {
        let fut = ctor();
        Box::pin(async move { fut.await.map(|s| Arc::new(s) as Arc<dyn LockStore>) })
    })
}

/// The rule every store maker must follow, quoted by the cases that detect a breach.
pub const WIRING_RULE: &str = "wiring: the store instances built for one case do not share \
state. Every instance the maker returns within a case must reach the same locks, as two \
connections to one server do: build an in-process store once and hand out clones \
(`store_tests!(name, lock_testkit::clones(MyStore::new()))`), or connect each instance \
to the same server, directory or database. See the lock_testkit crate docs, \"Wiring\"";

/// Why a case failed: what the store did wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure(pub String);

impl std::fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of one case.
pub type CaseResult = Result<(), CaseFailure>;

/// What a case gets: the store under test, fresh instances of it, and keys private to
/// this run and case (so suites run in parallel against one shared server).
#[derive(Clone)]
pub struct Ctx {
    maker: StoreMaker,
    store: Arc<dyn LockStore>,
    prefix: String,
}

fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut bytes = [0u8; 6];
        let _ = getrandom::fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

impl Ctx {
    /// Build the store for `case`.
    pub async fn new(maker: StoreMaker, case: &str) -> Result<Ctx, Skip> {
        let store = maker().await?;
        Ok(Ctx {
            maker,
            store,
            prefix: format!("lt:{}:{case}", run_id()),
        })
    }

    /// The store under test.
    pub fn store(&self) -> Arc<dyn LockStore> {
        self.store.clone()
    }

    /// Another instance of the store (as another process would have), checked to share
    /// the first one's locks: a case fails with [`WIRING_RULE`] when it does not.
    pub async fn other_store(&self) -> Result<Arc<dyn LockStore>, CaseFailure> {
        let other = (self.maker)().await.map_err(|skip| {
            CaseFailure(format!("could not build a second store instance: {skip}"))
        })?;
        self.check_shared(&*self.store, &*other).await?;
        Ok(other)
    }

    /// Fails with [`WIRING_RULE`] when a lock saved through `a` is not seen by `b`.
    /// Inconclusive (passes) when `a` refuses the probe lock: other cases judge `save`.
    pub(crate) async fn check_shared(
        &self,
        a: &dyn LockStore,
        b: &dyn LockStore,
    ) -> Result<(), CaseFailure> {
        static PROBE: AtomicU64 = AtomicU64::new(0);
        let key = self.key(&format!(
            "wiring-probe-{}",
            PROBE.fetch_add(1, Ordering::Relaxed)
        ));
        let owner = "wiringprobe0123456789abcdef01234";
        let saved = matches!(
            a.save(&key, owner, Some(Duration::from_secs(30))).await,
            Ok(true)
        );
        if !saved {
            return Ok(());
        }
        let seen = b.exists(&key).await;
        let _ = a.force_delete(&key).await;
        match seen {
            Ok(true) => Ok(()),
            Ok(false) => Err(CaseFailure(format!(
                "{WIRING_RULE} (a lock saved through the case's first instance, key {key:?}, \
                 is not seen by `exists` on a second instance)"
            ))),
            Err(e) => Err(CaseFailure(format!(
                "`exists` on a second store instance failed: {e} ({})",
                e.code()
            ))),
        }
    }

    /// A key private to this run and case.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// A factory on the store under test, with Verrou's defaults but a 3 s acquire
    /// timeout (so that a broken store fails a case instead of hanging it).
    pub fn factory(&self) -> LockFactory {
        LockFactory::from_shared(
            self.store.clone(),
            FactoryOptions::default()
                .retry(lock_core::RetryConfig::default().timeout(Duration::from_secs(3))),
        )
    }

    /// A factory on the store under test with these defaults.
    pub fn factory_with(&self, options: FactoryOptions) -> LockFactory {
        LockFactory::from_shared(self.store.clone(), options)
    }

    /// The short TTL the expiry cases use.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(300)
    }
}

/// Fail with a message unless `cond`.
#[macro_export]
#[doc(hidden)]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::CaseFailure(format!($($fmt)+)));
        }
    };
}

/// Turn a store error into a case failure that says which call failed.
pub fn ok<T>(result: Result<T, LockError>, what: &str) -> Result<T, CaseFailure> {
    result.map_err(|e| CaseFailure(format!("{what} returned an error: {e} ({})", e.code())))
}

/// Await `fut` for at most `limit`, failing with `what` otherwise.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, CaseFailure> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| CaseFailure(format!("{what} did not complete within {limit:?}")))
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The store behaved.
    Passed,
    /// The store misbehaved: the message says how.
    Failed(String),
    /// Not run: the server is unreachable, or the store lacks the capability.
    Skipped(String),
}

/// One case's result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CaseReport {
    /// The case's name (the name of its function in [`crate::cases`]).
    pub name: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// Every case's result, for custom harnesses.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SuiteReport {
    /// One entry per case, in the order of [`crate::CASES`].
    pub cases: Vec<CaseReport>,
}

impl SuiteReport {
    /// Names of the failed cases.
    pub fn failed(&self) -> Vec<&'static str> {
        self.names(|o| matches!(o, Outcome::Failed(_)))
    }

    /// Names of the passed cases.
    pub fn passed(&self) -> Vec<&'static str> {
        self.names(|o| matches!(o, Outcome::Passed))
    }

    /// Names of the skipped cases.
    pub fn skipped(&self) -> Vec<&'static str> {
        self.names(|o| matches!(o, Outcome::Skipped(_)))
    }

    /// One line: how many cases passed, failed, and were not applicable.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} not applicable",
            self.passed().len(),
            self.failed().len(),
            self.skipped().len()
        )
    }

    /// The failed cases, with what the store did wrong.
    pub fn failures(&self) -> impl Iterator<Item = &CaseReport> {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    fn names(&self, pick: impl Fn(&Outcome) -> bool) -> Vec<&'static str> {
        self.cases
            .iter()
            .filter(|c| pick(&c.outcome))
            .map(|c| c.name)
            .collect()
    }
}

/// The longest any case may run before it counts as hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Run one case by name.
pub async fn run_case(name: &str, maker: StoreMaker) -> CaseReport {
    let started = Instant::now();
    let Some(case) = crate::CASES.iter().find(|c| c.name == name) else {
        return CaseReport {
            name: "unknown",
            outcome: Outcome::Failed(format!("no conformance case named {name:?}")),
            elapsed: Duration::ZERO,
        };
    };
    let outcome = match Ctx::new(maker, case.name).await {
        Err(skip) => Outcome::Skipped(skip.to_string()),
        Ok(ctx) => {
            match case.requires.missing_in(ctx.store.as_ref()) {
                Some(missing) => Outcome::Skipped(format!("{LACKS} {missing}")),
                None => {
                    // Run on its own task so that a panic is a failure, not a crash.
                    let task = tokio::spawn((case.run)(ctx));
                    match tokio::time::timeout(CASE_TIMEOUT, task).await {
                        Err(_) => Outcome::Failed(format!("hung for more than {CASE_TIMEOUT:?}")),
                        Ok(Err(join)) => {
                            Outcome::Failed(format!("panicked: {}", panic_message(join)))
                        }
                        Ok(Ok(Err(failure))) => Outcome::Failed(failure.0),
                        Ok(Ok(Ok(()))) => Outcome::Passed,
                    }
                }
            }
        }
    };
    CaseReport {
        name: case.name,
        outcome,
        elapsed: started.elapsed(),
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic".into()),
        Err(e) => e.to_string(),
    }
}

/// Run every case (a few at a time) and report each.
///
/// ```no_run
/// # async fn f() {
/// use lock_testkit::{maker, run_suite};
/// let report = run_suite(maker(|| async { lock_core::testing::TestStore::default() })).await;
/// assert!(report.failed().is_empty(), "{:?}", report.failed());
/// # }
/// ```
pub async fn run_suite(maker: StoreMaker) -> SuiteReport {
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let tasks: Vec<_> = crate::CASES
        .iter()
        .map(|case| {
            let maker = maker.clone();
            let limit = limit.clone();
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                run_case(case.name, maker).await
            })
        })
        .collect();
    let mut cases = Vec::with_capacity(tasks.len());
    for (task, case) in tasks.into_iter().zip(crate::CASES) {
        cases.push(task.await.unwrap_or_else(|e| CaseReport {
            name: case.name,
            outcome: Outcome::Failed(format!("harness task failed: {e}")),
            elapsed: Duration::ZERO,
        }));
    }
    SuiteReport { cases }
}

#[doc(hidden)]
pub mod private {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime for a conformance case")
    }

    /// Body of one generated `#[test]`: its own multi-threaded runtime, then the case.
    /// `listed`: the capabilities named in `store_tests!`, if any.
    pub fn run_test(case: &str, maker: StoreMaker, listed: Option<&[&str]>) {
        let report = runtime().block_on(run_case(case, maker));
        match report.outcome {
            Outcome::Passed => {}
            Outcome::Skipped(reason) if reason.starts_with(LACKS) => {
                let missing = reason.trim_start_matches(LACKS).trim();
                if listed.is_some_and(|l| l.contains(&missing)) {
                    panic!(
                        "conformance case {case}: store_tests! lists the capability {missing}, \
                         but the store's capabilities() does not declare it"
                    );
                }
                let hint = if listed.is_some() {
                    ""
                } else {
                    " — counted as passed by the test harness; list the store's capabilities \
                     in store_tests!(name, capabilities: [..], ..) to see it as ignored"
                };
                crate::services::write_skip(
                    &mut std::io::stderr().lock(),
                    &crate::services::current_test_name(),
                    &format_args!("{reason}{hint}"),
                );
            }
            Outcome::Skipped(reason) => crate::services::skip_or_fail(reason),
            Outcome::Failed(why) => panic!("conformance case {case} failed: {why}"),
        }
    }

    /// Body of the generated `capabilities_match_store_tests_list` test.
    pub fn check_listed_capabilities(maker: StoreMaker, listed: &[&str]) {
        let store = match runtime().block_on(maker()) {
            Ok(store) => store,
            Err(skip) => return crate::services::skip_or_fail(skip),
        };
        let caps = store.capabilities();
        let declared = [
            ("release_notification", caps.release_notification),
            ("fencing_tokens", caps.fencing_tokens),
            ("holder_ttl", caps.holder_ttl),
            ("permits", store.permits().is_some()),
        ];
        for name in listed {
            assert!(
                declared.iter().any(|(n, _)| n == name),
                "store_tests! lists an unknown capability {name:?}; known: \
                 release_notification, fencing_tokens, holder_ttl, permits"
            );
        }
        for (name, on) in declared {
            let in_list = listed.contains(&name);
            assert!(
                on == in_list,
                "the store's capabilities() {} {name}, but the store_tests! list {}: the \
                 list decides which capability cases run and which are ignored, so it must \
                 match the store",
                if on { "declares" } else { "does not declare" },
                if in_list {
                    "names it"
                } else {
                    "does not name it"
                },
            );
        }
    }

    /// Body of `model_tests!(name, ctor)`.
    pub fn model_real(name: &str, maker: StoreMaker) {
        let rt = runtime();
        let store = match rt.block_on(maker()) {
            Ok(store) => store,
            Err(skip) => return crate::services::skip_or_fail(skip),
        };
        match rt.block_on(crate::model::check(
            store,
            &crate::model::ModelConfig::real(),
        )) {
            Ok(report) => println!("{name}: {report:?}"),
            Err(failure) => panic!("{name}: {failure}"),
        }
    }

    /// Body of `model_tests!(name, paused: make)`.
    pub fn model_paused(name: &str, make: impl Fn() -> Arc<dyn LockStore>) {
        match crate::model::check_paused(make, &crate::model::ModelConfig::paused()) {
            Ok(report) => println!("{name}: {report:?}"),
            Err(failure) => panic!("{name}: {failure}"),
        }
    }
}

/// How [`run_case`] words a capability skip.
pub(crate) const LACKS: &str = "store lacks capability";
