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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::owner as validate_owner;
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
