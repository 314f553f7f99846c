//! One pub/sub connection per store that turns release messages into wake-ups.

use std::sync::Mutex;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::{Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy};
use lock_core::ReleaseHub;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// How long to wait before trying again when the subscriber cannot connect at all.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// What the subscriber connection is built from.
#[derive(Clone)]
pub(crate) struct SubscriberConfig {
    pub(crate) config: Config,
    pub(crate) perf: PerformanceConfig,
    pub(crate) connection: ConnectionConfig,
    pub(crate) policy: ReconnectPolicy,
    /// Where it connects, without the password (for log events).
    pub(crate) endpoint: String,
}

/// The lazily started subscriber of one store.
///
/// Pub/sub is at-most-once: messages published while the connection is down are lost, and
/// fred's broadcast buffer can lag. Both are answered with [`ReleaseHub::notify_all`]:
/// every waiter tries again (spurious wake-ups are harmless; waiters also poll every retry
/// `delay`, so a lost message costs at most one delay).
pub(crate) struct Subscriber {
    channel: String,
    hub: ReleaseHub,
    config: SubscriberConfig,
    running: Mutex<Option<Running>>,
}

struct Running {
    client: SubscriberClient,
    task: JoinHandle<()>,
}

impl Subscriber {
    pub(crate) fn new(channel: String, hub: ReleaseHub, config: SubscriberConfig) -> Self {
        Subscriber {
            channel,
            hub,
            config,
            running: Mutex::new(None),
        }
    }

    /// Start the subscriber unless it runs already. Needs a Tokio runtime; without one it
    /// does nothing (waiters then fall back to polling).
    pub(crate) fn ensure_started(&self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = SubscriberClient::new(
            self.config.config.clone(),
            Some(self.config.perf.clone()),
            Some(self.config.connection.clone()),
            Some(self.config.policy.clone()),
        );
        let task = runtime.spawn(run(
            client.clone(),
            self.channel.clone(),
            self.hub.clone(),
            self.config.endpoint.clone(),
        ));
        *running = Some(Running { client, task });
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let running = self.running.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(Running { client, task }) = running.take() {
            task.abort();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = client.quit().await;
                });
            }
        }
    }
}

/// Connect, subscribe, and dispatch messages until the store is dropped (which aborts this task).
async fn run(client: SubscriberClient, channel: String, hub: ReleaseHub, endpoint: String) {
    // Receivers are taken before connecting so that nothing sent after SUBSCRIBE is missed.
    let mut messages = client.message_rx();
    let mut reconnects = client.reconnect_rx();
    loop {
        match connect_and_subscribe(&client, &channel).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(
                    store = "redis",
                    %endpoint,
                    error = %crate::store::cause(error),
                    "release subscriber cannot connect; waiters poll until it can"
                );
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
    // Releases before the subscription was in place were not seen.
    hub.notify_all();
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) => {
                    if *message.channel == *channel {
                        if let Some(key) = message.value.as_str() {
                            hub.notify(&key);
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => hub.notify_all(),
                Err(RecvError::Closed) => return,
            },
            reconnect = reconnects.recv() => match reconnect {
                Ok(_) => {
                    // Re-subscribe first, then wake everyone: releases while disconnected were lost.
                    if let Err(error) = client.resubscribe_all().await {
                        tracing::warn!(
                            store = "redis",
                            %endpoint,
                            error = %crate::store::cause(error),
                            "release subscriber failed to re-subscribe"
                        );
                    }
                    hub.notify_all();
                }
                Err(RecvError::Lagged(_)) => hub.notify_all(),
                Err(RecvError::Closed) => return,
            },
        }
    }
}

async fn connect_and_subscribe(
    client: &SubscriberClient,
    channel: &str,
) -> Result<(), fred::error::Error> {
    if !client.is_connected() {
        let _connection_task = client.init().await?;
    }
    client.subscribe(channel).await
}
