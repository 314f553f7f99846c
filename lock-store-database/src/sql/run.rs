//! A bound statement, and how any backend's connection runs it: one path for every
//! statement of the store, lock and permit statements alike, each prepared once per
//! connection (`crate::prepared`).

use std::future::Future;
use std::pin::Pin;

use diesel::deserialize::FromSql;
use diesel::query_builder::{BoxedSqlQuery, QueryFragment, QueryId, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::{OptionalExtension, QueryResult, QueryableByName};
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::prepared::{Prepared, prepared};

/// A boxed future borrowing a connection.
pub(crate) type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// What an acquire (of a lock or of permits) reports, before interpretation: the new
/// fencing token (`None` = denied) and the holder's remaining milliseconds (a hint,
/// read only when denied).
#[derive(Debug, QueryableByName)]
pub(crate) struct AcquireRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) fence: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) holder_ms: Option<i64>,
}

/// A one-column `n` result (counts).
#[derive(QueryableByName)]
pub(crate) struct CountRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

/// One bound parameter of a statement.
pub(crate) enum Param {
    /// A key or a lock's owner (`BYTEA`, `VARBINARY`, `BLOB`).
    Bytes(Vec<u8>),
    /// Milliseconds, a weight, a limit.
    Int(i64),
    /// A TTL in milliseconds; `None` = no expiry.
    OptInt(Option<i64>),
    /// A permit owner (it goes into JSON), a `NOTIFY` channel.
    Text(String),
}

/// A statement and its parameters, in the order of its placeholders.
pub(crate) struct Bound {
    sql: String,
    params: Vec<Param>,
}

impl Bound {
    pub(crate) fn new(sql: &str, params: Vec<Param>) -> Self {
        Bound {
            sql: sql.to_owned(),
            params,
        }
    }

    /// As a diesel query the connection may keep prepared (see `crate::prepared`:
    /// `sql_query` alone would prepare it again on every call, one more round trip).
    fn query<DB>(self) -> Prepared<BoxedSqlQuery<'static, DB, SqlQuery>>
    where
        DB: diesel::backend::Backend
            + diesel::sql_types::HasSqlType<Binary>
            + diesel::sql_types::HasSqlType<BigInt>
            + diesel::sql_types::HasSqlType<Text>,
        Vec<u8>: ToSql<Binary, DB>,
        i64: ToSql<BigInt, DB>,
        String: ToSql<Text, DB>,
    {
        let query = prepared::<DB>(self.sql);
        self.params.into_iter().fold(query, |q, param| match param {
            Param::Bytes(v) => q.bind::<Binary, _>(v),
            Param::Int(v) => q.bind::<BigInt, _>(v),
            Param::OptInt(v) => q.bind::<Nullable<BigInt>, _>(v),
            Param::Text(v) => q.bind::<Text, _>(v),
        })
    }
}

/// Runs a [`Bound`] statement on a connection. Implemented once, for the connection
/// of every backend.
///
/// Each method builds its query synchronously and returns a future that borrows only
/// the connection, so that the caller can bound it with the operation deadline and
/// abandon the connection if it runs out.
pub(crate) trait Run: AsyncConnection + 'static {
    /// → affected (with MySQL's `CLIENT_FOUND_ROWS`: matched) rows.
    fn execute_with(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<usize>>;

    /// → the first row, if any.
    fn first_row<U>(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<Option<U>>>
    where
        U: QueryableByName<Self::Backend> + Send + 'static;

    /// → the `n` of its one row.
    fn count(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<i64>>;
}

impl<C> Run for C
where
    C: AsyncConnection + 'static,
    C::Backend: diesel::sql_types::HasSqlType<Binary>
        + diesel::sql_types::HasSqlType<BigInt>
        + diesel::sql_types::HasSqlType<Text>,
    BoxedSqlQuery<'static, C::Backend, SqlQuery>: QueryFragment<C::Backend> + QueryId,
    Vec<u8>: ToSql<Binary, C::Backend>,
    i64: ToSql<BigInt, C::Backend>,
    String: ToSql<Text, C::Backend>,
    i64: FromSql<BigInt, C::Backend>,
{
    fn execute_with(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<usize>> {
        Box::pin(q.query::<C::Backend>().execute(self))
    }

    fn first_row<U>(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<Option<U>>>
    where
        U: QueryableByName<C::Backend> + Send + 'static,
    {
        let q = q.query::<C::Backend>();
        Box::pin(async move { q.get_result::<U>(self).await.optional() })
    }

    fn count(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<i64>> {
        let row = self.first_row::<CountRow>(q);
        Box::pin(async move { one(row.await?).map(|r| r.n) })
    }
}

/// Reads the one row of a statement as `U`, on any connection whose backend decodes
/// `U` (what code generic over the dialect needs: [`Run::first_row`] names the
/// backend).
pub(crate) trait ReadRow<U>: Run {
    /// → the one row (none is diesel's `NotFound`).
    fn read_row(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<U>>;
}

impl<C, U> ReadRow<U> for C
where
    C: Run,
    U: QueryableByName<C::Backend> + Send + 'static,
{
    fn read_row(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<U>> {
        let row = self.first_row::<U>(q);
        Box::pin(async move { one(row.await?) })
    }
}

/// The one row a statement must return (as diesel's `get_result`).
pub(crate) fn one<U>(row: Option<U>) -> QueryResult<U> {
    row.ok_or(diesel::result::Error::NotFound)
}
