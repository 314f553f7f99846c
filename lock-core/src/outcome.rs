//! What store calls answer: an acquire attempt's outcome and a release listener. A leaf
//! module (it uses nothing else of the crate but the error), so that the store contract
//! (`store`), the permit capability (`permits`) and release notification (`notify`) all
//! build on it without depending on each other in a circle.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::LockError;

/// A future that completes when a lock key *may* have been released.
///
/// Returned by [`LockStore::release_listener`](crate::LockStore::release_listener). It must be registered when it is
/// created (not when first polled), so that a release between the listener's
/// creation and the waiter's next `save` is not missed.
///
/// The rule a store keeps: a listener registered before a denied `save` completes on the
/// next `delete` or `force_delete` of the key, on every instance, for every listener of
/// the key, and only once the key is removed (a wake-up sent before the removal is
/// consumed by a waiter that then finds the key still held, registers again, and is
/// never woken). Extra, spurious completions are harmless: the waiter simply tries again
/// (`delete_wakes_release_listeners`, `force_delete_wakes_release_listeners`,
/// `release_listener_is_registered_at_creation`).
pub type ReleaseFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What [`LockStore::try_acquire`](crate::LockStore::try_acquire) returns: the outcome of one acquire attempt, or the
/// store's error.
pub type AcquireResult = Result<Acquisition, LockError>;

/// The outcome of one acquire attempt ([`LockStore::try_acquire`](crate::LockStore::try_acquire)).
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
