//! The Lua scripts behind every compare-and-act operation.
//!
//! Redis runs a script atomically: no other command from any client executes between its
//! first and last line, so "check the owner, then act" cannot interleave with another
//! client's acquire or release. Every script touches only keys passed in `KEYS` that share
//! one hash tag (`{key}`), so it also runs unchanged on Redis Cluster.
//!
//! The scripts are sent with `EVALSHA` (the body is sent once with `SCRIPT LOAD`, and again
//! only after the server answers `NOSCRIPT`, e.g. after `SCRIPT FLUSH` or a failover).
//!
//! # Cost
//!
//! What a script costs the server is mostly the commands it runs (`redis.call`) and the
//! strings and tables it creates (`KEYS`, `ARGV`, replies). So the scripts run as few
//! commands as their guarantees allow, and what is the same for every call of a store (the
//! release channel, the fence margin, how long a waiting marker lives) is written into the
//! script text when the store is built, instead of being sent and parsed as an argument
//! with every call. Each store therefore has its own lock scripts (their SHA1 differs
//! with the prefix and the margin). The permit scripts (`store/permits.rs`) are one set
//! for every store and take the margin and the channel as arguments: they run less
//! often, and one set keeps their text in one place.

use std::fmt::Write as _;

/// How long a denied acquire's waiting marker lives, in milliseconds. A waiter that sleeps
/// longer than this without retrying (a retry `delay` over a minute) may miss the wake-up
/// and fall back to its delay; every retry renews the marker.
pub(crate) const WAITING_MARKER_MILLIS: u64 = 60_000;

/// The Lua text of a store's lock acquire and release scripts, as the store sends them
/// (by `EVALSHA` of their SHA1) for an operation that goes alone; operations that queue
/// while others are in flight go together in one batch script that runs the same steps
/// for each ([`RedisStoreOptions::with_max_in_flight`](crate::RedisStoreOptions::with_max_in_flight)).
/// What to audit, or to run yourself, say as the baseline of a benchmark on another
/// client. From [`RedisStore::lock_scripts`]; the release text is each store's own (it
/// holds the store's release channel and fence margin).
///
/// [`RedisStore::lock_scripts`]: crate::RedisStore::lock_scripts
///
/// ```
/// use lock_store_redis::{fred::prelude::Client, RedisStore};
/// let scripts = RedisStore::from_client(Client::default()).lock_scripts();
/// assert!(scripts.acquire.contains("'NX'"));
/// assert!(scripts.release.contains("PUBLISH"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LockScripts {
    /// Acquire. `KEYS`: the lock key ([`redis_key`](crate::RedisStore::redis_key)), its
    /// fencing counter ([`fence_key`](crate::RedisStore::fence_key)), its waiting marker
    /// ([`waiting_key`](crate::RedisStore::waiting_key)). `ARGV`: the owner; the TTL in
    /// milliseconds (`0`: no expiry); the counter's TTL in milliseconds, the lock's plus
    /// the fence margin (left out when the lock has no expiry, and then only). Reply: the
    /// fencing token (≥ 1) when acquired; when held, `-1` for a holder without expiry and
    /// `-2 - n` for one with `n` ms left. The script trusts its arguments, as the store
    /// builds them: a TTL without the counter's leaves the counter without expiry, and a
    /// counter's TTL of `0` fails the call after the lock was taken (it then stays held
    /// until its TTL).
    pub acquire: String,
    /// Release by owner. `KEYS`: the lock key, its waiting marker, its fencing counter.
    /// `ARGV`: the owner. Reply: `1` released, `0` not held by this owner.
    pub release: String,
}

/// Acquire: `SET NX [PX]`, and on success mint the next fencing token.
///
/// `KEYS[1]` lock key, `KEYS[2]` fence counter key, `KEYS[3]` waiting marker;
/// `ARGV[1]` owner, `ARGV[2]` TTL in milliseconds (`0` = no expiry), `ARGV[3]` how long
/// the fence counter lives, in milliseconds (absent: no expiry, the lock has none either).
///
/// Returns the token (≥ 1) when acquired; when held by someone, `-2 - pttl`: `-1` for a
/// holder without expiry, `-2 - n` for one with `n` ms left (one integer instead of a
/// table: less for the server to build and convert). A denial also sets the waiting
/// marker, so that the next release publishes (releases nobody waits for publish nothing).
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
/// failover to a replica that lost the counter (or holds an older value of it).
///
/// What remains assumed: the server clock does not step back by more than the time since the
/// key's last acquisition (and, after a failover, the new primary's clock is not behind the
/// old one's by more than that). While the counter lives, even that is not needed. Two
/// acquisitions within one microsecond still get increasing tokens (the counter).
///
/// `TIME` before a write needs effects replication, the default since Redis 5.
///
/// Lua numbers are doubles: tokens are exact integers below 2^53, which microseconds since
/// 1970 reach in the year 2255; a counter at that bound fails the acquire (and takes the
/// lock back) instead of minting a token that does not increase. The token is written with
/// `%.0f`, never through Lua's own number formatting, which keeps 14 digits only.
pub(crate) fn acquire() -> String {
    format!(
        r#"
local ok
if ARGV[2] ~= '0' then
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
else
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if ok then
  local now = redis.call('TIME')
  local token = now[1] * 1000000 + now[2]
  local last = tonumber(redis.call('GET', KEYS[2]))
  if last and last >= token then
    token = last + 1
  end
  if token >= 9007199254740991 then
    redis.call('DEL', KEYS[1])
    return redis.error_reply('fencing counter ' .. KEYS[2] .. ' is exhausted')
  end
  if ARGV[3] then
    redis.call('SET', KEYS[2], string.format('%.0f', token), 'PX', ARGV[3])
  else
    redis.call('SET', KEYS[2], string.format('%.0f', token))
  end
  return token
end
redis.call('SET', KEYS[3], '1', 'PX', {WAITING_MARKER_MILLIS})
return -2 - redis.call('PTTL', KEYS[1])
"#
    )
}

/// Release by owner, then tell waiters.
///
/// `KEYS[1]` lock key, `KEYS[2]` waiting marker, `KEYS[3]` fence counter; `ARGV[1]` owner.
/// Returns 1 when deleted, 0 when the key is absent or held by another owner. Publishes on
/// `channel` only when the waiting marker says someone was denied since the last release
/// (one `DEL` of lock and marker: 2 means both existed). The fence counter expires
/// `fence_margin_ms` from now (a lock without TTL left it without expiry).
///
/// Atomic because the owner comparison and the `DEL` run in one script: the key cannot
/// expire and be taken by another owner between the two, so we never delete someone
/// else's lock.
pub(crate) fn release(channel: &str, fence_margin_ms: u64) -> String {
    format!(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[3], {fence_margin_ms})
  if redis.call('DEL', KEYS[1], KEYS[2]) == 2 then
    redis.call('PUBLISH', {channel}, KEYS[1])
  end
  return 1
end
return 0
"#,
        channel = lua_string(channel)
    )
}

/// Release whoever holds the lock, then tell waiters.
///
/// `KEYS[1]` lock key, `KEYS[2]` waiting marker, `KEYS[3]` fence counter. Returns the
/// number of lock keys deleted (0 or 1); publishes, and gives the fence counter the margin,
/// only when a lock was deleted.
///
/// One script so that the `DEL` and the `PUBLISH` are one round trip and a waiter is told
/// only about a release that really happened.
pub(crate) fn force_release(channel: &str, fence_margin_ms: u64) -> String {
    format!(
        r#"
local deleted = redis.call('DEL', KEYS[1])
if deleted > 0 then
  redis.call('PEXPIRE', KEYS[3], {fence_margin_ms})
  if redis.call('DEL', KEYS[2]) == 1 then
    redis.call('PUBLISH', {channel}, KEYS[1])
  end
end
return deleted
"#,
        channel = lua_string(channel)
    )
}

/// Several acquires and releases in one script: what [`acquire`] and [`release`] do, for
/// each operation in turn, in one `EVALSHA` (the store sends its operations this way while
/// others are in flight; see `store/batch.rs`).
///
/// Operation `i` (from 0) has `KEYS[3i+1]` lock key, `KEYS[3i+2]` fence counter,
/// `KEYS[3i+3]` waiting marker, and `ARGV[3i+1]` owner, `ARGV[3i+2]` the lock's TTL in
/// milliseconds, `ARGV[3i+3]` the counter's: both `0` for no expiry, and a TTL of `-1`
/// marks a release. Returns one reply per operation, as the single scripts would: an
/// acquire's token or `-2 - pttl`, a release's `1` or `0`; an acquire whose counter is
/// exhausted answers `0` (and is not held), where [`acquire`] answers an error; an
/// operation whose command failed (a key of another type, a server out of memory)
/// answers the error's text, as a string, and ends there, as its own script would have
/// ended (what it wrote before stays), while the operations after it still run.
///
/// Each operation is as atomic as in its own script (the whole batch runs without any
/// other command in between), reads what the operations before it wrote (an acquire after
/// a release of the same key in one batch gets the lock and the next token), and `TIME`
/// is read once per batch: tokens of one batch on one key still increase (the counter).
/// A batch only ever holds keys of one server: the store does not batch on Cluster.
///
/// Redis checks `maxmemory` before a script's first write only: on a full server
/// (`noeviction`), an acquire batched after a release that wrote is granted where, sent on
/// its own, it would have been refused.
pub(crate) fn batch(channel: &str, fence_margin_ms: u64) -> String {
    format!(
        r#"
local now
local function release(lock, fence, waiting, owner)
  if redis.call('GET', lock) == owner then
    redis.call('PEXPIRE', fence, {fence_margin_ms})
    if redis.call('DEL', lock, waiting) == 2 then
      redis.call('PUBLISH', {channel}, lock)
    end
    return 1
  end
  return 0
end
local function acquire(lock, fence, waiting, owner, lock_ms, fence_ms)
  local ok
  if lock_ms ~= '0' then
    ok = redis.call('SET', lock, owner, 'NX', 'PX', lock_ms)
  else
    ok = redis.call('SET', lock, owner, 'NX')
  end
  if not ok then
    redis.call('SET', waiting, '1', 'PX', {WAITING_MARKER_MILLIS})
    return -2 - redis.call('PTTL', lock)
  end
  if not now then
    local time = redis.call('TIME')
    now = time[1] * 1000000 + time[2]
  end
  local token = now
  local last = tonumber(redis.call('GET', fence))
  if last and last >= token then
    token = last + 1
  end
  if token >= 9007199254740991 then
    redis.call('DEL', lock)
    return 0
  end
  if fence_ms ~= '0' then
    redis.call('SET', fence, string.format('%.0f', token), 'PX', fence_ms)
  else
    redis.call('SET', fence, string.format('%.0f', token))
  end
  return token
end
local replies = {{}}
for i = 0, #KEYS / 3 - 1 do
  local lock, fence, waiting = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local owner, lock_ms = ARGV[3 * i + 1], ARGV[3 * i + 2]
  local done, reply
  if lock_ms == '-1' then
    done, reply = pcall(release, lock, fence, waiting, owner)
  else
    done, reply = pcall(acquire, lock, fence, waiting, owner, lock_ms, ARGV[3 * i + 3])
  end
  if not done then
    if type(reply) == 'table' and reply.err then
      reply = reply.err
    end
    reply = tostring(reply)
  end
  replies[i + 1] = reply
end
return replies
"#,
        channel = lua_string(channel)
    )
}

/// Extend by owner.
///
/// `KEYS[1]` lock key, `KEYS[2]` fence counter; `ARGV[1]` owner, `ARGV[2]` new TTL in
/// milliseconds, `ARGV[3]` the counter's new TTL (the lock's plus the margin), so the counter
/// still outlives the lock. Returns 1 when extended, 0 when the key is absent or held by
/// another owner.
///
/// Atomic for the same reason as [`release`]: the `PEXPIRE` only ever applies to the lock
/// the comparison just saw.
pub(crate) const EXTEND: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"#;

/// `text` as a Lua string literal: printable ASCII as is (but `'` and `\`), every other
/// byte as a decimal escape, so any prefix is quoted safely.
fn lua_string(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('\'');
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'\'' && byte != b'\\' {
            literal.push(char::from(byte));
        } else {
            let _ = write!(literal, "\\{byte:03}");
        }
    }
    literal.push('\'');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_strings_escape_what_lua_would_read_differently() {
        assert_eq!(lua_string("lock:released"), "'lock:released'");
        assert_eq!(lua_string("a'b\\c\n"), "'a\\039b\\092c\\010'");
        assert_eq!(lua_string("é"), "'\\195\\169'");
    }
}
