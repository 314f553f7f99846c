//! [`ImmediateStore`]: the optional capability of a store that answers in place, and
//! [`Checked`], the input it receives already checked.

use std::time::Duration;

use tokio::time::Instant;

use crate::outcome::AcquireResult;
use crate::{LockError, validate};

/// A key and an owner inside [`validate`](crate::validate)'s domain: only
/// [`Checked::new`] (which checks them) and `lock-core` itself (for a
/// [`Lock`](crate::Lock)'s own key and owner, checked when the lock was made) build one,
/// so a store that receives it need not check them again.
#[derive(Clone, Copy)]
pub struct Checked<'a> {
    key: &'a str,
    owner: &'a str,
}

impl<'a> Checked<'a> {
    /// `key` and `owner`, checked ([`validate::delete_input`]): `InvalidArgument` when
    /// either is outside the domain.
    ///
    /// ```
    /// use lock_core::Checked;
    /// assert!(Checked::new("orders.1", "0123abcd").is_ok());
    /// assert!(Checked::new("", "0123abcd").is_err());
    /// assert!(Checked::new("orders.1", "not an owner").is_err());
    /// ```
    pub fn new(key: &'a str, owner: &'a str) -> Result<Self, LockError> {
        validate::delete_input(key, owner)?;
        Ok(Checked { key, owner })
    }

    /// A lock's own key and owner, checked when it was made.
    pub(crate) fn trusted(key: &'a str, owner: &'a str) -> Self {
        debug_assert!(validate::delete_input(key, owner).is_ok());
        Checked { key, owner }
    }

    /// The key.
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The owner token (a capability: never log it).
    pub fn owner(&self) -> &'a str {
        self.owner
    }
}

impl std::fmt::Debug for Checked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("key", &self.key)
            .field("owner", &"<redacted>")
            .finish()
    }
}

/// A store whose acquire and delete complete without waiting (its state lives in this
/// process): an optional capability, offered through
/// [`LockStore::immediate`](crate::LockStore::immediate).
///
/// A [`Lock`](crate::Lock) on such a store calls these instead of the async
/// [`try_acquire`](crate::LockStore::try_acquire) and [`delete`](crate::LockStore::delete)
/// whenever it can take its operation mutex without waiting, so a cycle boxes no
/// future and checks no input twice. Each method keeps every rule of its async
/// counterpart (the conformance cases that go through a `Lock` check them on this
/// path), and:
/// * it answers for the same state as the async methods, at once: never blocking on
///   I/O, only on a short critical section;
/// * an `Err` changes nothing (there is no future to drop half-way, and nothing for the
///   caller to undo).
///
/// `now` is a reading of tokio's clock ([`tokio::time::Instant`]) the caller took for
/// this operation, just before the call. A store whose expiry follows that clock judges
/// the call by it instead of reading the clock again: the operation then takes effect as
/// of `now`, a moment within it.
pub trait ImmediateStore: Send + Sync {
    /// [`LockStore::try_acquire`](crate::LockStore::try_acquire), at once. `ttl` is not
    /// checked by the caller: check it ([`validate::ttl`]).
    fn try_acquire_now(
        &self,
        lock: Checked<'_>,
        ttl: Option<Duration>,
        now: Instant,
    ) -> AcquireResult;

    /// [`LockStore::delete`](crate::LockStore::delete), at once.
    fn delete_now(&self, lock: Checked<'_>, now: Instant) -> Result<(), LockError>;
}
