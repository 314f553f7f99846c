//! Model-based checking: random sequences of operations by several owners on a few keys
//! (acquire, release, extend, force release, is_locked, time passing), run through
//! [`Lock`] against a store and against a reference model of the contract, compared step
//! by step.
//!
//! * [`check_paused`]: tokio's paused clock (`advance`), exact, many sequences, expiry
//!   exactly at the boundary included (held while `now < expiry`). For stores that read
//!   tokio's clock (in-process stores).
//! * [`check`]: real time in units of [`ModelConfig::unit`], for any store. The model
//!   keeps each expiry as an interval (request sent .. answer received, plus the TTL)
//!   and, before an operation on a key whose expiry is near, waits until it is clearly
//!   past, so that every compared answer is determined.
//!
//! A failure names the step, the operation, what the store answered and what the model
//! expected, and the sequence up to that step (with the seed that generated it).
//!
//! ```no_run
//! # async fn f() {
//! use lock_testkit::model::{ModelConfig, check};
//! let store = std::sync::Arc::new(lock_store_memory::MemoryStore::new());
//! let report = check(store, &ModelConfig::real()).await.expect("store matches the model");
//! println!("{} steps", report.steps);
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lock_core::{FactoryOptions, Lock, LockError, LockFactory, LockStore, RetryConfig};
use tokio::time::Instant;

use crate::CaseFailure;

mod ops;
pub use ops::{KEYS, OWNERS, Op, Rng, sequence, ttl_units};

/// How time passes in a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Clock {
    /// tokio's paused clock: exact.
    Paused,
    /// Real time; the margins keep compared answers away from expiry boundaries.
    Real {
        /// Wait when the earliest possible expiry is closer than this.
        before: Duration,
        /// How far past the latest possible expiry to wait.
        after: Duration,
    },
}

/// What to run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModelConfig {
    /// How time passes.
    pub clock: Clock,
    /// One unit of time (TTLs are 2, 3, 4 units or none).
    pub unit: Duration,
    /// How many sequences.
    pub sequences: usize,
    /// Longest sequence (lengths are drawn from `1..=max_steps`).
    pub max_steps: usize,
    /// Seed of the generator; `None`: a random seed (reported on failure).
    pub seed: Option<u64>,
}

impl ModelConfig {
    /// Paused clock: 300 sequences of up to 60 steps, 100 ms units.
    pub fn paused() -> Self {
        ModelConfig {
            clock: Clock::Paused,
            unit: Duration::from_millis(100),
            sequences: 300,
            max_steps: 60,
            seed: None,
        }
    }

    /// Real time: 6 sequences of up to 25 steps, 300 ms units, margins for a network
    /// store on a loaded machine.
    pub fn real() -> Self {
        ModelConfig {
            clock: Clock::Real {
                before: Duration::from_millis(250),
                after: Duration::from_millis(80),
            },
            unit: Duration::from_millis(300),
            sequences: 6,
            max_steps: 25,
            seed: None,
        }
    }
}

/// What a passing check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelReport {
    /// Sequences run.
    pub sequences: usize,
    /// Steps run, all sequences together.
    pub steps: usize,
    /// The seed used.
    pub seed: u64,
}

/// The model's view of one key: holder and expiry (earliest, latest possible instant).
#[derive(Debug, Clone, Copy)]
struct Held {
    owner: usize,
    expiry: Option<(Instant, Instant)>,
}

fn fail(step: usize, op: &Op, what: String) -> CaseFailure {
    CaseFailure(format!("step {step} {op:?}: {what}"))
}

fn random_prefix() -> String {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("model.{hex}")
}

/// Run one sequence through [`Lock`] on `store` and compare each answer with the model.
/// Returns the number of steps run.
pub async fn run_sequence(
    store: Arc<dyn LockStore>,
    ops: &[Op],
    clock: Clock,
    unit: Duration,
) -> Result<usize, CaseFailure> {
    let factory = LockFactory::from_shared(
        store,
        FactoryOptions::default()
            .retry(RetryConfig::immediately())
            .default_ttl(None),
    );
    let prefix = random_prefix();
    let mut locks: Vec<Vec<Lock>> = Vec::with_capacity(OWNERS);
    for o in 0..OWNERS {
        let mut row = Vec::with_capacity(KEYS);
        for k in 0..KEYS {
            row.push(
                factory
                    .create_lock_with_ttl(format!("{prefix}.{k}"), ttl_units(o).map(|u| unit * u))
                    .map_err(|e| CaseFailure(format!("create_lock failed: {e}")))?,
            );
        }
        locks.push(row);
    }
    let result = compare(&locks, ops, clock, unit).await;
    // Leave nothing behind on shared servers.
    for lock in &locks[0] {
        let _ = lock.force_release().await;
    }
    result.map(|()| ops.len())
}

async fn compare(
    locks: &[Vec<Lock>],
    ops: &[Op],
    clock: Clock,
    unit: Duration,
) -> Result<(), CaseFailure> {
    let mut model: HashMap<usize, Held> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let key = match *op {
            Op::Acquire { key, .. }
            | Op::Release { key, .. }
            | Op::Extend { key, .. }
            | Op::ForceRelease { key, .. }
            | Op::Exists { key } => Some(key),
            Op::Advance { .. } => None,
        };
        // Real clock: never ask about a key whose expiry is about to happen.
        if let (Clock::Real { before, after }, Some(k)) = (clock, key) {
            if let Some((lo, hi)) = model.get(&k).and_then(|h| h.expiry) {
                let now = Instant::now();
                if now + before >= lo && now <= hi + after {
                    tokio::time::sleep_until(hi + after).await;
                }
            }
        }
        let now = Instant::now();
        let live = |m: &HashMap<usize, Held>, k: usize| -> Option<usize> {
            m.get(&k).and_then(|h| match h.expiry {
                Some((lo, _)) if now >= lo => None,
                _ => Some(h.owner),
            })
        };
        let state = format!("{model:?}");
        match *op {
            Op::Acquire { owner, key } => {
                let expected = live(&model, key).is_none();
                let lock = &locks[owner][key];
                let sent = Instant::now();
                let got = lock.acquire_immediately().await;
                let recv = Instant::now();
                let got = got.map_err(|e| fail(i, op, format!("acquire failed: {e}")))?;
                if got != expected {
                    return Err(fail(
                        i,
                        op,
                        format!(
                            "acquire returned {got}, the model expects {expected} (model: {state}){}",
                            if got {
                                " — two owners held the key at once"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                if got {
                    let ttl = lock.ttl();
                    model.insert(
                        key,
                        Held {
                            owner,
                            expiry: ttl.map(|t| (sent + t, recv + t)),
                        },
                    );
                    if let (Some(t), Some(left)) = (ttl, lock.remaining_time()) {
                        if left > t {
                            return Err(fail(
                                i,
                                op,
                                format!("remaining_time {left:?} > TTL {t:?}"),
                            ));
                        }
                    }
                }
            }
            Op::Release { owner, key } => {
                let expected_ok = live(&model, key) == Some(owner);
                let got = locks[owner][key].release().await;
                owned_answer(&got, expected_ok, "release (store delete)", "release", "")
                    .map_err(|e| fail(i, op, format!("{e} (model: {state})")))?;
                if expected_ok {
                    model.remove(&key);
                }
            }
            Op::Extend { owner, key, units } => {
                let expected_ok = live(&model, key) == Some(owner);
                let d = unit * units;
                let sent = Instant::now();
                let got = locks[owner][key].extend(Some(d)).await;
                let recv = Instant::now();
                let stole = " (expired or another's: extend revived or stole a lock)";
                owned_answer(&got, expected_ok, "extend", "extend", stole)
                    .map_err(|e| fail(i, op, format!("{e} (model: {state})")))?;
                if expected_ok {
                    model.insert(
                        key,
                        Held {
                            owner,
                            expiry: Some((sent + d, recv + d)),
                        },
                    );
                }
            }
            Op::ForceRelease { owner, key } => {
                locks[owner][key]
                    .force_release()
                    .await
                    .map_err(|e| fail(i, op, format!("force_release failed: {e}")))?;
                model.remove(&key);
            }
            Op::Exists { key } => {
                let expected = live(&model, key).is_some();
                let got = locks[0][key]
                    .is_locked()
                    .await
                    .map_err(|e| fail(i, op, format!("is_locked failed: {e}")))?;
                if got != expected {
                    return Err(fail(
                        i,
                        op,
                        format!(
                            "is_locked (store exists) returned {got}, the model expects {expected} (model: {state})"
                        ),
                    ));
                }
            }
            Op::Advance { units } => match clock {
                Clock::Paused => tokio::time::advance(unit * units).await,
                Clock::Real { .. } => tokio::time::sleep(unit * units).await,
            },
        }
        // Paused clock: the holder's local view agrees exactly with the model.
        if clock == Clock::Paused {
            let now = Instant::now();
            for (&k, h) in &model {
                if let Some((lo, _)) = h.expiry.filter(|(lo, _)| now < *lo) {
                    let lock = &locks[h.owner][k];
                    if lock.is_expired() || lock.remaining_time() != Some(lo - now) {
                        return Err(fail(
                            i,
                            op,
                            format!(
                                "the holder's local view disagrees: remaining_time {:?}, model {:?}",
                                lock.remaining_time(),
                                lo - now
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// What is wrong with the answer `got` to a release or an extend by an owner that, by
/// the model, holds the key (`expected_ok`) or not; `stole` explains a wrong `Ok`.
fn owned_answer(
    got: &Result<(), LockError>,
    expected_ok: bool,
    what: &str,
    call: &str,
    stole: &str,
) -> Result<(), String> {
    match got {
        Ok(()) if !expected_ok => Err(format!(
            "{what} succeeded for an owner that does not hold the key{stole}"
        )),
        Err(e) if e.is_not_owned() && expected_ok => {
            Err(format!("{what} answered NotOwned to the holder"))
        }
        Err(e) if !e.is_not_owned() => Err(format!("{call} failed: {e}")),
        _ => Ok(()),
    }
}

fn seed_of(config: &ModelConfig) -> u64 {
    config.seed.unwrap_or_else(|| {
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        u64::from_le_bytes(bytes)
    })
}

fn with_sequence(failure: CaseFailure, seed: u64, n: usize, ops: &[Op]) -> CaseFailure {
    let step: usize = failure
        .0
        .strip_prefix("step ")
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(ops.len());
    let upto = &ops[..(step + 1).min(ops.len())];
    CaseFailure(format!(
        "the store disagrees with the model: {failure}\n  sequence {n} of seed {seed:#x}, up to the failing step: {upto:?}"
    ))
}

/// Check `store` against the model in real time (any store). Runs inside the caller's
/// tokio runtime.
pub async fn check(
    store: Arc<dyn LockStore>,
    config: &ModelConfig,
) -> Result<ModelReport, CaseFailure> {
    let seed = seed_of(config);
    let mut rng = Rng::new(seed);
    let clock = match config.clock {
        Clock::Paused => Clock::Real {
            before: Duration::from_millis(250),
            after: Duration::from_millis(80),
        },
        real => real,
    };
    let mut steps = 0;
    for n in 0..config.sequences {
        let ops = sequence(&mut rng, config.max_steps);
        steps += run_sequence(store.clone(), &ops, clock, config.unit)
            .await
            .map_err(|f| with_sequence(f, seed, n, &ops))?;
    }
    Ok(ModelReport {
        sequences: config.sequences,
        steps,
        seed,
    })
}

/// Check stores built by `make` (a fresh one per sequence) against the model under
/// tokio's paused clock. Blocking: builds a paused runtime per sequence, so call it
/// from a plain `#[test]`. Only for stores that read tokio's clock.
pub fn check_paused(
    make: impl Fn() -> Arc<dyn LockStore>,
    config: &ModelConfig,
) -> Result<ModelReport, CaseFailure> {
    let seed = seed_of(config);
    let mut rng = Rng::new(seed);
    let mut steps = 0;
    for n in 0..config.sequences {
        let ops = sequence(&mut rng, config.max_steps);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|e| CaseFailure(format!("could not build a paused runtime: {e}")))?;
        steps += rt
            .block_on(run_sequence(make(), &ops, Clock::Paused, config.unit))
            .map_err(|f| with_sequence(f, seed, n, &ops))?;
    }
    Ok(ModelReport {
        sequences: config.sequences,
        steps,
        seed,
    })
}
