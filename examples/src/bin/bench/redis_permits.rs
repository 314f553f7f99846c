//! The Redis permit baseline: the store's own permit acquire and release scripts, sent
//! as raw `EVALSHA` on the store's fred client, without the store or `lock-core`.
//!
//! The scripts are the store's private ones. For each kind of request, their SHA1s
//! and arguments are read off the wire once: the store runs one acquire and release
//! through its `PermitStore` on a key of the bench's while a connection of our own
//! watches with `MONITOR`. The raw cycle then sends those calls with its own key and
//! owner in their places, so it runs exactly the store's scripts, and only them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lock_core::{LockError, PermitRequest, PermitStore, async_trait};
use lock_store_redis::RedisStore;
use lock_store_redis::fred::interfaces::LuaInterface;
use lock_testkit::bench::PermitBaseline;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::prepare::storage;
use crate::redis::host_port;

/// How long the capture may wait for the store's calls to show up in `MONITOR`.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(10);

/// One script call as the store sent it.
struct Call {
    sha: String,
    keys: Vec<String>,
    args: Vec<String>,
}

/// The store's acquire and release calls for one kind of request, made on `hash` by
/// `owner`.
struct Captured {
    hash: String,
    owner: String,
    acquire: Call,
    release: Call,
}

impl Captured {
    /// `call`'s keys and arguments with our `hash` and `owner` where the captured ones
    /// stood.
    fn bind(&self, call: &Call, hash: &str, owner: &str) -> (Vec<String>, Vec<String>) {
        let swap = |values: &[String]| -> Vec<String> {
            values
                .iter()
                .map(|v| match v {
                    v if *v == self.hash => hash.to_owned(),
                    v if *v == self.owner => owner.to_owned(),
                    v => v.clone(),
                })
                .collect()
        };
        (swap(&call.keys), swap(&call.args))
    }
}

type RequestKind = (u32, u32, Option<Duration>, Option<Duration>);

/// The store's permit scripts as raw `EVALSHA` on the store's client.
pub struct RedisPermitScripts {
    store: RedisStore,
    url: String,
    captured: tokio::sync::Mutex<HashMap<RequestKind, Arc<Captured>>>,
    captures: AtomicU64,
}

impl RedisPermitScripts {
    /// On `store`, whose server `url` names (for the `MONITOR` connection).
    pub fn new(store: RedisStore, url: String) -> Self {
        RedisPermitScripts {
            store,
            url,
            captured: Default::default(),
            captures: AtomicU64::new(0),
        }
    }

    async fn calls(&self, request: PermitRequest) -> Result<Arc<Captured>, LockError> {
        let kind = (request.limit, request.weight, request.ttl, request.reserve);
        let mut captured = self.captured.lock().await;
        if let Some(c) = captured.get(&kind) {
            return Ok(c.clone());
        }
        let n = self.captures.fetch_add(1, Ordering::Relaxed);
        let tag = format!("bench-capture-{}-{n}", std::process::id());
        let c = Arc::new(self.capture(&tag, &tag, request).await?);
        captured.insert(kind, c.clone());
        Ok(c)
    }

    /// Watch the store acquire and release `key` for `owner` with `request`.
    async fn capture(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<Captured, LockError> {
        let permits: &dyn PermitStore = &self.store;
        let mut monitor = Monitor::open(&self.url).await?;
        permits.force_release_permits(key).await?;
        if !permits
            .try_acquire_permit(key, owner, request)
            .await?
            .acquired
        {
            return Err(LockError::storage_msg(format!(
                "capture key {key:?} is held: is another bench running?"
            )));
        }
        permits.release_permit(key, owner).await?;
        // The store's calls carrying our owner: the acquire's script, then the
        // release's (a NOSCRIPT retry repeats a call; the last of each counts).
        let mut calls: Vec<Call> = Vec::new();
        let deadline = tokio::time::Instant::now() + CAPTURE_TIMEOUT;
        while calls.len() < 2 || calls.iter().all(|c| c.sha == calls[0].sha) {
            let words = tokio::time::timeout_at(deadline, monitor.next())
                .await
                .map_err(|_| LockError::storage_msg("MONITOR showed no permit scripts"))??;
            let Some((command, rest)) = words.split_first() else {
                continue;
            };
            if !command.eq_ignore_ascii_case("EVALSHA") || !rest.iter().any(|w| w == owner) {
                continue;
            }
            let call = parse_evalsha(rest)?;
            match calls.iter_mut().find(|c| c.sha == call.sha) {
                Some(seen) => *seen = call,
                None => calls.push(call),
            }
        }
        let release = calls.swap_remove(1);
        let acquire = calls.swap_remove(0);
        Ok(Captured {
            hash: self.store.permits_key(key),
            owner: owner.to_owned(),
            acquire,
            release,
        })
    }

    async fn evalsha(
        &self,
        call: &Call,
        (keys, args): (Vec<String>, Vec<String>),
    ) -> Result<i64, LockError> {
        self.store
            .client()
            .evalsha(call.sha.as_str(), keys, args)
            .await
            .map_err(storage)
    }
}

/// `sha numkeys key… arg…` of an `EVALSHA`.
fn parse_evalsha(words: &[String]) -> Result<Call, LockError> {
    let bad = || LockError::storage_msg(format!("unexpected EVALSHA in MONITOR: {words:?}"));
    let (sha, rest) = words.split_first().ok_or_else(bad)?;
    let (numkeys, rest) = rest.split_first().ok_or_else(bad)?;
    let numkeys: usize = numkeys.parse().map_err(|_| bad())?;
    if rest.len() < numkeys {
        return Err(bad());
    }
    let (keys, args) = rest.split_at(numkeys);
    Ok(Call {
        sha: sha.clone(),
        keys: keys.to_vec(),
        args: args.to_vec(),
    })
}

#[async_trait]
impl PermitBaseline for RedisPermitScripts {
    fn describe(&self) -> String {
        "the store's own permit acquire + release scripts, raw EVALSHA on the store's fred client"
            .to_owned()
    }

    async fn cycle(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<bool, LockError> {
        let c = self.calls(request).await?;
        let hash = self.store.permits_key(key);
        let token = self
            .evalsha(&c.acquire, c.bind(&c.acquire, &hash, owner))
            .await?;
        if token < 1 {
            return Ok(false);
        }
        let released = self
            .evalsha(&c.release, c.bind(&c.release, &hash, owner))
            .await?;
        Ok(released == 1)
    }
}

/// A plain-TCP connection in `MONITOR` mode.
struct Monitor(BufReader<TcpStream>);

/// A command in RESP.
fn resp(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        out.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
    }
    out
}

impl Monitor {
    async fn open(url: &str) -> Result<Monitor, LockError> {
        if !url.starts_with("redis://") {
            return Err(LockError::invalid(
                "the raw permit baseline reads MONITOR over plain TCP: a redis:// URL",
            ));
        }
        let (host, port) = host_port(url, 6379);
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(storage)?;
        let mut monitor = Monitor(BufReader::new(stream));
        let userinfo = url["redis://".len()..]
            .split('/')
            .next()
            .and_then(|a| a.rsplit_once('@'))
            .map(|(u, _)| u.to_owned());
        if let Some(userinfo) = userinfo {
            let auth = match userinfo.split_once(':') {
                Some(("", pass)) => resp(&["AUTH", pass]),
                Some((user, pass)) => resp(&["AUTH", user, pass]),
                None => resp(&["AUTH", &userinfo]),
            };
            monitor.command(&auth).await?;
        }
        monitor.command(&resp(&["MONITOR"])).await?;
        Ok(monitor)
    }

    async fn command(&mut self, command: &[u8]) -> Result<(), LockError> {
        self.0.get_mut().write_all(command).await.map_err(storage)?;
        let line = self.line().await?;
        if line.starts_with('+') {
            Ok(())
        } else {
            Err(LockError::storage_msg(format!("redis answered {line:?}")))
        }
    }

    async fn line(&mut self) -> Result<String, LockError> {
        let mut line = String::new();
        if self.0.read_line(&mut line).await.map_err(storage)? == 0 {
            return Err(LockError::storage_msg("the MONITOR connection closed"));
        }
        Ok(line.trim_end().to_owned())
    }

    /// The next command seen: its quoted words.
    async fn next(&mut self) -> Result<Vec<String>, LockError> {
        Ok(quoted_words(&self.line().await?))
    }
}

/// The `"…"` words of a `MONITOR` line, unescaped.
fn quoted_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars();
    while chars.any(|c| c == '"') {
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => word.push('\n'),
                    Some('r') => word.push('\r'),
                    Some('t') => word.push('\t'),
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).collect();
                        word.push(u8::from_str_radix(&hex, 16).map_or('?', char::from));
                    }
                    Some(other) => word.push(other),
                    None => {}
                },
                c => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_are_split_into_words() {
        let line = r#"+1712.5 [0 127.0.0.1:5000] "EVALSHA" "ab" "1" "k\"q" "o\x41" "4""#;
        assert_eq!(
            quoted_words(line),
            ["EVALSHA", "ab", "1", "k\"q", "oA", "4"]
        );
        let call = parse_evalsha(&quoted_words(line)[1..]).unwrap();
        assert_eq!(
            (call.keys, call.args),
            (
                vec!["k\"q".to_owned()],
                vec!["oA".to_owned(), "4".to_owned()]
            )
        );
    }
}
