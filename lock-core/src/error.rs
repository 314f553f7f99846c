use std::error::Error as StdError;
use std::fmt;

/// A boxed error kept as the source of [`LockError::Storage`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Every error this workspace returns.
///
/// Match on the variant, or compare [`LockError::code`] with the stable codes
/// Verrou users know (`E_LOCK_NOT_OWNED`, …).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Release or extend of a lock that this owner does not hold (held by another
    /// owner, expired, or not held at all).
    #[error("Looks like you are trying to release a lock that is not acquired by you")]
    NotOwned,

    /// The store failed: connection, query, timeout. The driver's error is kept as the source.
    #[error("lock store failed: {0}")]
    Storage(#[source] BoxError),

    /// A caller passed something the API cannot accept (empty key, zero TTL,
    /// `attempts: 0`, a malformed serialized lock, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A store name that the configuration does not define.
    #[error("unknown lock store {name:?}; configured stores: {}", configured.join(", "))]
    UnknownStore {
        /// The name that was asked for.
        name: String,
        /// The names that are configured.
        configured: Vec<String>,
    },
}

impl LockError {
    /// The stable error code, as in Verrou.
    ///
    /// ```
    /// use lock_core::LockError;
    /// assert_eq!(LockError::NotOwned.code(), "E_LOCK_NOT_OWNED");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            LockError::NotOwned => "E_LOCK_NOT_OWNED",
            LockError::Storage(_) => "E_LOCK_STORAGE_ERROR",
            LockError::InvalidArgument(_) => "E_INVALID_ARGUMENTS",
            LockError::UnknownStore { .. } => "E_UNKNOWN_STORE",
        }
    }

    /// Wrap a store failure.
    pub fn storage(source: impl Into<BoxError>) -> Self {
        LockError::Storage(source.into())
    }

    /// A failure of the store `store` (`"redis"`, `"postgres"`, …) talking to `endpoint`,
    /// which must already be redacted (see [`redact_url`](crate::redact_url)). The
    /// message names both; the cause stays reachable through
    /// [`source`](std::error::Error::source).
    ///
    /// ```
    /// use std::error::Error;
    /// use lock_core::LockError;
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
    /// let err = LockError::store_failed("redis", "redis://127.0.0.1:6379", io);
    /// assert_eq!(
    ///     err.to_string(),
    ///     "lock store failed: redis lock store at redis://127.0.0.1:6379: connection refused"
    /// );
    /// let context = err.source().unwrap();
    /// assert_eq!(context.source().unwrap().to_string(), "connection refused");
    /// ```
    pub fn store_failed(
        store: impl Into<String>,
        endpoint: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        LockError::Storage(Box::new(StoreError {
            store: store.into(),
            endpoint: endpoint.into(),
            connect: false,
            source: source.into(),
        }))
    }

    /// The store could not connect (or open itself) at `endpoint`, already redacted.
    /// As [`store_failed`](Self::store_failed), and logs the one `warn` event of this
    /// failure (`store`, `endpoint`, `error`): a [`LockManager`](crate::LockManager)
    /// that was building the store does not log it again.
    pub fn connect_failed(
        store: impl Into<String>,
        endpoint: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        let error = StoreError {
            store: store.into(),
            endpoint: endpoint.into(),
            connect: true,
            source: source.into(),
        };
        tracing::warn!(
            store = %error.store,
            endpoint = %error.endpoint,
            error = %error.source,
            "cannot connect to the lock store"
        );
        LockError::Storage(Box::new(error))
    }

    /// The [`StoreError`] context of a [`Storage`](LockError::Storage) error, if the
    /// store gave one.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            LockError::Storage(source) => source.downcast_ref(),
            _ => None,
        }
    }

    /// A store failure described by a message alone (no underlying error to keep).
    pub fn storage_msg(message: impl Into<String>) -> Self {
        LockError::Storage(message.into().into())
    }

    /// An invalid argument, with a message that says what was wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        LockError::InvalidArgument(message.into())
    }

    /// `true` for [`LockError::NotOwned`].
    pub fn is_not_owned(&self) -> bool {
        matches!(self, LockError::NotOwned)
    }

    /// `true` for [`LockError::Storage`].
    pub fn is_storage(&self) -> bool {
        matches!(self, LockError::Storage(_))
    }
}

/// The context of a store failure, kept as the source of [`LockError::Storage`]: which
/// store, which endpoint (without its password), and whether it happened while
/// connecting. The driver's error is its [`source`](std::error::Error::source).
///
/// Made by [`LockError::store_failed`] and [`LockError::connect_failed`].
#[derive(Debug)]
pub struct StoreError {
    store: String,
    endpoint: String,
    connect: bool,
    source: BoxError,
}

impl StoreError {
    /// The store's name (`"redis"`, `"postgres"`, `"mysql"`, `"sqlite"`, …).
    pub fn store(&self) -> &str {
        &self.store
    }

    /// Where the store connects, without its password.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the store failed to connect (or to open itself), rather than in an
    /// operation on an established store.
    pub fn is_connect(&self) -> bool {
        self.connect
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.connect {
            write!(f, "cannot connect to the ")?;
        }
        write!(
            f,
            "{} lock store at {}: {}",
            self.store, self.endpoint, self.source
        )
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(LockError::NotOwned.code(), "E_LOCK_NOT_OWNED");
        assert_eq!(LockError::storage_msg("x").code(), "E_LOCK_STORAGE_ERROR");
        assert_eq!(LockError::invalid("x").code(), "E_INVALID_ARGUMENTS");
        let unknown = LockError::UnknownStore {
            name: "redis".into(),
            configured: vec!["memory".into(), "database".into()],
        };
        assert_eq!(unknown.code(), "E_UNKNOWN_STORE");
        assert_eq!(
            unknown.to_string(),
            "unknown lock store \"redis\"; configured stores: memory, database"
        );
    }

    #[test]
    fn storage_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = LockError::storage(io);
        let source = StdError::source(&err).expect("source kept");
        assert_eq!(source.to_string(), "refused");
    }

    #[test]
    fn a_store_error_names_store_and_endpoint_and_keeps_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = LockError::connect_failed("postgres", "postgres://u:***@db:5432/app", io);
        assert!(err.is_storage());
        assert_eq!(
            err.to_string(),
            "lock store failed: cannot connect to the postgres lock store at \
             postgres://u:***@db:5432/app: refused"
        );
        let context = err.store_error().expect("a store error");
        assert_eq!(
            (context.store(), context.endpoint(), context.is_connect()),
            ("postgres", "postgres://u:***@db:5432/app", true)
        );
        let chain: Vec<String> = std::iter::successors(StdError::source(&err), |e| (*e).source())
            .map(|e| e.to_string())
            .collect();
        assert_eq!(chain.len(), 2, "{chain:?}");
        assert_eq!(chain[1], "refused");
        assert!(LockError::storage_msg("x").store_error().is_none());
    }
}
