use std::time::Duration;

use crate::{FactoryOptions, LockError, RetryConfig, StoreFactory};

/// Where the default store's name comes from.
#[derive(Debug, Clone)]
enum DefaultStore {
    Unset,
    Named(String),
    Env {
        var: String,
        fallback: Option<String>,
    },
}

/// The configuration of a [`LockManager`](crate::LockManager): named stores and the
/// default one (the seed's `defineConfig`).
///
/// ```
/// use lock_core::{LockConfig, LockManager, StoreFactory};
/// # let memory = || StoreFactory::from_store(lock_core::testing::TestStore::default());
/// let config = LockConfig::new()
///     .default_store_from_env_or("LOCK_STORE", "memory")
///     .store("memory", memory());
/// let locks = LockManager::new(config).unwrap();
/// assert_eq!(locks.default_store_name(), "memory");
/// ```
#[derive(Debug, Clone)]
pub struct LockConfig {
    default: DefaultStore,
    pub(crate) stores: Vec<(String, StoreFactory)>,
    pub(crate) options: FactoryOptions,
    pub(crate) auto_extend: bool,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl LockConfig {
    /// An empty configuration (Verrou's defaults: TTL 30 s, retry forever every 250 ms).
    pub fn new() -> Self {
        LockConfig {
            default: DefaultStore::Unset,
            stores: Vec::new(),
            options: FactoryOptions::default(),
            auto_extend: false,
        }
    }

    /// Add (or replace) a named store.
    pub fn store(mut self, name: impl Into<String>, factory: StoreFactory) -> Self {
        let name = name.into();
        self.stores.retain(|(n, _)| *n != name);
        self.stores.push((name, factory));
        self
    }

    /// The default store, by name.
    pub fn default_store(mut self, name: impl Into<String>) -> Self {
        self.default = DefaultStore::Named(name.into());
        self
    }

    /// The default store, named by an environment variable (the seed's `LOCK_STORE`). The
    /// variable must be set and name a configured store; otherwise building the manager
    /// fails with a message listing the allowed names.
    pub fn default_store_from_env(mut self, var: impl Into<String>) -> Self {
        self.default = DefaultStore::Env {
            var: var.into(),
            fallback: None,
        };
        self
    }

    /// Like [`default_store_from_env`](Self::default_store_from_env), with `fallback`
    /// when the variable is unset or empty. A set value naming no store is still an error.
    pub fn default_store_from_env_or(
        mut self,
        var: impl Into<String>,
        fallback: impl Into<String>,
    ) -> Self {
        self.default = DefaultStore::Env {
            var: var.into(),
            fallback: Some(fallback.into()),
        };
        self
    }

    /// Retry settings for every lock.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.options.retry = retry;
        self
    }

    /// Default TTL for every lock (`None`: never expire).
    pub fn default_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.options.default_ttl = ttl;
        self
    }

    /// Auto-extension for every lock.
    pub fn auto_extend(mut self, on: bool) -> Self {
        self.auto_extend = on;
        self
    }

    /// The configured store names, in the order they were added.
    pub fn store_names(&self) -> Vec<String> {
        self.stores.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Resolve and check the default store's name.
    pub(crate) fn resolve_default(&self) -> Result<String, LockError> {
        let configured = self.store_names();
        let unknown = |name: String| LockError::UnknownStore {
            name,
            configured: configured.clone(),
        };
        let name = match &self.default {
            DefaultStore::Unset => {
                return Err(LockError::invalid(format!(
                    "no default lock store: name one of [{}] with default_store()",
                    configured.join(", ")
                )));
            }
            DefaultStore::Named(name) => name.clone(),
            DefaultStore::Env { var, fallback } => {
                match std::env::var(var).ok().filter(|v| !v.is_empty()) {
                    Some(value) => value,
                    None => fallback.clone().ok_or_else(|| {
                        LockError::invalid(format!(
                            "environment variable {var} is not set; expected one of [{}]",
                            configured.join(", ")
                        ))
                    })?,
                }
            }
        };
        if configured.contains(&name) {
            Ok(name)
        } else {
            Err(unknown(name))
        }
    }
}
