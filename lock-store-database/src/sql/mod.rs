//! One dialect per backend. Each module holds its SQL text (a type whose
//! [`OperationSql`] and [`SqlText`] constants say why each statement is atomic; the
//! permit statements have the same shape, in `crate::permits`), the order of each
//! statement's parameters ([`LockBinds`]; the permit statements name theirs, see
//! [`render`]), and, when its cargo feature is on, a `Dialect` type that names its
//! statement sets (`Dialect::Locks`, `Dialect::Permits`), connects, and runs its
//! acquire (the one operation whose statements and rows differ between backends). A
//! statement's values are bound one way ([`render::Rendered`]), and a bound statement
//! runs the same way on every backend's connection (`Run`); the store runs any dialect
//! through one path ([`crate::engine`]), rendering the statements its dialect names.
//!
//! The SQL text is compiled whatever the features, so that [`crate::statements()`] and
//! [`crate::ddl`] render every backend's statements ([`TextsOf`]: a backend named at
//! run time).
//!
//! # Fencing tokens: the rule every dialect's acquire follows
//!
//! The acquiring statement writes `fence = max(fence + 1, now_ms * 1000)` when it takes
//! over a row, and `fence = now_ms * 1000` when it inserts one; the value written is the
//! token. `now_ms` is the dialect's clock in Unix milliseconds (`{now}`), read in the
//! same statement; the factor 1000 leaves room for 1000 acquires of one key per
//! millisecond before the counter runs ahead of the clock.
//!
//! * While the key's row exists, each token exceeds the previous one by the `+ 1`,
//!   whatever the clock: releases and force releases keep the row (they clear `owner`
//!   and set `expires_at = 0`), and takeovers after expiry update it in place, under
//!   the row's lock, whichever store instance or process runs them.
//! * When the row is gone — released rows purged by an operator, the table dropped and
//!   re-created — the counter is lost and the token is `now_ms * 1000`. It exceeds
//!   every earlier token of the key **assuming the clock has not stepped back** since
//!   then **and at least one millisecond has passed** since the key's last acquisition
//!   (an earlier token is its own `now_ms * 1000`, or more only if the key was acquired
//!   over 1000 times in one millisecond; within the same millisecond the token repeats). PostgreSQL and MySQL read the
//!   server's clock; SQLite the machine's wall clock.
//!
//! # Lazy releases (PostgreSQL)
//!
//! A PostgreSQL release of a holding with an expiry sets `synchronous_commit = off` for
//! its own transaction (one without expiry sets it to its current value: no change), by
//! `set_config(…, true)` as a condition of its `WHERE`, evaluated on the row before the
//! update. PostgreSQL may evaluate it before the other conditions, so a release that
//! finds nothing to release (another owner, expired) may set it too: the store runs each
//! statement as its own transaction, which then writes nothing, so nothing is lost. Why this is safe, and what a server
//! crash can undo: the crate docs, "Durability, and lazy releases on PostgreSQL".

pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod render;
pub(crate) mod sqlite;

use crate::backend::Backend;
use crate::permits::{self, PermitStatements, PermitText};
use crate::statements::Statements;
use render::Rendered;

/// The statements of one kind of key (locks, or permits) on one backend, before
/// rendering: the operations every kind has. Each statement's comment gives its
/// parameters, in the order they are bound, and why it is atomic.
pub(crate) trait OperationSql {
    /// `CREATE TABLE IF NOT EXISTS`.
    const DDL: &'static str;
    /// Take the key (insert, or take over an expired row; for permits: grant, or
    /// reserve), minting the fencing token.
    const ACQUIRE: &'static str;
    /// A second statement of the acquire, on the same connection, if any.
    const ACQUIRE_FOLLOWUP: Option<&'static str> = None;
    /// Release by owner.
    const RELEASE: &'static str;
    /// Release whoever holds it.
    const FORCE_RELEASE: &'static str;
    /// Extend by owner.
    const EXTEND: &'static str;
}

/// The lock statements of one backend, with `{table}` (the quoted table name) and
/// `{now}` (the clock in Unix milliseconds) still to be filled in; its clock and quote
/// serve its permit statements too.
pub(crate) trait SqlText: OperationSql {
    /// The backend the statements are written for (its placeholders: `$n`, `?n` or `?`).
    const BACKEND: Backend;
    /// The identifier quote.
    const QUOTE: char;
    /// The clock in Unix milliseconds, read once per statement.
    const NOW_MS: &'static str;
    /// Held and not expired → `n`.
    const EXISTS: &'static str;
    /// The parameters of each statement, in the order its placeholders take them.
    const BINDS: LockBinds = LockBinds::USUAL;
}

/// The parameters of each lock statement, in the order its placeholders take them
/// ([`LockStatements`] pairs them with the text, as the permit statements' named
/// parameters are).
pub(crate) struct LockBinds {
    pub(crate) acquire: &'static [render::Param],
    pub(crate) acquire_followup: &'static [render::Param],
    pub(crate) release: &'static [render::Param],
    pub(crate) force_release: &'static [render::Param],
    pub(crate) extend: &'static [render::Param],
    pub(crate) exists: &'static [render::Param],
}

impl LockBinds {
    /// Each parameter once, in the order key, owner, then the statement's own: what
    /// the statements say unless their backend's text orders them otherwise.
    pub(crate) const USUAL: LockBinds = {
        use render::Param::{Key, LockOwner, Ms, Ttl};
        LockBinds {
            acquire: &[Key, LockOwner, Ttl],
            acquire_followup: &[Key],
            release: &[Key, LockOwner],
            force_release: &[Key],
            extend: &[Key, LockOwner, Ms],
            exists: &[Key],
        }
    };
}

/// The lock statements a store runs, each with the order of its parameters: bound as
/// the permit statements are ([`Rendered::bound`]).
pub(crate) struct LockStatements {
    pub(crate) acquire: Rendered,
    pub(crate) acquire_followup: Option<Rendered>,
    pub(crate) release: Rendered,
    pub(crate) force_release: Rendered,
    pub(crate) extend: Rendered,
    pub(crate) exists: Rendered,
}

impl LockStatements {
    /// `sql`, the statements of `S`, with `S`'s parameters.
    pub(crate) fn of<S: SqlText>(sql: &Statements) -> Self {
        let b = S::BINDS;
        let r = |sql: &str, binds: &[render::Param]| Rendered {
            sql: sql.to_owned(),
            binds: binds.to_vec(),
        };
        LockStatements {
            acquire: r(&sql.acquire, b.acquire),
            acquire_followup: (sql.acquire_followup.as_deref()).map(|f| r(f, b.acquire_followup)),
            release: r(&sql.release, b.release),
            force_release: r(&sql.force_release, b.force_release),
            extend: r(&sql.extend, b.extend),
            exists: r(&sql.exists, b.exists),
        }
    }
}

/// Checks that the table exists with the expected columns, touching no row (the same on
/// every backend).
pub(crate) const PROBE: &str = "SELECT COUNT(*) AS n FROM (
    SELECT lock_key, owner, expires_at, fence FROM {table} WHERE 1 = 0
) AS probe";

/// Render the statements of `S` for `table` (already validated).
pub(crate) fn render_locks<S: SqlText>(table: &str) -> Statements {
    let quoted = format!("{q}{table}{q}", q = S::QUOTE);
    let fill = |template: &str| {
        template
            .replace("{table}", &quoted)
            .replace("{now}", S::NOW_MS)
    };
    Statements {
        ddl: fill(S::DDL),
        probe: fill(PROBE),
        acquire: fill(S::ACQUIRE),
        acquire_followup: S::ACQUIRE_FOLLOWUP.map(fill),
        release: fill(S::RELEASE),
        force_release: fill(S::FORCE_RELEASE),
        extend: fill(S::EXTEND),
        exists: fill(S::EXISTS),
    }
}

/// The statement sets of a backend named at run time, for the free functions
/// ([`crate::statements()`], [`crate::ddl`], [`crate::permits_ddl`]), which need no
/// driver compiled. A store never picks this way: its `Dialect` names its sets as
/// types (`Dialect::Locks`, `Dialect::Permits`).
pub(crate) struct TextsOf {
    /// The lock statements for a (validated) table.
    pub(crate) locks: fn(&str) -> Statements,
    /// The permit statements for a (checked) permits table.
    pub(crate) permits: fn(&str) -> PermitStatements,
}

impl TextsOf {
    /// The statement sets of `backend`.
    pub(crate) fn backend(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::of::<postgres::PgSql, permits::postgres::PgPermits>(),
            Backend::Mysql => Self::of::<mysql::MysqlSql, permits::mysql::MysqlPermits>(),
            Backend::Sqlite => Self::of::<sqlite::SqliteSql, permits::sqlite::SqlitePermits>(),
        }
    }

    fn of<L: SqlText, P: PermitText<Locks = L>>() -> Self {
        TextsOf {
            locks: render_locks::<L>,
            permits: PermitStatements::of::<P>,
        }
    }
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod dialect;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod run;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub(crate) use dialect::*;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub(crate) use run::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// The placeholders of `sql`: MySQL's `?`s counted, else the numbers of `$n` or `?n`.
    fn placeholders(backend: Backend, sql: &str) -> Vec<usize> {
        let mark = if backend == Backend::Postgres {
            '$'
        } else {
            '?'
        };
        let mut found = Vec::new();
        for (at, _) in sql.match_indices(mark) {
            let digits: String = sql[at + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            found.push(digits.parse().unwrap_or(0));
        }
        found
    }

    /// Each lock statement's declared parameters fill exactly its placeholders.
    fn binds_fill_the_placeholders<S: SqlText>() {
        let (s, b) = (render_locks::<S>("locks"), S::BINDS);
        let followup = s.acquire_followup.clone().unwrap_or_default();
        for (sql, binds) in [
            (&s.acquire, b.acquire),
            (&s.release, b.release),
            (&s.force_release, b.force_release),
            (&s.extend, b.extend),
            (&s.exists, b.exists),
        ]
        .into_iter()
        .chain(
            s.acquire_followup
                .as_ref()
                .map(|_| (&followup, b.acquire_followup)),
        ) {
            let mut found = placeholders(S::BACKEND, sql);
            if S::BACKEND == Backend::Mysql {
                assert_eq!(found.len(), binds.len(), "{sql}");
            } else {
                found.sort_unstable();
                found.dedup();
                let expected: Vec<usize> = (1..=binds.len()).collect();
                assert_eq!(found, expected, "{sql}");
            }
        }
    }

    #[test]
    fn lock_binds_fill_each_backends_placeholders() {
        binds_fill_the_placeholders::<postgres::PgSql>();
        binds_fill_the_placeholders::<mysql::MysqlSql>();
        binds_fill_the_placeholders::<sqlite::SqliteSql>();
    }
}
