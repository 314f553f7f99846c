//! What a model sequence is made of: owners, keys, operations, and the seeded generator
//! that produces them.

/// Owners in a sequence; owner `i`'s locks have TTL [`ttl_units`]`(i)`.
pub const OWNERS: usize = 4;
/// Keys in a sequence.
pub const KEYS: usize = 2;

/// TTL of each owner's locks, in units; the last owner's locks never expire.
pub fn ttl_units(owner: usize) -> Option<u32> {
    [Some(2), Some(3), Some(4), None][owner % OWNERS]
}

/// One step of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `acquire_immediately` by `owner` on `key`.
    Acquire {
        /// Who.
        owner: usize,
        /// Which key.
        key: usize,
    },
    /// `release`.
    Release {
        /// Who.
        owner: usize,
        /// Which key.
        key: usize,
    },
    /// `extend` by `units`.
    Extend {
        /// Who.
        owner: usize,
        /// Which key.
        key: usize,
        /// By how many units.
        units: u32,
    },
    /// `force_release`.
    ForceRelease {
        /// Who.
        owner: usize,
        /// Which key.
        key: usize,
    },
    /// `is_locked`.
    Exists {
        /// Which key.
        key: usize,
    },
    /// Time passes.
    Advance {
        /// How many units.
        units: u32,
    },
}

/// A small deterministic generator (SplitMix64), so that a seed reproduces a sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// From a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// One random sequence of `1..=max_steps` operations (weights as in the workspace's
/// original property test: acquire 4, release 3, extend 2, force release 1, exists 2,
/// advance 3).
pub fn sequence(rng: &mut Rng, max_steps: usize) -> Vec<Op> {
    let len = 1 + rng.below(max_steps.max(1));
    (0..len)
        .map(|_| {
            let (owner, key) = (rng.below(OWNERS), rng.below(KEYS));
            match rng.below(15) {
                0..=3 => Op::Acquire { owner, key },
                4..=6 => Op::Release { owner, key },
                7..=8 => Op::Extend {
                    owner,
                    key,
                    units: 1 + rng.below(4) as u32,
                },
                9 => Op::ForceRelease { owner, key },
                10..=11 => Op::Exists { key },
                _ => Op::Advance {
                    units: rng.below(4) as u32,
                },
            }
        })
        .collect()
}
