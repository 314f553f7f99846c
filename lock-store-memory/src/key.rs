//! Keys and owners as the store's maps keep them.
//!
//! Keys are hashed once per operation: the store hashes a key with its
//! own [`RandomState`](std::hash::RandomState) (SipHash, keyed at random, so keys chosen
//! by an attacker cannot be made to collide), picks the shard from that hash, and the
//! shard's map reuses the same hash instead of hashing the key again.

use std::borrow::Borrow;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A key as a shard's map keeps it: its text and the store's hash of it.
pub(crate) struct StoredKey {
    hash: u64,
    text: Box<str>,
}

/// A key looked up: its text and the store's hash of it (no allocation).
#[derive(Clone, Copy)]
pub(crate) struct Probe<'a> {
    pub(crate) hash: u64,
    pub(crate) text: &'a str,
}

impl Probe<'_> {
    /// The key to keep in the map.
    pub(crate) fn to_stored(self) -> StoredKey {
        StoredKey {
            hash: self.hash,
            text: self.text.into(),
        }
    }

    /// The form the map's look-ups take.
    pub(crate) fn view(&self) -> &(dyn KeyView + '_) {
        self
    }
}

/// What a look-up compares: a [`StoredKey`] and a [`Probe`] alike. Equal keys have
/// equal hashes (the same hasher made both), so `Hash` and `Eq` agree as `HashMap`
/// requires of a borrowed form.
pub(crate) trait KeyView {
    fn hash64(&self) -> u64;
    fn text(&self) -> &str;
}

impl KeyView for StoredKey {
    fn hash64(&self) -> u64 {
        self.hash
    }
    fn text(&self) -> &str {
        &self.text
    }
}

impl KeyView for Probe<'_> {
    fn hash64(&self) -> u64 {
        self.hash
    }
    fn text(&self) -> &str {
        self.text
    }
}

impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash64());
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.hash64() == other.hash64() && self.text() == other.text()
    }
}

impl Eq for dyn KeyView + '_ {}

impl Hash for StoredKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn KeyView).hash(state);
    }
}

impl PartialEq for StoredKey {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn KeyView) == (other as &dyn KeyView)
    }
}

impl Eq for StoredKey {}

impl<'a> Borrow<dyn KeyView + 'a> for StoredKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// The hasher of a shard's map: hands on the one `u64` a key writes (its store hash).
#[derive(Default)]
pub(crate) struct StoreHash(u64);

impl Hasher for StoreHash {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by the `Hash` impls above); fold anything else in
        // rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The `BuildHasher` of a shard's map.
pub(crate) type ByStoreHash = BuildHasherDefault<StoreHash>;

/// The shard of a hash among `shards` (a power of two). Bits 32 and up: the map's table
/// places a key by the low bits of the same hash and tells keys apart within a group by
/// the top 7 bits, so the shard takes bits that neither uses (for tables of fewer than
/// 2^32 buckets), and keys of one shard still spread over the whole table.
pub(crate) fn shard_of(hash: u64, shards: usize) -> usize {
    (hash >> 32) as usize & (shards - 1)
}

/// Owners this long or shorter are kept inline (lock-core mints 32 hex digits).
const INLINE_OWNER: usize = 32;

/// An owner token as an entry keeps it: inline when short (no allocation per
/// acquisition), on the heap otherwise. Compared byte for byte, in full.
pub(crate) enum OwnerText {
    Inline { len: u8, bytes: [u8; INLINE_OWNER] },
    Heap(Box<str>),
}

impl OwnerText {
    pub(crate) fn new(owner: &str) -> Self {
        match u8::try_from(owner.len()) {
            Ok(len) if owner.len() <= INLINE_OWNER => {
                let mut bytes = [0; INLINE_OWNER];
                bytes[..owner.len()].copy_from_slice(owner.as_bytes());
                OwnerText::Inline { len, bytes }
            }
            _ => OwnerText::Heap(owner.into()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            OwnerText::Inline { len, bytes } => &bytes[..usize::from(*len)],
            OwnerText::Heap(text) => text.as_bytes(),
        }
    }

    /// Whether this is `owner`, byte for byte.
    pub(crate) fn is(&self, owner: &str) -> bool {
        self.bytes() == owner.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_compare_in_full_inline_or_not() {
        let minted = "0123456789abcdef0123456789abcdef";
        for owner in ["a", minted, &format!("{minted}x"), &"z".repeat(128)] {
            let kept = OwnerText::new(owner);
            assert!(kept.is(owner), "{owner:?}");
            assert!(!kept.is(&owner[..owner.len() - 1]), "a prefix of {owner:?}");
            assert!(!kept.is(&format!("{owner}0")), "{owner:?} and more");
        }
        assert!(matches!(OwnerText::new(minted), OwnerText::Inline { .. }));
        assert!(!OwnerText::new(minted).is(&minted.to_uppercase()));
    }
}
