use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;

use crate::LockError;

/// A future that completes when a lock key *may* have been released.
///
/// Returned by [`LockStore::release_listener`]. It must be registered when it is
/// created (not when first polled), so that a release between the listener's
/// creation and the waiter's next `save` is not missed. Spurious completions are
/// harmless: the waiter simply tries again.
pub type ReleaseFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What a store can do beyond the five required methods.
///
/// Stores declare their capabilities so that callers (and the testkit) know what
/// to expect. Every flag defaults to `false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`LockStore::release_listener`] returns a listener: waiters are woken on release.
    pub release_notification: bool,
    /// [`LockStore::try_acquire`] mints a fencing token with every successful acquire.
    pub fencing_tokens: bool,
    /// [`LockStore::try_acquire`] reports how long the current holder's lock has left
    /// when it denies an acquire.
    pub holder_ttl: bool,
}

impl Capabilities {
    /// No optional capability (the default for a store written against the five methods).
    pub const NONE: Capabilities = Capabilities {
        release_notification: false,
        fencing_tokens: false,
        holder_ttl: false,
    };

    /// Every optional capability.
    pub const ALL: Capabilities = Capabilities {
        release_notification: true,
        fencing_tokens: true,
        holder_ttl: true,
    };

    /// Builder-style setter for [`Capabilities::release_notification`].
    pub const fn with_release_notification(mut self, on: bool) -> Self {
        self.release_notification = on;
        self
    }

    /// Builder-style setter for [`Capabilities::fencing_tokens`].
    pub const fn with_fencing_tokens(mut self, on: bool) -> Self {
        self.fencing_tokens = on;
        self
    }

    /// Builder-style setter for [`Capabilities::holder_ttl`].
    pub const fn with_holder_ttl(mut self, on: bool) -> Self {
        self.holder_ttl = on;
        self
    }
}

/// The outcome of one acquire attempt ([`LockStore::try_acquire`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Acquisition {
    /// The lock was saved for this owner.
    pub acquired: bool,
    /// When acquired on a store with fencing tokens: a number strictly greater than
    /// every token this store issued before for the same key.
    pub fencing_token: Option<u64>,
    /// When denied on a store that can tell: how long the current holder's lock has
    /// left. `None` when unknown or when the holder's lock never expires.
    pub holder_expires_in: Option<Duration>,
}

impl Acquisition {
    /// Acquired, without a fencing token.
    pub const fn acquired() -> Self {
        Acquisition {
            acquired: true,
            fencing_token: None,
            holder_expires_in: None,
        }
    }

    /// Acquired, with a fencing token.
    pub const fn acquired_with_token(token: u64) -> Self {
        Acquisition {
            acquired: true,
            fencing_token: Some(token),
            holder_expires_in: None,
        }
    }

    /// Denied; `holder_expires_in` is what the store knows of the holder's remaining time.
    pub const fn denied(holder_expires_in: Option<Duration>) -> Self {
        Acquisition {
            acquired: false,
            fencing_token: None,
            holder_expires_in,
        }
    }
}

/// Where locks live. Implement the five required methods to plug in a new backend;
/// the provided methods are optional capabilities with safe defaults.
///
/// Expiry must be judged by the store's own clock (Redis TTL, the database's
/// `now()`), never by the application's clock.
///
/// # Example: the seed's no-op store
///
/// ```
/// use std::time::Duration;
/// use lock_core::{async_trait, LockError, LockStore};
///
/// struct NoopStore;
///
/// #[async_trait]
/// impl LockStore for NoopStore {
///     async fn save(&self, _key: &str, _owner: &str, _ttl: Option<Duration>) -> Result<bool, LockError> {
///         Ok(false)
///     }
///     async fn delete(&self, _key: &str, _owner: &str) -> Result<(), LockError> {
///         Err(LockError::NotOwned)
///     }
///     async fn force_delete(&self, _key: &str) -> Result<(), LockError> {
///         Ok(())
///     }
///     async fn exists(&self, _key: &str) -> Result<bool, LockError> {
///         Ok(false)
///     }
///     async fn extend(&self, _key: &str, _owner: &str, _duration: Duration) -> Result<(), LockError> {
///         Err(LockError::NotOwned)
///     }
/// }
/// ```
#[async_trait]
pub trait LockStore: Send + Sync + 'static {
    /// Save the lock. `Ok(false)` if `key` is held by anyone (this owner included) and
    /// not expired. `ttl: None` saves a lock that never expires.
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError>;

    /// Delete if held by `owner`; otherwise (held by another, or not held at all)
    /// `Err(LockError::NotOwned)`.
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError>;

    /// Delete whoever holds it. Not held: `Ok(())`.
    async fn force_delete(&self, key: &str) -> Result<(), LockError>;

    /// Held by anyone and not expired.
    async fn exists(&self, key: &str) -> Result<bool, LockError>;

    /// Reset expiry to now + `duration` if held (and not expired) by `owner`; otherwise
    /// `Err(LockError::NotOwned)`.
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError>;

    // ---- optional capabilities -------------------------------------------------

    /// A short name for logs (`"memory"`, `"redis"`, `"postgres"`, …).
    fn name(&self) -> &str {
        "custom"
    }

    /// The optional capabilities this store implements.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// One acquire attempt, reporting more than [`LockStore::save`] can: a fencing token
    /// minted atomically with the acquire, and the holder's remaining time on denial.
    ///
    /// The default calls `save` and reports neither.
    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        Ok(if self.save(key, owner, ttl).await? {
            Acquisition::acquired()
        } else {
            Acquisition::denied(None)
        })
    }

    /// A listener that completes when `key` may have been released, or `None` when the
    /// store cannot notify (waiters then poll every retry `delay`).
    ///
    /// Called *before* an acquire attempt; see [`ReleaseFuture`] for the registration rule.
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        let _ = key;
        None
    }
}

#[async_trait]
impl<S: LockStore + ?Sized> LockStore for std::sync::Arc<S> {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        (**self).save(key, owner, ttl).await
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        (**self).delete(key, owner).await
    }
    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        (**self).force_delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        (**self).exists(key).await
    }
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        (**self).extend(key, owner, duration).await
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        (**self).try_acquire(key, owner, ttl).await
    }
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        (**self).release_listener(key)
    }
}
