//! A store that answers in place ([`ImmediateStore`]): a `Lock` acquires and releases
//! through it, never around a wrapper that changes acquiring, and still one operation at
//! a time per lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lock_core::{
    AcquireResult, Acquisition, Checked, DelegatingStore, FactoryOptions, ImmediateStore,
    LockError, LockFactory, LockStore, async_trait, validate,
};
use tokio::time::{Instant, sleep};

/// Key → (owner, expiry), reachable in place and through the async methods; counts
/// which path each call took, and logs the order of the calls.
#[derive(Default)]
struct Inline {
    map: Mutex<HashMap<String, (String, Instant)>>,
    in_place: AtomicUsize,
    async_calls: AtomicUsize,
    log: Mutex<Vec<&'static str>>,
}

impl Inline {
    fn note(&self, what: &'static str) {
        self.log.lock().unwrap().push(what);
    }

    fn acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap();
        if map.get(key).is_some_and(|(_, at)| *at > now) {
            return Ok(Acquisition::denied(None));
        }
        let at = now + ttl.unwrap_or(Duration::from_secs(3600));
        map.insert(key.to_owned(), (owner.to_owned(), at));
        self.note("acquire");
        Ok(Acquisition::acquired())
    }

    fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap();
        match map.get(key) {
            Some((o, at)) if o == owner && *at > now => {
                map.remove(key);
                self.note("delete");
                Ok(())
            }
            _ => Err(LockError::NotOwned),
        }
    }
}

impl ImmediateStore for Inline {
    fn try_acquire_now(
        &self,
        lock: Checked<'_>,
        ttl: Option<Duration>,
        _: Instant,
    ) -> AcquireResult {
        validate::ttl(ttl)?;
        self.in_place.fetch_add(1, Ordering::SeqCst);
        self.acquire(lock.key(), lock.owner(), ttl)
    }

    fn delete_now(&self, lock: Checked<'_>, _: Instant) -> Result<(), LockError> {
        self.in_place.fetch_add(1, Ordering::SeqCst);
        self.delete(lock.key(), lock.owner())
    }
}

#[async_trait]
impl LockStore for Inline {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        validate::save_input(key, owner, ttl)?;
        self.async_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.acquire(key, owner, ttl)?.acquired)
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        self.async_calls.fetch_add(1, Ordering::SeqCst);
        Inline::delete(self, key, owner)
    }
    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        self.map.lock().unwrap().remove(key);
        Ok(())
    }
    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        let now = Instant::now();
        Ok(self
            .map
            .lock()
            .unwrap()
            .get(key)
            .is_some_and(|(_, at)| *at > now))
    }
    /// Slow: the answer comes 50 ms after the extension was applied.
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        let now = Instant::now();
        let applied = match self.map.lock().unwrap().get_mut(key) {
            Some((o, at)) if o == owner && *at > now => {
                *at = now + duration;
                Ok(())
            }
            _ => Err(LockError::NotOwned),
        };
        sleep(Duration::from_millis(50)).await;
        self.note("extend answered");
        applied
    }
    fn immediate(&self) -> Option<&dyn ImmediateStore> {
        Some(self)
    }
}

fn factory(store: Arc<dyn LockStore>) -> LockFactory {
    LockFactory::from_shared(store, FactoryOptions::default())
}

#[tokio::test]
async fn a_lock_acquires_and_releases_in_place() {
    let store = Arc::new(Inline::default());
    let lock = factory(store.clone()).create_lock("k").unwrap();
    assert!(lock.acquire_immediately().await.unwrap());
    assert!(
        !factory(store.clone())
            .create_lock("k")
            .unwrap()
            .acquire_immediately()
            .await
            .unwrap()
    );
    lock.release().await.unwrap();
    assert!(lock.release().await.unwrap_err().is_not_owned());
    assert_eq!(
        store.in_place.load(Ordering::SeqCst),
        4,
        "acquire, denied acquire, release, release of nothing held"
    );
    assert_eq!(
        store.async_calls.load(Ordering::SeqCst),
        0,
        "a future was used"
    );
}

/// Refuses every acquire: a wrapper that changes acquiring.
struct Refusing(Arc<Inline>);

#[async_trait]
impl DelegatingStore for Refusing {
    fn inner(&self) -> &dyn LockStore {
        &*self.0
    }
    async fn try_acquire(&self, _: &str, _: &str, _: Option<Duration>) -> AcquireResult {
        Ok(Acquisition::denied(None))
    }
}

#[tokio::test]
async fn a_wrapper_that_changes_acquiring_is_not_bypassed() {
    let inner = Arc::new(Inline::default());
    let wrapper = Arc::new(Refusing(inner.clone()));
    assert!(
        wrapper.immediate().is_none(),
        "a wrapper hands on the inner store's"
    );
    let lock = factory(wrapper).create_lock("k").unwrap();
    assert!(
        !lock.acquire_immediately().await.unwrap(),
        "the wrapper refuses every acquire, yet the lock acquired"
    );
    assert_eq!(inner.in_place.load(Ordering::SeqCst), 0);
}

/// The in-place path still takes the lock's operation mutex: a release issued while a
/// clone's extension is in flight runs after that extension, not in the middle of it.
#[tokio::test(start_paused = true)]
async fn in_place_calls_wait_for_an_operation_in_flight() {
    let store = Arc::new(Inline::default());
    let lock = factory(store.clone()).create_lock("k").unwrap();
    assert!(lock.acquire_immediately().await.unwrap());
    let extending = tokio::spawn({
        let lock = lock.clone();
        async move { lock.extend(Some(Duration::from_secs(60))).await }
    });
    sleep(Duration::from_millis(10)).await; // the extension is in flight
    lock.release().await.unwrap();
    extending.await.unwrap().unwrap();
    assert_eq!(
        *store.log.lock().unwrap(),
        ["acquire", "extend answered", "delete"],
        "the release did not wait for the extension in flight"
    );
}

#[test]
fn checked_input_is_checked() {
    assert!(Checked::new("k", "owner_1-A").is_ok());
    for (key, owner) in [("", "o"), ("a\0b", "o"), ("k", ""), ("k", "a b")] {
        let error = Checked::new(key, owner).unwrap_err();
        assert_eq!(error.code(), "E_INVALID_ARGUMENTS", "{key:?} / {owner:?}");
    }
    let shown = format!("{:?}", Checked::new("k", "secret0owner").unwrap());
    assert!(!shown.contains("secret0owner"), "{shown}");
}
