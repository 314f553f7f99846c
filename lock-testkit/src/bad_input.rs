//! The input a store may receive, and may reject: a table of calls outside
//! [`lock_core::validate`]'s domain (plus the domain's extremes, which must work), and a
//! table of odd but valid keys that must be treated as data.
//!
//! lock-core validates before it calls a store, so these reach a store only when it is
//! called directly through [`LockStore`]. A store may reject out-of-domain input with
//! [`LockError::InvalidArgument`] (the bundled stores call `lock_core::validate` first)
//! or handle it correctly; it must not panic, hang, fail with another error, or answer
//! a wrong `Ok`.
//!
//! ```no_run
//! # async fn f() {
//! let store = std::sync::Arc::new(lock_store_memory::MemoryStore::new());
//! let problems = lock_testkit::bad_input::check_store(store, "bad-input-test:").await;
//! assert!(problems.is_empty(), "{problems:#?}");
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use lock_core::{FactoryOptions, LockError, LockFactory, LockStore, RetryConfig};

use crate::CaseFailure;

/// A valid owner.
const OWNER: &str = "0123456789abcdef0123456789abcdef";
/// A TTL that does not run out during a check.
const LONG: Duration = Duration::from_secs(60);
/// Every call must answer within this.
const BOUND: Duration = Duration::from_secs(10);

/// One store call of the table.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Call {
    /// `save(key, owner, ttl)`.
    Save {
        /// The key, after the prefix.
        key: Key,
        /// The owner.
        owner: &'static str,
        /// The TTL.
        ttl: Option<Duration>,
    },
    /// `try_acquire(key, owner, ttl)`.
    TryAcquire {
        /// The key, after the prefix.
        key: Key,
        /// The TTL.
        ttl: Option<Duration>,
    },
    /// `extend` of a held lock by `by`.
    Extend {
        /// The extension.
        by: Duration,
    },
    /// `exists(key)`.
    Exists(Key),
    /// `delete(key, owner)`.
    Delete(Key),
    /// `force_delete(key)`.
    ForceDelete(Key),
    /// In-domain extremes (a [`lock_core::MAX_KEY_LEN`]-byte key, a
    /// [`lock_core::MAX_OWNER_LEN`]-character owner, a TTL of [`lock_core::MAX_TTL`]):
    /// must work.
    Edge,
}

/// A key of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Key {
    /// `prefix + suffix`.
    Prefixed(&'static str),
    /// The empty key (no prefix).
    Empty,
    /// `prefix` followed by more than [`lock_core::MAX_KEY_LEN`] bytes.
    TooLong,
}

/// Every call tried, with what it is.
pub const TABLE: &[(&str, Call)] = &[
    (
        "save with an empty key",
        Call::Save {
            key: Key::Empty,
            owner: OWNER,
            ttl: Some(LONG),
        },
    ),
    (
        "save with a NUL in the key",
        Call::Save {
            key: Key::Prefixed("a\0b"),
            owner: OWNER,
            ttl: Some(LONG),
        },
    ),
    (
        "save with a key over MAX_KEY_LEN",
        Call::Save {
            key: Key::TooLong,
            owner: OWNER,
            ttl: Some(LONG),
        },
    ),
    (
        "save with an empty owner",
        Call::Save {
            key: Key::Prefixed("o1"),
            owner: "",
            ttl: Some(LONG),
        },
    ),
    (
        "save with a space in the owner",
        Call::Save {
            key: Key::Prefixed("o2"),
            owner: "a b",
            ttl: Some(LONG),
        },
    ),
    (
        "save with a zero TTL",
        Call::Save {
            key: Key::Prefixed("t0"),
            owner: OWNER,
            ttl: Some(Duration::ZERO),
        },
    ),
    (
        "save with a TTL under 1 ms",
        Call::Save {
            key: Key::Prefixed("t1"),
            owner: OWNER,
            ttl: Some(Duration::from_micros(999)),
        },
    ),
    (
        "save with a TTL over MAX_TTL",
        Call::Save {
            key: Key::Prefixed("t2"),
            owner: OWNER,
            ttl: Some(Duration::from_secs(10 * 366 * 24 * 3600)),
        },
    ),
    (
        "save with a TTL of u64::MAX seconds",
        Call::Save {
            key: Key::Prefixed("t3"),
            owner: OWNER,
            ttl: Some(Duration::from_secs(u64::MAX)),
        },
    ),
    (
        "save with TTL Duration::MAX",
        Call::Save {
            key: Key::Prefixed("t4"),
            owner: OWNER,
            ttl: Some(Duration::MAX),
        },
    ),
    (
        "try_acquire with TTL Duration::MAX",
        Call::TryAcquire {
            key: Key::Prefixed("t5"),
            ttl: Some(Duration::MAX),
        },
    ),
    (
        "extend by Duration::ZERO",
        Call::Extend { by: Duration::ZERO },
    ),
    (
        "extend by Duration::MAX",
        Call::Extend { by: Duration::MAX },
    ),
    ("exists of an empty key", Call::Exists(Key::Empty)),
    (
        "exists of a key over MAX_KEY_LEN",
        Call::Exists(Key::TooLong),
    ),
    ("delete of an empty key", Call::Delete(Key::Empty)),
    (
        "force_delete of an empty key",
        Call::ForceDelete(Key::Empty),
    ),
    (
        "force_delete of a key over MAX_KEY_LEN",
        Call::ForceDelete(Key::TooLong),
    ),
    ("save at the edge of the domain", Call::Edge),
];

/// Odd but valid keys and a sibling a pattern-interpreting store would confuse them with.
pub const ODD_KEYS: &[(&str, &str)] = &[
    ("'; DROP TABLE locks; --\"`", "'"),
    ("a%", "abc"),
    ("a_c", "abc"),
    ("a*?[x]", "abc?x"),
    ("{x}}{", "{x}"),
    ("a\r\nSET x 1\r\n", "a"),
    (
        "Commande-\u{c9}-\u{65e5}\u{672c}-\u{1f512}",
        "commande-e-\u{65e5}\u{672c}-\u{1f512}",
    ),
    ("trailing ", "trailing"),
];

fn key_of(prefix: &str, key: Key) -> String {
    match key {
        Key::Prefixed(s) => format!("{prefix}{s}"),
        Key::Empty => String::new(),
        Key::TooLong => format!("{prefix}{}", "x".repeat(lock_core::MAX_KEY_LEN + 1)),
    }
}

fn rejected_or<T>(got: Result<T, LockError>) -> Result<Option<T>, String> {
    match got {
        Ok(v) => Ok(Some(v)),
        Err(LockError::InvalidArgument(_)) => Ok(None),
        Err(e) => Err(format!(
            "failed with {e} ({}) instead of InvalidArgument",
            e.code()
        )),
    }
}

/// Run every call of [`TABLE`] on `store` (keys under `prefix`), one after the other
/// (several share the empty key), each on its own task so that a panic is reported
/// against it. Returns what went wrong, one line per call.
pub async fn check_store(store: Arc<dyn LockStore>, prefix: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for &(what, call) in TABLE {
        let (store, prefix) = (store.clone(), prefix.to_owned());
        let task = tokio::spawn(async move { run(&*store, &prefix, call).await });
        match tokio::time::timeout(BOUND, task).await {
            Err(_) => problems.push(format!("{what}: no answer within {BOUND:?}")),
            Ok(Err(join)) if join.is_panic() => problems.push(format!("{what}: panicked")),
            Ok(Err(join)) => problems.push(format!("{what}: task failed: {join}")),
            Ok(Ok(Err(wrong))) => problems.push(format!("{what}: {wrong}")),
            Ok(Ok(Ok(()))) => {}
        }
    }
    problems
}

async fn run(s: &dyn LockStore, prefix: &str, call: Call) -> Result<(), String> {
    let e = |r: Result<bool, LockError>| r.map_err(|e| format!("{e}"));
    match call {
        Call::Save { key, ttl, .. } | Call::TryAcquire { key, ttl } => {
            let k = key_of(prefix, key);
            let got = match call {
                Call::Save { owner, .. } => rejected_or(s.save(&k, owner, ttl).await)?,
                _ => rejected_or(s.try_acquire(&k, OWNER, ttl).await.map(|a| a.acquired))?,
            };
            let Some(saved) = got else {
                return Ok(());
            };
            if !saved {
                let _ = s.force_delete(&k).await;
                return Err("accepted, but returned false for a free key".into());
            }
            // Accepted: it must now behave as a lock with that TTL.
            let short = ttl.is_some_and(|t| t < Duration::from_millis(1));
            if short {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let held = e(s.exists(&k).await)?;
            let _ = s.force_delete(&k).await;
            match (short, held) {
                (true, true) => Err(format!(
                    "accepted a TTL of {ttl:?} and the lock is still held 200 ms later (taken as \"never expires\"?)"
                )),
                (false, false) => Err("returned true, but the lock is not held".into()),
                _ => Ok(()),
            }
        }
        Call::Extend { by } => {
            let k = format!("{prefix}extend-{}", by.as_nanos() % 1000);
            if !e(s.save(&k, OWNER, Some(Duration::from_secs(2))).await)? {
                return Err("save of a free key returned false".into());
            }
            let got = rejected_or(s.extend(&k, OWNER, by).await);
            let accepted = matches!(got, Ok(Some(())));
            if accepted && by < Duration::from_millis(1) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let held = e(s.exists(&k).await);
            let _ = s.force_delete(&k).await;
            got?;
            match (accepted, by < Duration::from_millis(1), held?) {
                (true, true, true) => Err(format!(
                    "extend by {by:?} returned Ok and the lock is still held 200 ms later"
                )),
                (false, _, false) => Err("a rejected extend dropped the lock".into()),
                (true, false, false) => Err("extend returned Ok, but the lock is not held".into()),
                _ => Ok(()),
            }
        }
        Call::Exists(key) => rejected_or(s.exists(&key_of(prefix, key)).await).map(|_| ()),
        Call::Delete(key) => match s.delete(&key_of(prefix, key), OWNER).await {
            Err(LockError::NotOwned) | Err(LockError::InvalidArgument(_)) => Ok(()),
            other => Err(format!(
                "returned {other:?}, expected NotOwned or InvalidArgument"
            )),
        },
        Call::ForceDelete(key) => {
            rejected_or(s.force_delete(&key_of(prefix, key)).await).map(|_| ())
        }
        Call::Edge => {
            let fill = lock_core::MAX_KEY_LEN.saturating_sub(prefix.len());
            let k = format!("{prefix}{}", "y".repeat(fill));
            let o = "o".repeat(lock_core::MAX_OWNER_LEN);
            let saved = s.save(&k, &o, Some(lock_core::MAX_TTL)).await;
            let held = s.exists(&k).await;
            let deleted = s.delete(&k, &o).await;
            let _ = s.force_delete(&k).await;
            match (saved, held, deleted) {
                (Ok(true), Ok(true), Ok(())) => Ok(()),
                (saved, held, deleted) => Err(format!(
                    "a {}-byte key, a {}-character owner and a TTL of MAX_TTL are in the domain and must work: save {saved:?}, exists {held:?}, delete {deleted:?}",
                    k.len(),
                    o.len()
                )),
            }
        }
    }
}

fn bounded<F: std::future::Future>(fut: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(BOUND, fut)
}

/// `fut`'s answer within [`BOUND`]; no answer in time, or an error, says which call.
async fn answer(
    fut: impl std::future::Future<Output = Result<bool, LockError>>,
    what: &str,
) -> Result<bool, String> {
    match bounded(fut).await {
        Ok(got) => got.map_err(|e| format!("{what} failed: {e} ({})", e.code())),
        Err(_) => Err(format!("{what}: no answer within {BOUND:?}")),
    }
}

/// A key that is odd but valid works through [`lock_core::Lock`], and the store treats it
/// as data: it does not match `sibling`.
pub async fn odd_key_works(
    store: Arc<dyn LockStore>,
    prefix: &str,
    odd: &str,
    sibling: &str,
) -> Result<(), CaseFailure> {
    let f = LockFactory::from_shared(
        store,
        FactoryOptions::default()
            .retry(RetryConfig::default().timeout(Duration::from_secs(2)))
            .default_ttl(Some(Duration::from_secs(30))),
    );
    let fail = |what: String| CaseFailure(format!("odd key {odd:?} (beside {sibling:?}): {what}"));
    let call = |r: Result<bool, LockError>, what: &str| {
        r.map_err(|e| fail(format!("{what} failed: {e} ({})", e.code())))
    };
    let (key, other) = (format!("{prefix}{odd}"), format!("{prefix}{sibling}"));
    let create = |k: &str| {
        f.create_lock(k.to_owned())
            .map_err(|e| fail(format!("create_lock refused a valid key: {e}")))
    };
    let (a, b, c) = (create(&key)?, create(&other)?, create(&key)?);
    // Each step in turn: the lock, whether it acquires (or else asks `is_locked`), the
    // answer a correct store gives, and what a wrong answer means.
    let steps = [
        (&a, true, true, "could not acquire it"),
        (
            &b,
            false,
            false,
            "exists: the sibling is seen as locked (the key was taken as a pattern?)",
        ),
        (&b, true, true, "save: the sibling is blocked by it"),
        (&c, true, false, "save: two owners held it at once"),
    ];
    let result = async {
        for (lock, acquire, expected, wrong) in steps {
            let got = if acquire {
                answer(lock.acquire_immediately(), "acquire").await
            } else {
                answer(lock.is_locked(), "is_locked").await
            };
            if got.map_err(&fail)? != expected {
                return Err(fail(wrong.into()));
            }
        }
        match c.release().await {
            Err(LockError::NotOwned) => {}
            other => return Err(fail(format!("delete by a non-owner returned {other:?}"))),
        }
        a.release()
            .await
            .map_err(|e| fail(format!("delete by the holder failed: {e}")))?;
        if !call(b.is_locked().await, "is_locked")? {
            return Err(fail("delete: releasing it released the sibling".into()));
        }
        Ok(())
    }
    .await;
    let _ = a.force_release().await;
    let _ = b.force_release().await;
    result
}
