use std::time::Duration;

use crate::LockError;

/// The longest key accepted, in bytes. Every bundled store can hold it.
pub const MAX_KEY_LEN: usize = 1024;

/// The longest TTL accepted (ten years); use `None` for a lock that never expires.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Keys must be non-empty, at most [`MAX_KEY_LEN`] bytes, without NUL bytes.
pub(crate) fn validate_key(key: &str) -> Result<(), LockError> {
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

/// A TTL or extension must be at least 1 ms and at most [`MAX_TTL`].
pub(crate) fn validate_duration(what: &str, d: Duration) -> Result<(), LockError> {
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

pub(crate) fn validate_ttl(ttl: Option<Duration>) -> Result<(), LockError> {
    match ttl {
        Some(d) => validate_duration("lock TTL", d),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(validate_key("").is_err());
        assert!(validate_key("a\0b").is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(validate_key("commande.é.日本.{x}*%'\n").is_ok());
    }

    #[test]
    fn ttls() {
        assert!(validate_ttl(Some(Duration::ZERO)).is_err());
        assert!(validate_ttl(Some(Duration::from_micros(10))).is_err());
        assert!(validate_ttl(Some(MAX_TTL + Duration::from_secs(1))).is_err());
        assert!(validate_ttl(Some(Duration::from_millis(1))).is_ok());
        assert!(validate_ttl(None).is_ok());
    }
}
