//! PostgreSQL release notification: one `LISTEN` connection per store, outside the pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::StreamExt;
use lock_core::{ReleaseFuture, ReleaseHub};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::sql::postgres::PgPool;

/// The longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long the `NOTIFY` of one of this process's own releases is expected back. Past
/// this, the expectation is dropped (the notification was lost, or `LISTEN` began after
/// the release committed) so it cannot swallow another process's notification.
const ECHO_WINDOW: Duration = Duration::from_secs(1);

/// Above this many keys awaiting their echo, stale ones are dropped.
const PRUNE_AT: usize = 1024;

/// This process's own releases whose `NOTIFY` has not come back yet, by key: their
/// waiters were woken at once, so the notification, when it arrives, is not passed on
/// (it would wake the next waiter for a release it has already seen, and that waiter
/// would spend a statement finding the lock taken).
#[derive(Default)]
struct Echoes {
    /// `LISTEN` is in effect: only then will a release's notification come back.
    listening: AtomicBool,
    expected: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Echoes {
    fn expected(&self) -> MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.expected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One of our releases of `key` committed (its waiters here were just woken).
    fn expect(&self, key: &str) {
        if !self.listening.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let mut expected = self.expected();
        // Echoes that never came (a connection that died silently) are dropped once the
        // map grows, so it stays as small as the releases of the last moments.
        if expected.len() >= PRUNE_AT {
            expected.retain(|_, (_, at)| now.saturating_duration_since(*at) <= ECHO_WINDOW);
        }
        let entry = expected.entry(key.to_owned()).or_insert((0, now));
        *entry = (entry.0 + 1, now);
    }

    /// A notification for `key` arrived: `true` if it is the echo of our own release.
    fn is_echo(&self, key: &str) -> bool {
        let mut expected = self.expected();
        let Some((count, at)) = expected.get_mut(key) else {
            return false;
        };
        if at.elapsed() > ECHO_WINDOW {
            expected.remove(key);
            return false;
        }
        *count -= 1;
        if *count == 0 {
            expected.remove(key);
        }
        true
    }

    /// `LISTEN` began or ended: nothing is expected back any more.
    fn set_listening(&self, on: bool) {
        self.listening.store(on, Ordering::SeqCst);
        self.expected().clear();
    }
}

/// Dispatches the `NOTIFY` of releases (by any process) to this process's waiters.
///
/// Started lazily by the first [`listen`](Self::listen). The releasing statements send
/// `pg_notify(channel, hex(key))` when they commit; the task decodes the key and wakes its
/// listeners. After (re)connecting, and whenever the connection is lost, it wakes every
/// waiter, because releases may have gone unheard meanwhile; waiters also poll at their
/// retry `delay`, so a silently dead connection only costs latency.
pub(crate) struct PgListener {
    hub: ReleaseHub,
    pool: PgPool,
    channel: String,
    connect_timeout: Duration,
    /// Where it connects, without the password (for log events).
    endpoint: String,
    task: Mutex<Option<AbortHandle>>,
    echoes: Arc<Echoes>,
}

impl PgListener {
    pub(crate) fn new(
        pool: PgPool,
        channel: String,
        connect_timeout: Duration,
        endpoint: String,
    ) -> Self {
        PgListener {
            hub: ReleaseHub::default(),
            pool,
            channel,
            connect_timeout,
            endpoint,
            task: Mutex::new(None),
            echoes: Arc::default(),
        }
    }

    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// One of this process's releases of `key` committed: wake its waiters here now,
    /// and do not pass on the `NOTIFY` of that release when it comes back.
    pub(crate) fn released_locally(&self, key: &str) {
        self.echoes.expect(key);
        self.hub.notify(key);
    }

    /// Register a waiter for `key` (registered now, before any await), starting the
    /// listening task if it is not running.
    pub(crate) fn listen(&self, key: &str) -> ReleaseFuture {
        let listener = self.hub.listen(key);
        self.ensure_running();
        listener
    }

    fn task(&self) -> MutexGuard<'_, Option<AbortHandle>> {
        self.task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ensure_running(&self) {
        let mut task = self.task();
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        // Outside a runtime nothing can be spawned: waiters then poll.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let handle = runtime.spawn(listen_loop(
            self.hub.clone(),
            self.echoes.clone(),
            self.pool.clone(),
            self.channel.clone(),
            self.connect_timeout,
            self.endpoint.clone(),
        ));
        *task = Some(handle.abort_handle());
    }
}

impl Drop for PgListener {
    fn drop(&mut self) {
        if let Some(task) = self.task().take() {
            task.abort();
        }
    }
}

async fn listen_loop(
    hub: ReleaseHub,
    echoes: Arc<Echoes>,
    pool: PgPool,
    channel: String,
    connect_timeout: Duration,
    endpoint: String,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match connect(&pool, &channel, connect_timeout).await {
            Ok(mut conn) => {
                backoff = Duration::from_millis(50);
                tracing::debug!(store = "postgres", %channel, "listening for lock releases");
                echoes.set_listening(true);
                // Releases before LISTEN took effect were not heard: let everyone retry.
                hub.notify_all();
                let mut notifications = std::pin::pin!(conn.notifications_stream());
                while let Some(notification) = notifications.next().await {
                    match notification {
                        Ok(n) if n.channel == channel => {
                            if let Some(key) = decode_key(&n.payload) {
                                if !echoes.is_echo(&key) {
                                    hub.notify(&key);
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(store = "postgres", %endpoint, %error, "release listener failed");
                            break;
                        }
                    }
                }
                tracing::warn!(
                    store = "postgres",
                    %endpoint,
                    "release listener connection lost; reconnecting"
                );
            }
            Err(error) => {
                tracing::warn!(store = "postgres", %endpoint, %error, "release listener cannot connect");
            }
        }
        echoes.set_listening(false);
        hub.notify_all();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A connection of our own: taken out of the pool for good, so the pool can replace it.
async fn connect(
    pool: &PgPool,
    channel: &str,
    timeout: Duration,
) -> Result<AsyncPgConnection, lock_core::BoxError> {
    let conn = tokio::time::timeout(timeout, pool.get())
        .await
        .map_err(|_| "timed out connecting")??;
    let mut conn = Object::take(conn);
    // `channel` is derived from a validated identifier: safe to quote and interpolate
    // (LISTEN takes no bind parameters).
    tokio::time::timeout(
        timeout,
        conn.batch_execute(&format!("LISTEN \"{channel}\"")),
    )
    .await
    .map_err(|_| "timed out sending LISTEN")??;
    Ok(conn)
}

/// The key from a `NOTIFY` payload (hex of its UTF-8 bytes: payloads cannot hold NUL).
fn decode_key(payload: &str) -> Option<String> {
    if payload.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..payload.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(payload.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::{Echoes, decode_key};

    #[test]
    fn own_releases_are_not_passed_on_twice() {
        let echoes = Echoes::default();
        echoes.expect("k");
        assert!(!echoes.is_echo("k"), "not listening: nothing comes back");
        echoes.set_listening(true);
        echoes.expect("k");
        echoes.expect("k");
        assert!(echoes.is_echo("k"));
        assert!(echoes.is_echo("k"));
        assert!(
            !echoes.is_echo("k"),
            "another process's release is passed on"
        );
        assert!(!echoes.is_echo("other"));
        echoes.expect("k");
        echoes.set_listening(false);
        assert!(
            !echoes.is_echo("k"),
            "a reconnect forgets what was expected"
        );
    }

    #[test]
    fn payloads_decode_to_keys() {
        assert_eq!(decode_key("6b6579").as_deref(), Some("key"));
        assert_eq!(decode_key("").as_deref(), Some(""));
        assert_eq!(decode_key("c3a9006b").as_deref(), Some("é\0k"));
        assert_eq!(decode_key("6b6").as_deref(), None);
        assert_eq!(decode_key("zz").as_deref(), None);
        assert_eq!(decode_key("ff").as_deref(), None);
    }
}
