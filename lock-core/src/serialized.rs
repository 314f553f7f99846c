use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use tokio::time::Instant;

use crate::holding::Deadline;
use crate::lock::Target;
use crate::{Lock, LockError, validate};

/// A lock in transit: what [`Lock::serialize`](crate::Lock::serialize) produces and
/// [`LockFactory::restore_lock`](crate::LockFactory::restore_lock) takes back, e.g. in
/// another process that must release the lock.
///
/// **It is a capability.** Whoever holds it can release or extend the lock, so treat it
/// like a secret: send it only through channels you trust. `Debug` hides the owner.
///
/// The JSON form:
///
/// ```
/// use lock_core::SerializedLock;
/// let json = r#"{"key":"order.processing.1","owner":"0123456789abcdef0123456789abcdef","ttl":30000,"expiration":1790000000000}"#;
/// let lock = SerializedLock::from_json(json).unwrap();
/// assert_eq!(lock.ttl_duration(), Some(std::time::Duration::from_secs(30)));
/// ```
///
/// The fields can be read and set; a value is made by [`Lock::serialize`](crate::Lock::serialize),
/// [`SerializedLock::from_json`] or [`SerializedLock::new`] (new fields may be added).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SerializedLock {
    /// The lock key.
    pub key: String,
    /// The owner token.
    pub owner: String,
    /// The lock's TTL in milliseconds; `None` for a lock that never expires.
    pub ttl: Option<u64>,
    /// When the lock expires, in milliseconds since the Unix epoch, as seen by the
    /// serializing process's view of its own deadline; `None` when unknown or never.
    pub expiration: Option<u64>,
    /// The fencing token of the acquisition, when the store mints them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    /// For a holding of a [`Semaphore`](crate::Semaphore) or [`RwLock`](crate::RwLock):
    /// its share of the permit key. Absent for a mutex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<SerializedShare>,
}

/// The share of a permit key a serialized holding has (see [`crate::permits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SerializedShare {
    /// The key's limit.
    pub limit: u32,
    /// The holding's weight.
    pub weight: u32,
    /// Whether a denied try reserves the key (a writer).
    #[serde(default)]
    pub reserve: bool,
}

impl SerializedShare {
    /// A share of `weight` permits of a key limited to `limit`; `reserve` for a writer.
    /// Checked when a lock is restored, not here.
    pub const fn new(limit: u32, weight: u32, reserve: bool) -> Self {
        SerializedShare {
            limit,
            weight,
            reserve,
        }
    }
}

impl std::fmt::Debug for SerializedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerializedLock")
            .field("key", &self.key)
            .field("owner", &"<redacted>")
            .field("ttl", &self.ttl)
            .field("expiration", &self.expiration)
            .field("fencing_token", &self.fencing_token)
            .finish()
    }
}

impl SerializedLock {
    /// A serialized lock of `key` held by `owner`, without TTL, expiration or fencing
    /// token (set the fields as needed). Checked by [`validate`](Self::validate) and by
    /// `restore_lock`, not here.
    ///
    /// ```
    /// use lock_core::SerializedLock;
    /// let mut lock = SerializedLock::new("k", "0123456789abcdef0123456789abcdef");
    /// lock.ttl = Some(30_000);
    /// assert!(lock.validate().is_ok());
    /// lock.ttl = Some(0);
    /// assert!(lock.validate().is_err());
    /// ```
    pub fn new(key: impl Into<String>, owner: impl Into<String>) -> Self {
        SerializedLock {
            key: key.into(),
            owner: owner.into(),
            ttl: None,
            expiration: None,
            fencing_token: None,
            share: None,
        }
    }

    /// The TTL as a `Duration`.
    pub fn ttl_duration(&self) -> Option<Duration> {
        self.ttl.map(Duration::from_millis)
    }

    /// As JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse and validate JSON; malformed, truncated or tampered input is
    /// `InvalidArgument`.
    pub fn from_json(json: &str) -> Result<Self, LockError> {
        let lock: SerializedLock = serde_json::from_str(json)
            .map_err(|e| LockError::invalid(format!("malformed serialized lock: {e}")))?;
        lock.validate()?;
        Ok(lock)
    }

    /// Check every field (done by `restore_lock` as well).
    pub fn validate(&self) -> Result<(), LockError> {
        validate::key(&self.key)
            .map_err(|e| LockError::invalid(format!("malformed serialized lock: {e}")))?;
        validate::owner(&self.owner)
            .map_err(|e| LockError::invalid(format!("malformed serialized lock: {e}")))?;
        validate::ttl(self.ttl_duration())
            .map_err(|e| LockError::invalid(format!("malformed serialized lock: {e}")))?;
        if let Some(share) = self.share {
            crate::permits::PermitRequest::new(share.limit, share.weight, None)
                .validate()
                .map_err(|e| LockError::invalid(format!("malformed serialized lock: {e}")))?;
        }
        if self.ttl.is_none() && self.expiration.is_some() {
            return Err(LockError::invalid(
                "malformed serialized lock: an expiration without a TTL",
            ));
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch for `now + offset`.
pub(crate) fn unix_ms_in(offset: Duration) -> u64 {
    let at = SystemTime::now() + offset;
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How long from now until `unix_ms` (zero if past).
pub(crate) fn until_unix_ms(unix_ms: u64) -> Duration {
    let at = UNIX_EPOCH + Duration::from_millis(unix_ms);
    at.duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

impl Lock {
    /// The lock as data, to be restored elsewhere with
    /// [`LockFactory::restore_lock`](crate::LockFactory::restore_lock).
    ///
    /// **The result is a capability**: whoever has it can release the lock. Treat it
    /// like a secret.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("order.processing.7")?;
    /// if lock.acquire().await? {
    ///     let json = lock.serialize().to_json(); // send it through your queue
    ///
    ///     let restored = factory.restore_lock(lock_core::SerializedLock::from_json(&json)?)?;
    ///     restored.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn serialize(&self) -> SerializedLock {
        self.hand_over();
        let expiration = match self.holding_deadline() {
            Deadline::At(t) => Some(unix_ms_in(t.saturating_duration_since(Instant::now()))),
            Deadline::Never | Deadline::NotHeld => None,
        };
        SerializedLock {
            key: self.key().to_owned(),
            owner: self.owner().to_owned(),
            ttl: self
                .ttl()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            expiration,
            fencing_token: self.fencing_token(),
            share: match self.target() {
                Target::Mutex => None,
                Target::Permits {
                    limit,
                    weight,
                    reserve,
                } => Some(SerializedShare {
                    limit,
                    weight,
                    reserve,
                }),
            },
        }
    }
}

impl SerializedLock {
    /// The kind of holding.
    pub(crate) fn target(&self) -> Target {
        match self.share {
            None => Target::Mutex,
            Some(SerializedShare {
                limit,
                weight,
                reserve,
            }) => Target::Permits {
                limit,
                weight,
                reserve,
            },
        }
    }

    /// The local deadline a restored lock starts with: never later than a full TTL from
    /// now, whatever the payload claims.
    pub(crate) fn deadline(&self) -> Deadline {
        match (self.ttl, self.expiration) {
            (None, _) => Deadline::Never,
            (Some(ttl), Some(at)) => Deadline::after(
                Instant::now(),
                Some(until_unix_ms(at).min(Duration::from_millis(ttl))),
            ),
            (Some(_), None) => Deadline::NotHeld,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SerializedLock {
        SerializedLock {
            key: "k".into(),
            owner: "0123456789abcdef0123456789abcdef".into(),
            ttl: Some(1000),
            expiration: Some(unix_ms_in(Duration::from_secs(1))),
            fencing_token: Some(7),
            share: None,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let s = sample();
        assert_eq!(SerializedLock::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn debug_hides_owner() {
        let s = sample();
        assert!(!format!("{s:?}").contains(&s.owner));
    }

    #[test]
    fn bad_json_is_invalid_argument() {
        let good = sample().to_json();
        let truncated = &good[..good.len() / 2];
        let tampered = good.replace("0123456789abcdef", "'; DROP TABLE locks;--");
        for bad in [
            "",
            "null",
            "{}",
            truncated,
            &tampered,
            r#"{"key":"","owner":"abc","ttl":null,"expiration":null}"#,
            r#"{"key":"k","owner":"abc","ttl":0,"expiration":null}"#,
            r#"{"key":"k","owner":"abc","ttl":-5,"expiration":null}"#,
            r#"{"key":"k","owner":"abc","ttl":null,"expiration":5}"#,
        ] {
            let err = SerializedLock::from_json(bad).unwrap_err();
            assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{bad:?} gave {err}");
        }
    }
}
