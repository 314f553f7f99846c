//! A store that cannot connect is reported by exactly one `warn` event naming its
//! endpoint, whether the store logs it (`LockError::connect_failed`) or lock-core does.

use std::sync::{Arc, Mutex};

use lock_core::{LockConfig, LockError, LockManager, StoreFactory, testing::TestStore};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The `warn` (and worse) events seen, each as `message field=value …`.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl Subscriber for Warnings {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() <= Level::WARN {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Acquire once on a manager whose only store fails to build with `error`; the
/// warnings logged meanwhile.
fn warnings_of_a_failed_build(error: fn() -> LockError) -> Vec<String> {
    let warnings = Warnings::default();
    let seen = warnings.clone();
    tracing::subscriber::with_default(warnings, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let failing = StoreFactory::new(move || async move { Err::<TestStore, _>(error()) });
            let locks = LockManager::new(
                LockConfig::new()
                    .store("down", failing)
                    .default_store("down"),
            )
            .unwrap();
            let err = locks
                .create_lock("k")
                .unwrap()
                .acquire_immediately()
                .await
                .expect_err("the store cannot be built");
            assert!(err.is_storage(), "{err}");
        });
    });
    seen.0.lock().unwrap().clone()
}

#[test]
fn a_failed_connect_is_one_warning_with_the_endpoint() {
    let warnings = warnings_of_a_failed_build(|| {
        LockError::connect_failed(
            "redis",
            "redis://:***@127.0.0.1:1",
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"),
        )
    });
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("redis://:***@127.0.0.1:1") && warnings[0].contains("refused"),
        "{warnings:#?}"
    );
}

#[test]
fn a_failed_build_without_context_is_one_warning_from_lock_core() {
    let warnings = warnings_of_a_failed_build(|| LockError::storage_msg("disk full"));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("disk full"), "{warnings:#?}");
}
