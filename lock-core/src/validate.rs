//! The input domain of the store contract, and the checks every bundled store runs.
//!
//! lock-core validates keys, owners and durations before it calls a store, so a store
//! reached through [`Lock`](crate::Lock) never sees input outside this domain. A store
//! can also be called directly through [`LockStore`](crate::LockStore); the bundled
//! stores then reject the same input with the same
//! `LockError::InvalidArgument`, by calling these
//! functions first. Custom stores should do the same (the testkit's input-domain
//! cases accept either a rejection with `InvalidArgument` or correct behaviour).
//!
//! | input | domain |
//! |---|---|
//! | key | 1 to [`MAX_KEY_LEN`] bytes of UTF-8, no NUL byte; compared byte for byte |
//! | owner | 1 to [`MAX_OWNER_LEN`] characters of `[A-Za-z0-9_-]` |
//! | TTL, extension | 1 ms to [`MAX_TTL`]; `None` (TTL only) means "never expires" |

use std::time::Duration;

use crate::LockError;

/// The longest key accepted, in bytes. Every bundled store can hold it.
pub const MAX_KEY_LEN: usize = 1024;

/// The longest TTL or extension accepted (ten years); use `None` for a lock that never
/// expires.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// The longest owner token accepted (lock-core mints 32 hex digits).
pub const MAX_OWNER_LEN: usize = 128;

/// Keys must be non-empty, at most [`MAX_KEY_LEN`] bytes, without NUL bytes.
///
/// ```
/// assert!(lock_core::validate::key("order.1").is_ok());
/// assert!(lock_core::validate::key("").is_err());
/// ```
pub fn key(key: &str) -> Result<(), LockError> {
    if key.is_empty() {
        return Err(LockError::invalid("lock key must not be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(LockError::invalid(format!(
            "lock key is {} bytes long; the limit is {MAX_KEY_LEN}",
            key.len()
        )));
    }
    if key.contains('\0') {
        return Err(LockError::invalid("lock key must not contain a NUL byte"));
    }
    Ok(())
}

/// The bytes an owner may contain: ASCII letters, digits, `-` and `_`.
const OWNER_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// Owners must look like tokens: 1 to [`MAX_OWNER_LEN`] of `[A-Za-z0-9_-]`.
pub fn owner(owner: &str) -> Result<(), LockError> {
    if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
        return Err(LockError::invalid(format!(
            "lock owner must be 1 to {MAX_OWNER_LEN} characters long"
        )));
    }
    // One table look-up per byte, without an early exit, so the loop vectorizes: every
    // store call checks its owner, so this is on the hot path.
    if !owner
        .bytes()
        .fold(true, |ok, b| ok & OWNER_BYTES[usize::from(b)])
    {
        return Err(LockError::invalid(
            "lock owner may only contain ASCII letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

/// A TTL or extension must be at least 1 ms and at most [`MAX_TTL`]; `what` names it
/// in the message (`"lock TTL"`, `"extension"`).
pub fn duration(what: &str, d: Duration) -> Result<(), LockError> {
    if d < Duration::from_millis(1) {
        return Err(LockError::invalid(format!(
            "{what} must be at least 1 ms (got {d:?}); use None for a lock that never expires"
        )));
    }
    if d > MAX_TTL {
        return Err(LockError::invalid(format!(
            "{what} of {d:?} is longer than the supported maximum of {MAX_TTL:?}; use None for a lock that never expires"
        )));
    }
    Ok(())
}

/// A lock TTL: `None` (never expires) or a [`duration`] in range.
pub fn ttl(ttl: Option<Duration>) -> Result<(), LockError> {
    match ttl {
        Some(d) => duration("lock TTL", d),
        None => Ok(()),
    }
}

/// The checks for [`LockStore::save`](crate::LockStore::save) and
/// [`LockStore::try_acquire`](crate::LockStore::try_acquire).
pub fn save_input(k: &str, o: &str, t: Option<Duration>) -> Result<(), LockError> {
    key(k)?;
    owner(o)?;
    ttl(t)
}

/// The checks for [`LockStore::delete`](crate::LockStore::delete).
pub fn delete_input(k: &str, o: &str) -> Result<(), LockError> {
    key(k)?;
    owner(o)
}

/// The checks for [`LockStore::extend`](crate::LockStore::extend).
pub fn extend_input(k: &str, o: &str, d: Duration) -> Result<(), LockError> {
    key(k)?;
    owner(o)?;
    duration("extension", d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(key("").is_err());
        assert!(key("a\0b").is_err());
        assert!(key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(key("commande.é.日本.{x}*%'\n").is_ok());
    }

    #[test]
    fn ttls() {
        assert!(ttl(Some(Duration::ZERO)).is_err());
        assert!(ttl(Some(Duration::from_micros(10))).is_err());
        assert!(ttl(Some(MAX_TTL + Duration::from_secs(1))).is_err());
        assert!(ttl(Some(Duration::MAX)).is_err());
        assert!(ttl(Some(Duration::from_millis(1))).is_ok());
        assert!(ttl(None).is_ok());
    }

    #[test]
    fn owners() {
        assert!(owner("0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["", "a b", "a\0", "é", &"a".repeat(MAX_OWNER_LEN + 1)] {
            assert!(owner(bad).is_err(), "{bad:?} accepted");
        }
    }
}
