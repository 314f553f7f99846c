use std::error::Error as StdError;
use std::fmt;

/// A boxed error kept as the source of [`LockError::Storage`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Every error this workspace returns.
///
/// Match on the variant, or compare [`LockError::code`] with the stable codes
/// Verrou users know (`E_LOCK_NOT_OWNED`, …).
///
/// # Messages and causes
///
/// An error's message (`Display`) is complete on its own — `lock store failed: cannot
/// connect to the redis lock store at redis://127.0.0.1:6379: Connection refused` — so a
/// log line with `%error` says everything. Its [`source`](StdError::source) chain holds
/// only the causes the message does *not* already show, so a report that prints the chain
/// (anyhow's `{:?}`, eyre) shows no cause twice. The driver's error itself stays at hand:
/// the field of [`Storage`](LockError::Storage), or [`StoreError::cause`] through
/// [`store_error`](LockError::store_error).
#[derive(Debug)]
#[non_exhaustive]
pub enum LockError {
    /// Release or extend of a lock that this owner does not hold (held by another
    /// owner, expired, or not held at all).
    NotOwned,

    /// The store failed: connection, query, timeout. The message shows the driver's
    /// error, which this field keeps.
    Storage(BoxError),

    /// A caller passed something the API cannot accept (empty key, zero TTL,
    /// `attempts: 0`, a malformed serialized lock, …).
    InvalidArgument(String),

    /// A store name that the configuration does not define.
    UnknownStore {
        /// The name that was asked for.
        name: String,
        /// The names that are configured.
        configured: Vec<String>,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::NotOwned => f.write_str(
                "Looks like you are trying to release a lock that is not acquired by you",
            ),
            LockError::Storage(source) => write!(f, "lock store failed: {source}"),
            LockError::InvalidArgument(message) => write!(f, "invalid argument: {message}"),
            LockError::UnknownStore { name, configured } => write!(
                f,
                "unknown lock store {name:?}; configured stores: {}",
                configured.join(", ")
            ),
        }
    }
}

impl StdError for LockError {
    /// The first cause the message does not already show (see the type's docs).
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            LockError::Storage(source) => {
                let source: &(dyn StdError + 'static) = &**source;
                unshown(&source.to_string(), Some(source))
            }
            _ => None,
        }
    }
}

/// The first error of the chain from `next` whose message is not part of `shown`.
fn unshown<'a>(
    shown: &str,
    mut next: Option<&'a (dyn StdError + 'static)>,
) -> Option<&'a (dyn StdError + 'static)> {
    while let Some(error) = next {
        if !shown.contains(&error.to_string()) {
            return Some(error);
        }
        next = error.source();
    }
    None
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
    /// message names both and shows the cause, which stays at hand through
    /// [`store_error`](Self::store_error).
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
    /// // The message shows every cause, so the `source` chain has nothing more to add…
    /// assert!(err.source().is_none());
    /// // …and the driver's error is still there.
    /// let cause = err.store_error().unwrap().cause();
    /// let io = cause.downcast_ref::<std::io::Error>().unwrap();
    /// assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
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
/// connecting. Its message shows the driver's error ([`cause`](Self::cause)); its
/// [`source`](std::error::Error::source) is the first cause the message does not show.
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

    /// The driver's error (its own causes through its `source`).
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
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
        let cause: &(dyn StdError + 'static) = &*self.source;
        unshown(&self.to_string(), Some(cause))
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

    /// An error whose message does not show its cause.
    #[derive(Debug)]
    struct Query(std::io::Error);

    impl fmt::Display for Query {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("query failed")
        }
    }

    impl StdError for Query {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    fn chain(err: &LockError) -> Vec<String> {
        std::iter::successors(StdError::source(err), |e| (*e).source())
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn storage_keeps_its_cause_and_the_chain_shows_no_cause_twice() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = LockError::storage(io);
        assert_eq!(err.to_string(), "lock store failed: refused");
        assert!(chain(&err).is_empty(), "{:?}", chain(&err));
        let LockError::Storage(cause) = &err else {
            unreachable!()
        };
        assert!(cause.downcast_ref::<std::io::Error>().is_some());

        // A cause the message does not show is the source.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = LockError::storage(Query(io));
        assert_eq!(err.to_string(), "lock store failed: query failed");
        assert_eq!(chain(&err), ["refused"]);
        let err = LockError::store_failed(
            "postgres",
            "postgres://db/app",
            Query(std::io::Error::other("refused")),
        );
        assert_eq!(
            err.to_string(),
            "lock store failed: postgres lock store at postgres://db/app: query failed"
        );
        assert_eq!(chain(&err), ["refused"]);
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
        assert_eq!(context.cause().to_string(), "refused");
        assert!(chain(&err).is_empty(), "{:?}", chain(&err));
        assert!(LockError::storage_msg("x").store_error().is_none());
    }
}
