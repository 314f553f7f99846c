//! A minimal reference store, for documentation examples and as the executable model
//! of the store contract in tests (feature `test-util`). Applications should use
//! `lock-store-memory`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::{LockError, LockStore, PermitStore, PermitTable, validate};

/// The store contract in its simplest form: a map from key to `(owner, expiry)` judged
/// by tokio's clock (so `tokio::time::pause` controls it in tests). No notification, no
/// fencing, no reclamation of expired entries.
#[derive(Debug, Default)]
pub struct TestStore {
    entries: Mutex<HashMap<String, (String, Option<Instant>)>>,
    permits: PermitTable,
}

impl TestStore {
    fn live<'a>(
        map: &'a mut HashMap<String, (String, Option<Instant>)>,
        key: &str,
    ) -> Option<&'a mut (String, Option<Instant>)> {
        let now = Instant::now();
        map.get_mut(key)
            .filter(|(_, exp)| exp.is_none_or(|e| e > now))
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (String, Option<Instant>)>) -> T) -> T {
        f(&mut self.entries.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn deadline(ttl: Duration) -> Result<Instant, LockError> {
    Instant::now()
        .checked_add(ttl)
        .ok_or_else(|| LockError::invalid(format!("TTL of {ttl:?} is beyond the clock's range")))
}

#[async_trait]
impl LockStore for TestStore {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        validate::save_input(key, owner, ttl)?;
        let expires_at = ttl.map(deadline).transpose()?;
        self.with(|map| {
            if Self::live(map, key).is_some() {
                return Ok(false);
            }
            map.insert(key.into(), (owner.into(), expires_at));
            Ok(true)
        })
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        self.with(|map| match Self::live(map, key) {
            Some((o, _)) if o == owner => {
                map.remove(key);
                Ok(())
            }
            _ => Err(LockError::NotOwned),
        })
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        self.with(|map| map.remove(key));
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        validate::key(key)?;
        Ok(self.with(|map| Self::live(map, key).is_some()))
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        let expires_at = deadline(duration)?;
        self.with(|map| match Self::live(map, key) {
            Some((o, exp)) if o == owner => {
                *exp = Some(expires_at);
                Ok(())
            }
            _ => Err(LockError::NotOwned),
        })
    }

    fn name(&self) -> &str {
        "test"
    }

    fn permits(&self) -> Option<&dyn PermitStore> {
        Some(&self.permits)
    }
}
