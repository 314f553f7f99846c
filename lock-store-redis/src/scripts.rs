//! The Lua scripts behind every compare-and-act operation.
//!
//! Redis runs a script atomically: no other command from any client executes between its
//! first and last line, so "check the owner, then act" cannot interleave with another
//! client's acquire or release. Every script touches only keys passed in `KEYS` that share
//! one hash tag (`{key}`), so it also runs unchanged on Redis Cluster.
//!
//! The scripts are sent with `EVALSHA` (the body is sent once with `SCRIPT LOAD`, and again
//! only after the server answers `NOSCRIPT`, e.g. after `SCRIPT FLUSH` or a failover).

/// Acquire: `SET NX [PX]`, and on success mint the next fencing token.
///
/// `KEYS[1]` lock key, `KEYS[2]` fence counter key (never expires, never deleted, so tokens
/// keep increasing across releases, expiry and force releases), `KEYS[3]` waiting marker;
/// `ARGV[1]` owner, `ARGV[2]` TTL in milliseconds (`0` = no expiry), `ARGV[3]` how long
/// the waiting marker lives, in milliseconds.
///
/// Returns `{1, token}` when acquired, `{0, pttl}` when held by someone (`pttl` = -1 for a
/// lock without expiry). A denial also sets the waiting marker, so that the next release
/// publishes (releases nobody waits for publish nothing).
///
/// Atomic because the `SET NX` and the `INCR` run inside one script: a token is minted
/// exactly when, and only when, this owner got the lock; and the marker is set before any
/// release can run, so a denied waiter is always told of the next release.
pub(crate) const ACQUIRE: &str = r#"
local ok
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl)
else
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if ok then
  return {1, redis.call('INCR', KEYS[2])}
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
return {0, redis.call('PTTL', KEYS[1])}
"#;

/// Release by owner, then tell waiters.
///
/// `KEYS[1]` lock key, `KEYS[2]` waiting marker; `ARGV[1]` owner, `ARGV[2]` release
/// channel. Returns 1 when deleted, 0 when the key is absent or held by another owner.
/// Publishes only when the waiting marker says someone was denied since the last release.
///
/// Atomic because the owner comparison and the `DEL` run in one script: the key cannot
/// expire and be taken by another owner between the two, so we never delete someone
/// else's lock.
pub(crate) const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if redis.call('DEL', KEYS[2]) == 1 then
    redis.call('PUBLISH', ARGV[2], KEYS[1])
  end
  return 1
end
return 0
"#;

/// Release whoever holds the lock, then tell waiters.
///
/// `KEYS[1]` lock key, `KEYS[2]` waiting marker; `ARGV[1]` release channel. Returns the
/// number of lock keys deleted (0 or 1).
///
/// One script so that the `DEL` and the `PUBLISH` are one round trip and a waiter is told
/// only about a release that really happened.
pub(crate) const FORCE_RELEASE: &str = r#"
local deleted = redis.call('DEL', KEYS[1])
if deleted > 0 and redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PUBLISH', ARGV[1], KEYS[1])
end
return deleted
"#;

/// Extend by owner.
///
/// `KEYS[1]` lock key; `ARGV[1]` owner, `ARGV[2]` new TTL in milliseconds. Returns 1 when
/// extended, 0 when the key is absent or held by another owner.
///
/// Atomic for the same reason as [`RELEASE`]: the `PEXPIRE` only ever applies to the lock
/// the comparison just saw.
pub(crate) const EXTEND: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;
