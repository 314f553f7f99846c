use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;

use crate::LockError;
use crate::immediate::ImmediateStore;
pub(crate) use crate::outcome::{AcquireResult, Acquisition, ReleaseFuture};
use crate::permits::PermitStore;

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

/// Where locks live. Implement the five required methods to plug in a new backend;
/// the provided methods are optional capabilities with safe defaults.
///
/// Expiry must be judged by one clock shared by every client of the store, never by each
/// application's own: Redis's (`PX`), the database server's on PostgreSQL and MySQL, and
/// on SQLite, which has no server, the machine's wall clock (read in each process, shared
/// by all processes of the machine; a clock step forward expires locks early, a step
/// back keeps them longer).
///
/// Each method's documentation states its rules and names the conformance case of
/// `lock-testkit` that checks each one; run them all on a store with
/// `lock_testkit::store_tests!`. Every instance of a store that reaches the same backend
/// shares its locks (`instances_of_one_case_share_state`).
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
    ///
    /// The contract (each rule names the conformance case of `lock-testkit` that checks it):
    /// * atomic: of any number of concurrent saves of a free or expired key, exactly one
    ///   returns `true`, also across store instances and processes
    ///   (`store_save_refuses_a_held_key`, `expired_lock_is_taken_over_by_exactly_one_contender`,
    ///   `many_tasks_one_key_never_overlap`);
    /// * a save that returns `false` changes nothing: not the owner, not the expiry
    ///   (`store_denied_save_keeps_the_holders_expiry`); not re-entrant
    ///   (`locks_are_not_reentrant`);
    /// * the TTL runs from the save, by the store's clock, to the millisecond — not
    ///   rounded to seconds (`store_exists_follows_the_ttl`); `None` never expires
    ///   (`store_save_without_ttl_never_expires`);
    /// * keys are compared byte for byte: case, Unicode normalization, whitespace and
    ///   every byte up to [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) count
    ///   (`store_keys_are_byte_exact`);
    /// * input outside [`validate`](crate::validate)'s domain is rejected with
    ///   [`LockError::InvalidArgument`] or handled correctly, never a panic or a wrong
    ///   `Ok` (`store_input_domain_is_rejected_or_handled`).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future at any await leaves either no lock or a lock with its full
    /// expiry: never a lock without expiry (write the lock and its expiry in one step;
    /// `store_cancelled_save_leaves_no_lock_without_expiry`). A request already sent may
    /// still land, but promptly (the kit allows 100 ms), never after later operations on
    /// the key (`store_cancelled_operations_do_not_undo_later_ones`).
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError>;

    /// Delete if held by `owner`; otherwise (held by another, or not held at all)
    /// `Err(LockError::NotOwned)`.
    ///
    /// * owners are compared in full (`store_delete_by_another_owner_is_not_owned`);
    /// * after `Ok`, the key is free for anyone (`store_delete_by_the_holder_frees_the_key`);
    /// * an expired lock is not held: its former owner's delete is `NotOwned`, whether or
    ///   not someone took it over (`store_delete_of_own_expired_lock_is_not_owned`,
    ///   `release_after_expiry_takeover_belongs_to_new_holder`);
    /// * with [`Capabilities::release_notification`], wakes the key's release listeners,
    ///   on every instance, after the key is removed (`delete_wakes_release_listeners`);
    /// * owners are compared in full, byte for byte: not case-folded, not truncated
    ///   (`store_owners_are_compared_in_full`).
    ///
    /// # Cancel safety
    ///
    /// Dropped at any await, the delete happens promptly (the kit allows 100 ms) or not
    /// at all; it never takes effect later, over a lock acquired after it (no
    /// fire-and-forget removal; `store_cancelled_operations_do_not_undo_later_ones`).
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError>;

    /// Delete whoever holds it. Not held: `Ok(())`.
    ///
    /// * `Ok` on a free key, not `NotOwned` (`store_force_delete_frees_any_holder`);
    /// * the removed holder can no longer delete or extend
    ///   (`release_after_force_release_belongs_to_new_holder`);
    /// * with [`Capabilities::release_notification`], wakes the key's release listeners
    ///   like `delete` does (`force_delete_wakes_release_listeners`).
    ///
    /// # Cancel safety
    ///
    /// As [`delete`](Self::delete).
    async fn force_delete(&self, key: &str) -> Result<(), LockError>;

    /// Held by anyone and not expired.
    ///
    /// Answers from the store, not from a cache: true from a successful save until the
    /// TTL passes, a delete or a force delete, false after
    /// (`store_exists_follows_the_ttl`, `exists_returns_false_if_lock_is_expired`).
    async fn exists(&self, key: &str) -> Result<bool, LockError>;

    /// Reset expiry to now + `duration` if held (and not expired) by `owner`; otherwise
    /// `Err(LockError::NotOwned)`.
    ///
    /// * measured from now: not added to the old expiry, and shorter than the old one if
    ///   `duration` is (`store_extend_is_measured_from_now`);
    /// * also on a lock saved without TTL, which then expires `duration` from now
    ///   (`store_extend_gives_a_lock_without_ttl_an_expiry`);
    /// * an expired lock is not revived, even by its former owner: `NotOwned`
    ///   (`store_extend_does_not_revive_an_expired_lock`, `extend_of_expired_lock_is_not_owned`);
    /// * `NotOwned` for another owner or a free key, and the holder's expiry is unchanged
    ///   (`store_extend_by_another_owner_is_not_owned`, `extend_errors_if_not_acquired`).
    ///
    /// # Cancel safety
    ///
    /// As [`delete`](Self::delete).
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
    /// The default calls `save` and reports neither. An override follows every rule of
    /// `save`, and:
    /// * with [`Capabilities::fencing_tokens`]: every acquire carries a token strictly
    ///   greater than every token issued before for the key — across store instances,
    ///   deletes, force deletes and expiry (`store_fencing_tokens_increase_across_instances`,
    ///   `fencing_tokens_strictly_increase`); a denial carries none
    ///   (`store_save_refuses_a_held_key`);
    /// * with [`Capabilities::holder_ttl`]: a denial reports what is *left* of the
    ///   holder's lock, never more, and `None` for a lock that never expires
    ///   (`store_holder_expires_in_is_the_remaining_time`, `waiter_wakes_at_holder_expiry`).
    async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
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
    ///
    /// With [`Capabilities::release_notification`]:
    /// * returns `Some` for every key;
    /// * registered when created, not when first polled: a release between creation and
    ///   the first poll completes it (`release_listener_is_registered_at_creation`);
    /// * completed by every `delete` and `force_delete` of the key, through any instance
    ///   of the store (`delete_wakes_release_listeners`,
    ///   `force_delete_wakes_release_listeners`, `release_wakes_waiter_before_retry_delay`).
    ///
    /// Expiry need not complete it: waiters learn of expiry from
    /// [`Acquisition::holder_expires_in`] or their retry delay.
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        let _ = key;
        None
    }

    /// Shared holdings ([`Semaphore`](crate::Semaphore), [`RwLock`](crate::RwLock)),
    /// if the store offers them: an optional capability, `None` by default.
    fn permits(&self) -> Option<&dyn PermitStore> {
        None
    }

    /// The same store answering in place, if it can ([`ImmediateStore`]: its state lives
    /// in this process): `None` by default. A [`Lock`](crate::Lock) then acquires and
    /// releases through it, without a boxed future.
    ///
    /// Return it only when its methods behave exactly as this store's `try_acquire` and
    /// `delete`: a wrapper that changes either must not hand on its inner store's
    /// (which is why [`DelegatingStore`](crate::DelegatingStore) does not by default).
    fn immediate(&self) -> Option<&dyn ImmediateStore> {
        None
    }
}

/// A store's future, boxed once (the shape `#[async_trait]` gives trait methods).
pub(crate) type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The six async methods of [`LockStore`], each handing on the future of `$target`'s
/// method as it is: a forwarding store boxes no second future around the first. (The
/// lifetimes are those `#[async_trait]` gives the trait's methods: one per reference,
/// each outliving the future's.)
macro_rules! forward_store_futures {
    ($trait:path, |$this:ident| $target:expr) => {
        $crate::store::forward_store_futures!(@fn $trait, $this, $target,
            save('k key, 'o owner; ttl: Option<Duration>) -> Result<bool, LockError>);
        $crate::store::forward_store_futures!(@fn $trait, $this, $target,
            delete('k key, 'o owner;) -> Result<(), LockError>);
        $crate::store::forward_store_futures!(@fn $trait, $this, $target,
            force_delete('k key;) -> Result<(), LockError>);
        $crate::store::forward_store_futures!(@fn $trait, $this, $target,
            exists('k key;) -> Result<bool, LockError>);
        $crate::store::forward_store_futures!(@fn $trait, $this, $target,
            extend('k key, 'o owner; duration: Duration) -> Result<(), LockError>);
        $crate::store::forward_store_futures!(@fn $trait, $this, $target,
            try_acquire('k key, 'o owner; ttl: Option<Duration>) -> AcquireResult);
    };
    (@fn $trait:path, $this:ident, $target:expr,
        $name:ident($($lt:lifetime $text:ident),*; $($arg:ident: $ty:ty)?) -> $out:ty) => {
        #[doc = concat!(
            "[`LockStore::", stringify!($name), "`], forwarded: the inner store's future ",
            "is handed on as it is."
        )]
        fn $name<'a, $($lt,)* 'f>(
            &'a self,
            $($text: &$lt str,)*
            $($arg: $ty)?
        ) -> $crate::store::StoreFuture<'f, $out>
        where
            'a: 'f,
            $($lt: 'f,)*
            Self: 'f,
        {
            let $this = self;
            <_ as $trait>::$name($target, $($text,)* $($arg)?)
        }
    };
}
pub(crate) use forward_store_futures;

impl<S: LockStore + ?Sized> LockStore for std::sync::Arc<S> {
    forward_store_futures!(LockStore, |this| &**this);
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        (**self).release_listener(key)
    }
    fn permits(&self) -> Option<&dyn PermitStore> {
        (**self).permits()
    }
    fn immediate(&self) -> Option<&dyn ImmediateStore> {
        (**self).immediate()
    }
}
