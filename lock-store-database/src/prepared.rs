//! Statements a connection prepares once and then reuses.
//!
//! diesel's `sql_query` marks its query unsafe to cache, so every call prepares the
//! statement again: on PostgreSQL and MySQL that is one more round trip per operation
//! (Parse/Describe, or `COM_STMT_PREPARE`, before the execution) and a close after it.
//! [`prepared`] builds the same query — fixed SQL text, parameters bound in order —
//! but lets the connection keep the prepared statement in its cache (keyed by the SQL
//! text and the bind types), so an operation is one round trip from its second call on.
//!
//! It is only for SQL without interpolated values: the text of every statement of a
//! store is fixed when the store is built (the validated table name is the only
//! interpolation), so one store adds one cache entry per statement and connection.

#![cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, BoxedSqlQuery, Query, QueryFragment, QueryId, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, sql_query};

/// `sql` as a statement the connection may cache; bind its parameters with
/// [`Prepared::bind`], in the order of its placeholders, as with `sql_query`.
pub(crate) fn prepared<DB: Backend>(sql: String) -> Prepared<BoxedSqlQuery<'static, DB, SqlQuery>> {
    Prepared(sql_query(sql).into_boxed())
}

/// A `sql_query` (with its binds) that the connection may keep prepared.
#[must_use = "a statement does nothing until it is run"]
pub(crate) struct Prepared<Q>(Q);

impl<DB: Backend> Prepared<BoxedSqlQuery<'static, DB, SqlQuery>> {
    /// Bind the next parameter as SQL type `ST` (as `sql_query`'s `bind`).
    pub(crate) fn bind<ST, T>(self, value: T) -> Self
    where
        DB: HasSqlType<ST>,
        T: ToSql<ST, DB> + Send + 'static,
        ST: Send + 'static,
    {
        Prepared(self.0.bind::<ST, T>(value))
    }
}

impl<DB, Q> QueryFragment<DB> for Prepared<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    /// The one difference with `sql_query`, which always answers `false`: the text is
    /// the same for every call, so the connection's statement cache may keep it.
    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    // No static id: the cache is keyed by the SQL text (and the bind types).
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Prepared<Q> {
    type SqlType = Untyped;
}
