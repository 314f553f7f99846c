use std::error::Error as StdError;

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
}
