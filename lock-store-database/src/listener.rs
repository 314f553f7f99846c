//! PostgreSQL release notification: one `LISTEN` connection per store, outside the pool.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::StreamExt;
use lock_core::{ReleaseFuture, ReleaseHub};
use tokio::task::AbortHandle;

use crate::sql::postgres::PgPool;

/// The longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
        }
    }

    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    pub(crate) fn hub(&self) -> &ReleaseHub {
        &self.hub
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
                // Releases before LISTEN took effect were not heard: let everyone retry.
                hub.notify_all();
                let mut notifications = std::pin::pin!(conn.notifications_stream());
                while let Some(notification) = notifications.next().await {
                    match notification {
                        Ok(n) if n.channel == channel => {
                            if let Some(key) = decode_key(&n.payload) {
                                hub.notify(&key);
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
    use super::decode_key;

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
