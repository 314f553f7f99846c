//! Deliberately broken stores, to prove that the conformance suite bites.
//!
//! [`FlawedStore`] is a correct in-memory store with one [`Flaw`] switched on: each flaw
//! is a single bug a store author could write (a race window, a clock mistake, a key or
//! owner mangled, an expiry edge case, a capability half done, a cancellation hazard).
//! The meta-tests run the suite against each flaw and check that it fails the cases it
//! should; [`Flaw::None`] is the control and must pass everything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lock_core::{
    AcquireResult, Acquisition, Capabilities, LockError, LockStore, ReleaseFuture, ReleaseHub,
    async_trait, validate,
};
use tokio::time::Instant;

mod flaw;
mod permits;
pub use flaw::Flaw;

#[derive(Debug)]
struct Entry {
    owner: String,
    expires_at: Option<Instant>,
    ttl: Option<Duration>,
    token: u64,
}

impl Entry {
    fn live(&self, flaw: Flaw) -> bool {
        flaw == Flaw::NeverExpires || self.expires_at.is_none_or(|at| at > Instant::now())
    }
}

/// A store with one flaw (see the module docs). Instances built from one value with
/// [`FlawedStore::shared`] share their locks, like connections to one server.
#[derive(Debug, Clone)]
pub struct FlawedStore {
    flaw: Flaw,
    shared: Arc<Shared>,
    local: Arc<Local>,
}

#[derive(Debug, Default)]
struct Shared {
    entries: Mutex<HashMap<String, Entry>>,
    hub: ReleaseHub,
    last_token: Mutex<u64>,
    /// `SingleListenerPerKey`: the newest listener of each key.
    newest_listener: Mutex<HashMap<String, std::sync::Weak<()>>>,
    /// Semaphores and reader-writer locks (`permits.rs`): lock-core's table, which the
    /// permit flaws bend.
    permits: lock_core::PermitTable,
    /// The fencing tokens of permit holdings.
    permit_tokens: lock_core::FenceCounter,
    /// `PermitGrantKeepsReservation`, `PermitForceKeepsReservation`: reservations kept
    /// beside the sets (owner, until).
    sticky_reservations: Mutex<HashMap<String, (String, Instant)>>,
}

/// What one instance keeps for itself (for the per-instance flaws).
#[derive(Debug, Default)]
struct Local {
    last_token: Mutex<u64>,
    exists_cache: Mutex<HashMap<String, (bool, Instant)>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FlawedStore {
    /// A new store (with its own locks) with this flaw.
    pub fn new(flaw: Flaw) -> Self {
        FlawedStore {
            flaw,
            shared: Default::default(),
            local: Default::default(),
        }
    }

    /// Another instance over the same locks.
    pub fn shared(&self) -> Self {
        FlawedStore {
            flaw: self.flaw,
            shared: self.shared.clone(),
            local: Default::default(),
        }
    }

    /// Its flaw.
    pub fn flaw(&self) -> Flaw {
        self.flaw
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        locked(&self.shared.entries)
    }

    fn key(&self, key: &str) -> String {
        match self.flaw {
            Flaw::KeyCaseFolded => key.to_lowercase(),
            Flaw::KeyTrimmed => key.trim().to_owned(),
            Flaw::KeyNormalized => key.replace("e\u{301}", "\u{e9}"),
            Flaw::KeyTruncated => {
                let mut end = key.len().min(255);
                while !key.is_char_boundary(end) {
                    end -= 1;
                }
                key[..end].to_owned()
            }
            _ => key.to_owned(),
        }
    }

    fn owner(&self, owner: &str) -> String {
        match self.flaw {
            Flaw::OwnerTruncated => owner.chars().take(16).collect(),
            Flaw::OwnerCaseInsensitive => owner.to_lowercase(),
            Flaw::OwnerTruncatedAt64 => owner.chars().take(64).collect(),
            _ => owner.to_owned(),
        }
    }

    fn checked(&self, check: Result<(), LockError>) -> Result<(), LockError> {
        if self.flaw == Flaw::PanicsOnHugeTtl {
            Ok(())
        } else {
            check
        }
    }

    fn ttl(&self, ttl: Option<Duration>) -> Option<Duration> {
        match self.flaw {
            Flaw::TtlWholeSeconds => ttl.map(|t| Duration::from_secs(t.as_secs())),
            Flaw::NoTtlExpiresImmediately => Some(ttl.unwrap_or_default()),
            Flaw::ExpiresEarly => ttl.map(|t| t.saturating_sub(Duration::from_millis(2))),
            _ => ttl,
        }
    }

    /// Whether anyone holds the lock `key`.
    fn held_by_anyone(&self, key: &str) -> bool {
        self.entries().get(key).is_some_and(|e| e.live(self.flaw))
    }

    fn held_by(&self, key: &str, owner: &str) -> bool {
        self.entries()
            .get(key)
            .is_some_and(|e| e.live(self.flaw) && e.owner == owner)
    }

    fn notify(&self, key: &str) {
        if !matches!(
            self.flaw,
            Flaw::SilentNotification | Flaw::NotifyBeforeRemove
        ) {
            self.shared.hub.notify(key);
        }
    }

    /// `NotifyBeforeRemove`: wake first, then remove after a moment.
    async fn notify_early(&self, key: &str) {
        if self.flaw == Flaw::NotifyBeforeRemove {
            self.shared.hub.notify(key);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn next_token(&self, previous_in_entry: Option<u64>) -> u64 {
        match self.flaw {
            Flaw::FencingResets => 1,
            Flaw::FencingPerInstance => {
                let mut last = locked(&self.local.last_token);
                *last += 1;
                *last
            }
            Flaw::FencingPerEntry => previous_in_entry.unwrap_or(0) + 1,
            _ => {
                let mut last = locked(&self.shared.last_token);
                *last += 1;
                *last
            }
        }
    }
}

#[async_trait]
impl LockStore for FlawedStore {
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.checked(validate::delete_input(key, owner))?;
        let (key, owner) = (self.key(key), self.owner(owner));
        let allowed = match self.flaw {
            Flaw::Noop | Flaw::DeleteNeverFails | Flaw::DeleteIgnored => true,
            Flaw::DeleteIgnoresOwner => self.entries().get(&key).is_some_and(|e| e.live(self.flaw)),
            Flaw::DeleteOwnExpiredOk => self.entries().get(&key).is_some_and(|e| e.owner == owner),
            _ => self.held_by(&key, &owner),
        };
        if !allowed {
            return Err(LockError::NotOwned);
        }
        if self.flaw == Flaw::DeleteIsFireAndForget {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(250)).await;
                this.entries().remove(&key);
                this.notify(&key);
            });
            return Ok(());
        }
        if !matches!(self.flaw, Flaw::Noop | Flaw::DeleteIgnored) {
            self.notify_early(&key).await;
            self.entries().remove(&key);
            self.notify(&key);
        }
        Ok(())
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        self.checked(validate::key(key))?;
        let key = self.key(key);
        if self.flaw == Flaw::Noop {
            return Ok(());
        }
        if self.entries().contains_key(&key) {
            self.notify_early(&key).await;
        }
        let removed = self.entries().remove(&key).is_some();
        if removed && self.flaw != Flaw::ForceDeleteSilent {
            self.notify(&key);
        }
        if !removed && self.flaw == Flaw::ForceDeleteOfFreeKeyErrors {
            return Err(LockError::NotOwned);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        self.checked(validate::key(key))?;
        let key = self.key(key);
        if self.flaw == Flaw::ExistsCachesResult {
            let cache = locked(&self.local.exists_cache);
            if let Some((held, _)) = cache
                .get(&key)
                .filter(|(_, at)| at.elapsed() < Duration::from_secs(1))
            {
                return Ok(*held);
            }
        }
        let held = match self.flaw {
            Flaw::Noop => false,
            Flaw::ExistsIgnoresExpiry => self.entries().contains_key(&key),
            Flaw::ExistsAlwaysTrue => true,
            _ => self.entries().get(&key).is_some_and(|e| e.live(self.flaw)),
        };
        if self.flaw == Flaw::ExistsCachesResult {
            locked(&self.local.exists_cache).insert(key, (held, Instant::now()));
        }
        Ok(held)
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        self.checked(validate::extend_input(key, owner, duration))?;
        let (key, owner) = (self.key(key), self.owner(owner));
        let duration = self.ttl(Some(duration)).unwrap_or_default();
        let now = Instant::now();
        let mut entries = self.entries();
        let entry = entries.get_mut(&key);
        match self.flaw {
            Flaw::Noop | Flaw::ExtendIgnored => Ok(()),
            Flaw::ExtendIgnoresOwner => {
                if let Some(e) = entry {
                    e.expires_at = Some(now + duration);
                }
                Ok(())
            }
            Flaw::ExtendRevivesExpired => match entry {
                Some(e) if e.owner == owner => {
                    e.expires_at = Some(now + duration);
                    Ok(())
                }
                _ => Err(LockError::NotOwned),
            },
            _ => match entry {
                Some(e) if e.live(self.flaw) && e.owner == owner => {
                    e.expires_at = match (self.flaw, e.expires_at) {
                        (Flaw::ExtendKeepsNoExpiry, None) => None,
                        (Flaw::ExtendFromOldExpiry, Some(at)) => Some(at + duration),
                        (Flaw::ExtendNeverShortens, Some(at)) => Some(at.max(now + duration)),
                        _ => Some(now + duration),
                    };
                    Ok(())
                }
                _ if self.flaw == Flaw::ExtendUncheckedResult => Ok(()),
                _ => Err(LockError::NotOwned),
            },
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        Ok(self.try_acquire(key, owner, ttl).await?.acquired)
    }

    async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        let ttl = match self.flaw {
            Flaw::ZeroTtlNeverExpires => ttl.filter(|t| !t.is_zero()),
            _ => ttl,
        };
        self.checked(validate::save_input(key, owner, ttl))?;
        let (key, owner) = (self.key(key), self.owner(owner));
        let ttl = self.ttl(ttl);
        if self.flaw == Flaw::Noop {
            return Ok(Acquisition::denied(None));
        }
        if self.flaw == Flaw::RacySave {
            let free = !self.entries().get(&key).is_some_and(|e| e.live(self.flaw));
            tokio::time::sleep(Duration::from_millis(3)).await;
            if !free {
                return Ok(Acquisition::denied(None));
            }
        }
        if self.flaw == Flaw::ExpiredTakeoverRace {
            let expired = self.entries().get(&key).map(|e| !e.live(self.flaw));
            if expired == Some(true) {
                // Read the expired lock file, then write ours: another contender can do
                // the same in between.
                tokio::time::sleep(Duration::from_millis(2)).await;
                let token = self.next_token(None);
                self.entries().insert(
                    key,
                    Entry {
                        owner,
                        expires_at: ttl.map(|t| Instant::now() + t),
                        ttl,
                        token,
                    },
                );
                return Ok(Acquisition::acquired_with_token(token));
            }
        }
        let cancel_hazard = self.flaw == Flaw::CancelledSaveLeavesNoExpiry;
        let token;
        {
            let mut entries = self.entries();
            let expires_at = ttl.map(|t| Instant::now() + t);
            let previous = match entries.get_mut(&key) {
                Some(e) if e.live(self.flaw) && self.flaw != Flaw::RacySave => {
                    if self.flaw == Flaw::Reentrant && e.owner == owner {
                        return Ok(Acquisition::acquired());
                    }
                    if self.flaw == Flaw::DeniedSaveRefreshesTtl {
                        e.expires_at = expires_at;
                    }
                    let left = match self.flaw {
                        Flaw::HolderTtlLies => Some(Duration::from_secs(3600)),
                        Flaw::HolderTtlFullTtl => e.ttl,
                        _ => e
                            .expires_at
                            .map(|at| at.saturating_duration_since(Instant::now())),
                    };
                    return Ok(Acquisition::denied(left));
                }
                Some(e) => Some(e.token),
                None => None,
            };
            token = self.next_token(previous);
            let stale = match entries.get_mut(&key) {
                Some(e) if self.flaw == Flaw::KeepsStaleOwner => {
                    e.expires_at = expires_at;
                    e.token = token;
                    true
                }
                _ => false,
            };
            if !stale {
                entries.insert(
                    key.clone(),
                    Entry {
                        owner: owner.clone(),
                        expires_at: if cancel_hazard { None } else { expires_at },
                        ttl,
                        token,
                    },
                );
            }
        }
        if cancel_hazard {
            // Written first, expiry set after an await: dropped here, it never expires.
            tokio::task::yield_now().await;
            if let Some(e) = self.entries().get_mut(&key).filter(|e| e.owner == owner) {
                e.expires_at = ttl.map(|t| Instant::now() + t);
            }
        }
        Ok(Acquisition::acquired_with_token(token))
    }

    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        let key = self.key(key);
        if self.flaw == Flaw::ListenerOnFirstPoll {
            let hub = self.shared.hub.clone();
            return Some(Box::pin(async move { hub.listen(&key).await }));
        }
        if self.flaw == Flaw::SingleListenerPerKey {
            // Registered now; but only the newest listener of the key ever completes.
            let woken = self.shared.hub.listen(&key);
            let newest = Arc::new(());
            locked(&self.shared.newest_listener).insert(key.clone(), Arc::downgrade(&newest));
            let shared = self.shared.clone();
            return Some(Box::pin(async move {
                woken.await;
                let is_newest = locked(&shared.newest_listener)
                    .get(&key)
                    .and_then(std::sync::Weak::upgrade)
                    .is_some_and(|n| Arc::ptr_eq(&n, &newest));
                if !is_newest {
                    std::future::pending::<()>().await;
                }
            }));
        }
        Some(self.shared.hub.listen(&key))
    }

    fn name(&self) -> &str {
        "flawed"
    }

    fn permits(&self) -> Option<&dyn lock_core::PermitStore> {
        Some(self)
    }
}
