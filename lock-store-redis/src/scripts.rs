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
/// `KEYS[1]` lock key, `KEYS[2]` fence counter key, `KEYS[3]` waiting marker;
/// `ARGV[1]` owner, `ARGV[2]` TTL in milliseconds (`0` = no expiry), `ARGV[3]` how long
/// the waiting marker lives, in milliseconds, `ARGV[4]` how long the fence counter lives,
/// in milliseconds (`0` = no expiry: the lock has none either).
///
/// Returns `{1, token}` when acquired, `{0, pttl}` when held by someone (`pttl` = -1 for a
/// lock without expiry). A denial also sets the waiting marker, so that the next release
/// publishes (releases nobody waits for publish nothing).
///
/// Atomic because the `SET NX` and the token update run inside one script: a token is
/// minted exactly when, and only when, this owner got the lock; and the marker is set
/// before any release can run, so a denied waiter is always told of the next release.
///
/// # The token
///
/// `token = max(counter + 1, server time in microseconds)` (`TIME`), stored back in the
/// counter. The counter lives as long as the lock plus a margin (and is given the margin
/// again when the lock is released), so Redis keeps no key per lock key forever; once it has
/// expired, the server clock alone keeps the next token above every earlier one, because every
/// earlier token was at most its mint time (plus one per acquisition within one microsecond,
/// which the margin absorbs). The same holds after a restart without persistence or a
/// failover to a replica that lost the counter.
///
/// What remains assumed: the server clock does not step back by more than the time since the
/// key's last acquisition (and, after a failover, the new primary's clock is not behind the
/// old one's by more than that). While the counter lives, even that is not needed. Two
/// acquisitions within one microsecond still get increasing tokens (the counter).
///
/// Lua numbers are doubles: tokens are exact integers below 2^53, which microseconds since
/// 1970 reach in the year 2255; a counter at that bound fails the acquire (and takes the
/// lock back) instead of minting a token that does not increase.
pub(crate) const ACQUIRE: &str = r#"
local ok
if ARGV[2] ~= '0' then
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
else
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if ok then
  if redis.replicate_commands then redis.replicate_commands() end
  local now = redis.call('TIME')
  local token = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = tonumber(redis.call('GET', KEYS[2]) or 0) or 0
  if last >= token then
    token = last + 1
  end
  if token >= 9007199254740991 then
    redis.call('DEL', KEYS[1])
    return redis.error_reply('fencing counter ' .. KEYS[2] .. ' is exhausted')
  end
  if ARGV[4] ~= '0' then
    redis.call('SET', KEYS[2], string.format('%.0f', token), 'PX', ARGV[4])
  else
    redis.call('SET', KEYS[2], string.format('%.0f', token))
  end
  return {1, token}
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
return {0, redis.call('PTTL', KEYS[1])}
"#;

/// Release by owner, then tell waiters.
///
/// `KEYS[1]` lock key, `KEYS[2]` waiting marker, `KEYS[3]` fence counter; `ARGV[1]` owner,
/// `ARGV[2]` release channel, `ARGV[3]` how long the fence counter outlives the lock, in
/// milliseconds. Returns 1 when deleted, 0 when the key is absent or held by another owner.
/// Publishes only when the waiting marker says someone was denied since the last release.
/// The fence counter expires after the margin (a lock without TTL left it without expiry).
///
/// Atomic because the owner comparison and the `DEL` run in one script: the key cannot
/// expire and be taken by another owner between the two, so we never delete someone
/// else's lock.
pub(crate) const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  if redis.call('DEL', KEYS[2]) == 1 then
    redis.call('PUBLISH', ARGV[2], KEYS[1])
  end
  return 1
end
return 0
"#;

/// Release whoever holds the lock, then tell waiters.
///
/// `KEYS[1]` lock key, `KEYS[2]` waiting marker, `KEYS[3]` fence counter; `ARGV[1]` release
/// channel, `ARGV[2]` how long the fence counter outlives the lock, in milliseconds. Returns
/// the number of lock keys deleted (0 or 1).
///
/// One script so that the `DEL` and the `PUBLISH` are one round trip and a waiter is told
/// only about a release that really happened.
pub(crate) const FORCE_RELEASE: &str = r#"
local deleted = redis.call('DEL', KEYS[1])
if deleted > 0 then
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  if redis.call('DEL', KEYS[2]) == 1 then
    redis.call('PUBLISH', ARGV[1], KEYS[1])
  end
end
return deleted
"#;

/// Extend by owner.
///
/// `KEYS[1]` lock key, `KEYS[2]` fence counter; `ARGV[1]` owner, `ARGV[2]` new TTL in
/// milliseconds, `ARGV[3]` the counter's new TTL (the lock's plus the margin), so the counter
/// still outlives the lock. Returns 1 when extended, 0 when the key is absent or held by
/// another owner.
///
/// Atomic for the same reason as [`RELEASE`]: the `PEXPIRE` only ever applies to the lock
/// the comparison just saw.
pub(crate) const EXTEND: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"#;
