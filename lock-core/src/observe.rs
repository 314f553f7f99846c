//! What lock-core reports about locks: `tracing` spans and events always, and with the
//! `metrics` feature, counters and histograms through the [`metrics`] facade.
//!
//! The metric names are documented in the crate docs (`# Observability`).
//!
//! Owner tokens never appear in spans, events or labels.

use std::time::Duration;

use crate::LockError;

#[cfg(feature = "metrics")]
fn store_label(store: &str) -> [(&'static str, String); 1] {
    [("store", store.to_owned())]
}

pub(crate) fn acquired(store: &str, waited: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("lock_acquired_total", &store_label(store)).increment(1);
        metrics::histogram!("lock_wait_seconds", &store_label(store)).record(waited.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (store, waited);
}

pub(crate) fn denied(store: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("lock_denied_total", &store_label(store)).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = store;
}

pub(crate) fn released(store: &str, held: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("lock_released_total", &store_label(store)).increment(1);
        if let Some(held) = held {
            metrics::histogram!("lock_hold_seconds", &store_label(store))
                .record(held.as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (store, held);
}

pub(crate) fn lost(store: &str, key: &str, reason: &str) {
    tracing::warn!(store, key, reason, "lock lost");
    #[cfg(feature = "metrics")]
    metrics::counter!("lock_lost_total", &store_label(store)).increment(1);
}

/// A store error in `operation`: one WARN event and one count.
pub(crate) fn error(store: &str, key: &str, operation: &'static str, error: &LockError) {
    tracing::warn!(store, key, operation, code = error.code(), %error, "lock store error");
    count_error(store, operation, error);
}

/// Building the store `store` failed: one WARN event (unless the store already logged
/// its failed connect, see [`LockError::connect_failed`]) and one count.
pub(crate) fn build_failed(store: &str, error: &LockError) {
    if error.store_error().is_some_and(|e| e.is_connect()) {
        count_error(store, "build", error);
    } else {
        self::error(store, "", "build", error);
    }
}

fn count_error(store: &str, operation: &'static str, error: &LockError) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "lock_errors_total",
        &[
            ("store", store.to_owned()),
            ("operation", operation.to_owned()),
            ("code", error.code().to_owned()),
        ]
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (store, operation, error);
}
