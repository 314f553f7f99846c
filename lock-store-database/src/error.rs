//! The store's own error sources (carried inside `LockError::Storage`).

use std::fmt;
use std::time::Duration;

use lock_core::BoxError;

/// An operation ran out of time.
#[derive(Debug)]
pub(crate) struct TimedOut(pub(crate) Duration, pub(crate) &'static str);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database operation timed out after {:?} ({})",
            self.0, self.1
        )
    }
}

impl std::error::Error for TimedOut {}

/// The lock table is missing or has the wrong columns.
#[derive(Debug)]
pub(crate) struct TableError {
    pub(crate) table: String,
    pub(crate) source: BoxError,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lock table `{}` is missing or lacks the columns lock_key, owner, expires_at, fence \
             (create_table is off: create it with lock_store_database::ddl): {}",
            self.table, self.source
        )
    }
}

impl std::error::Error for TableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
