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

/// `source`, unless its message says its first part twice (`Input/output error:
/// Input/output error: Connection refused`, as a MySQL connect failure reads) and it
/// has no cause of its own to keep: then the message once, in words.
pub(crate) fn tidy(source: BoxError) -> BoxError {
    if source.source().is_some() {
        return source;
    }
    let text = source.to_string();
    match text.split_once(": ") {
        Some((first, rest))
            if rest
                .strip_prefix(first)
                .is_some_and(|after| after.starts_with(": ")) =>
        {
            rest.to_owned().into()
        }
        _ => source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_said_twice_is_said_once() {
        let doubled: BoxError = "Input/output error: Input/output error: Connection refused".into();
        assert_eq!(
            tidy(doubled).to_string(),
            "Input/output error: Connection refused"
        );
        let plain: BoxError = "db error: FATAL: database \"x\" does not exist".into();
        assert_eq!(
            tidy(plain).to_string(),
            "db error: FATAL: database \"x\" does not exist"
        );
    }
}
