use crate::LockError;

/// Bytes of randomness in an owner token (128 bits).
const OWNER_BYTES: usize = 16;

/// A fresh owner token: 128 bits from the operating system's RNG, as 32 hex digits.
///
/// Owner tokens are capabilities (whoever has one can release the lock), so they are
/// never logged and never shown by `Debug`.
pub(crate) fn new_owner() -> Result<String, LockError> {
    let mut bytes = [0u8; OWNER_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| LockError::storage_msg(format!("the OS random generator failed: {e}")))?;
    let mut out = String::with_capacity(OWNER_BYTES * 2);
    for b in bytes {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    Ok(out)
}

/// The longest owner accepted from a serialized lock.
pub(crate) const MAX_OWNER_LEN: usize = 128;

/// Owners restored from outside must look like tokens: 1–128 of `[A-Za-z0-9_-]`.
pub(crate) fn validate_owner(owner: &str) -> Result<(), LockError> {
    if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
        return Err(LockError::invalid(format!(
            "lock owner must be 1 to {MAX_OWNER_LEN} characters long"
        )));
    }
    if !owner
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(LockError::invalid(
            "lock owner may only contain ASCII letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn owners_are_128_bit_hex_and_unique() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let o = new_owner().unwrap();
            assert_eq!(o.len(), 32);
            assert!(o.bytes().all(|b| b.is_ascii_hexdigit()));
            validate_owner(&o).unwrap();
            assert!(seen.insert(o), "duplicate owner token");
        }
    }

    #[test]
    fn hostile_owners_are_rejected() {
        for bad in ["", "a b", "x'; DROP TABLE locks; --", "é", &"a".repeat(129)] {
            assert!(validate_owner(bad).is_err(), "{bad:?} accepted");
        }
    }
}
