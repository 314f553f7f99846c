//! Semaphores and reader-writer locks on Redis: the [`PermitStore`] capability.
//!
//! # Layout
//! One hash per permit key, `{prefix}{key}:permits` (the key as hash tag, so each
//! script touches one key and runs unchanged on Redis Cluster), with fields:
//! * `h:<owner>` → `"<weight>:<expiry ms>"` (`0` = no expiry), one per holder;
//! * `r` → `"<until ms>:<owner>"`, the writer reservation;
//! * `f` → the last fencing token; `w` → set by a denial, so the next release publishes.
//!
//! Expiry is judged by the server clock (`TIME`). Every script reads the whole hash,
//! drops expired holders and reservations, applies its change, and sets the hash's own
//! expiry to the latest holder's or reservation's plus the fence margin (none while a
//! holder has no expiry): Redis forgets a permit key once it is unused. Tokens follow
//! the lock rule: `max(last + 1, server time in µs)`.
//!
//! A holding's expiry is set one millisecond past `now + TTL`: `now` is the server time
//! cut to the millisecond, so without it a holding could end up to a millisecond before
//! its holder's local deadline (which is measured from before the request was sent).

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use fred::types::Value;
use fred::types::scripts::Script;
use lock_core::{
    Acquisition, LockError, PermitRequest, PermitStore, PermitUsage, ReleaseFuture, validate,
};

use super::RedisStore;
use super::command::{millis, owned};

/// Parse the hash into `holders` (owner → {weight, expiry}), `fence` and the live
/// reservation; drop what expired; define `settle()`, which sets the hash's expiry.
/// Expects `now` (ms).
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local now_us = t[1] * 1000000 + t[2]
local all = redis.call('HGETALL', KEYS[1])
local holders, fence, res_owner, res_until = {}, 0, nil, 0
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  if string.sub(f, 1, 2) == 'h:' then
    local sep = string.find(v, ':', 1, true)
    local exp = tonumber(string.sub(v, sep + 1))
    if exp ~= 0 and exp <= now then
      redis.call('HDEL', KEYS[1], f)
    else
      holders[string.sub(f, 3)] = {tonumber(string.sub(v, 1, sep - 1)), exp}
    end
  elseif f == 'f' then
    fence = tonumber(v)
  elseif f == 'r' then
    local sep = string.find(v, ':', 1, true)
    local u = tonumber(string.sub(v, 1, sep - 1))
    if u > now then
      res_until, res_owner = u, string.sub(v, sep + 1)
    else
      redis.call('HDEL', KEYS[1], 'r')
    end
  end
end
local function settle(margin)
  local latest, forever = now, false
  for _, h in pairs(holders) do
    if h[2] == 0 then forever = true elseif h[2] > latest then latest = h[2] end
  end
  if res_until > latest then latest = res_until end
  if forever then
    redis.call('PERSIST', KEYS[1])
  elseif redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('PEXPIRE', KEYS[1], latest - now + margin)
  end
end
"#;

/// `ARGV`: owner, limit, weight, ttl ms (0 = none), reserve ms (0 = none), margin ms.
/// Returns the token, or `-2 - n` (earliest holder expires in `n` ms), or `-1`.
const ACQUIRE: &str = r#"
local owner, limit, weight = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, reserve, margin = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local used, earliest = 0, nil
for _, h in pairs(holders) do
  used = used + h[1]
  if h[2] ~= 0 and (earliest == nil or h[2] < earliest) then earliest = h[2] end
end
local reserved_by_other = res_owner ~= nil and res_owner ~= owner
if holders[owner] or reserved_by_other or used + weight > limit then
  if reserve > 0 and not holders[owner] and not reserved_by_other then
    res_until, res_owner = now + reserve, owner
    redis.call('HSET', KEYS[1], 'r', string.format('%.0f', res_until) .. ':' .. owner)
  end
  redis.call('HSET', KEYS[1], 'w', '1')
  settle(margin)
  if earliest then return -2 - (earliest - now) end
  return -1
end
if res_owner == owner then
  res_owner, res_until = nil, 0
  redis.call('HDEL', KEYS[1], 'r')
end
local token = now_us
if fence >= token then token = fence + 1 end
if token >= 9007199254740991 then
  return redis.error_reply('fencing token counter exhausted')
end
local exp = 0
if ttl > 0 then exp = now + ttl + 1 end
holders[owner] = {weight, exp}
redis.call('HSET', KEYS[1], 'h:' .. owner, string.format('%.0f', weight) .. ':' .. string.format('%.0f', exp),
  'f', string.format('%.0f', token))
settle(margin)
return token
"#;

/// `ARGV`: owner, channel, margin ms. Returns 1, or 0 when the owner holds nothing.
const RELEASE: &str = r#"
if not holders[ARGV[1]] then return 0 end
holders[ARGV[1]] = nil
redis.call('HDEL', KEYS[1], 'h:' .. ARGV[1])
settle(tonumber(ARGV[3]))
if redis.call('HDEL', KEYS[1], 'w') == 1 then
  redis.call('PUBLISH', ARGV[2], KEYS[1])
end
return 1
"#;

/// `ARGV`: owner, duration ms, margin ms. Returns 1, or 0 when the owner holds nothing.
const EXTEND: &str = r#"
local h = holders[ARGV[1]]
if not h then return 0 end
h[2] = now + tonumber(ARGV[2]) + 1
redis.call('HSET', KEYS[1], 'h:' .. ARGV[1], string.format('%.0f', h[1]) .. ':' .. string.format('%.0f', h[2]))
settle(tonumber(ARGV[3]))
return 1
"#;

/// `ARGV`: channel, margin ms. Keeps only the fencing counter.
const FORCE_RELEASE: &str = r#"
redis.call('DEL', KEYS[1])
if fence > 0 then
  redis.call('HSET', KEYS[1], 'f', string.format('%.0f', fence))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
redis.call('PUBLISH', ARGV[1], KEYS[1])
return 1
"#;

/// Returns `{holders, used}`.
const USAGE: &str = r#"
local n, used = 0, 0
for _, h in pairs(holders) do
  n = n + 1
  used = used + h[1]
end
return {n, used}
"#;

struct Scripts {
    acquire: Script,
    release: Script,
    extend: Script,
    force_release: Script,
    usage: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script = |body: &str| Script::from_lua(format!("{PRELUDE}{body}"));
    Scripts {
        acquire: script(ACQUIRE),
        release: script(RELEASE),
        extend: script(EXTEND),
        force_release: script(FORCE_RELEASE),
        usage: script(USAGE),
    }
});

impl RedisStore {
    /// The Redis hash holding the permits of `key` (same hash slot as the lock on `key`).
    ///
    /// ```
    /// use lock_store_redis::{fred::prelude::Client, RedisStore};
    /// let store = RedisStore::from_client(Client::default());
    /// assert_eq!(store.permits_key("imports"), "lock:{imports}:permits");
    /// ```
    pub fn permits_key(&self, key: &str) -> String {
        format!("{}:permits", self.redis_key(key))
    }

    /// Run a permit script on `key`'s hash. `args` builds the arguments, once on the
    /// common path (again only for a reload after `NOSCRIPT`).
    async fn eval_on<R>(
        &self,
        script: &Script,
        key: &str,
        args: impl Fn() -> Vec<Value>,
    ) -> Result<R, LockError>
    where
        R: fred::types::FromValue,
    {
        self.eval(script, || (vec![self.permits_key(key)], args()))
            .await
    }

    fn margin(&self) -> Value {
        self.inner.fence_margin_ms.to_string().into()
    }
}

#[async_trait]
impl PermitStore for RedisStore {
    async fn try_acquire_permit(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<Acquisition, LockError> {
        validate::save_input(key, owner, request.ttl)?;
        request.validate()?;
        let args = || {
            vec![
                owner.into(),
                request.limit.to_string().into(),
                request.weight.to_string().into(),
                request.ttl.map_or(0, millis).to_string().into(),
                request.reserve.map_or(0, millis).to_string().into(),
                self.margin(),
            ]
        };
        let reply: i64 = self.eval_on(&SCRIPTS.acquire, key, args).await?;
        self.acquisition(reply, "permit acquire")
    }

    async fn release_permit(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        let args = || vec![owner.into(), self.release_channel().into(), self.margin()];
        let released: i64 = self.eval_on(&SCRIPTS.release, key, args).await?;
        owned(released)
    }

    async fn extend_permit(
        &self,
        key: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        let args = || {
            vec![
                owner.into(),
                millis(duration).to_string().into(),
                self.margin(),
            ]
        };
        let extended: i64 = self.eval_on(&SCRIPTS.extend, key, args).await?;
        owned(extended)
    }

    async fn force_release_permits(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        let args = || vec![self.release_channel().into(), self.margin()];
        let _: i64 = self.eval_on(&SCRIPTS.force_release, key, args).await?;
        Ok(())
    }

    async fn permit_usage(&self, key: &str) -> Result<PermitUsage, LockError> {
        validate::key(key)?;
        let (holders, used): (i64, i64) = self.eval_on(&SCRIPTS.usage, key, Vec::new).await?;
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(PermitUsage::new(count(holders), count(used)))
    }

    fn permit_release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        Some(self.listen(&self.permits_key(key)))
    }
}
