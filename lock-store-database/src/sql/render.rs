//! Parameters by name, and the one way a statement's values are bound. The permit
//! templates say `{owner}` wherever the owner goes — the MySQL acquire needs it a
//! dozen times — and rendering turns each marker into the backend's placeholder,
//! remembering the order to bind in: `$n` on PostgreSQL and `?n` on SQLite (one
//! number per parameter, reused), a plain `?` per occurrence on MySQL. The lock
//! statements, whose text is public ([`crate::statements()`]), keep their
//! placeholders and declare the same order ([`super::LockBinds`]). Either way a
//! statement's [`Param`]s pick its values from one [`Values`] ([`Rendered::bound`]). Values are
//! always bound, never put into SQL text.

use crate::backend::Backend;

/// A bound parameter of a permit statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    /// The key's UTF-8 bytes.
    Key,
    /// The owner token (text: it goes into JSON).
    Owner,
    /// The request's weight.
    Weight,
    /// The key's limit.
    Limit,
    /// The holding's TTL in ms, `NULL` = no expiry.
    Ttl,
    /// How long a denied request reserves the key, in ms; `NULL` = it does not.
    Reserve,
    /// An extension, in ms.
    Ms,
    /// The `NOTIFY` channel (PostgreSQL).
    Channel,
    /// A lock's owner, as bytes (the lock tables' `owner` column is binary); lock
    /// statements only, so no marker.
    LockOwner,
}

const PARAMS: [(&str, Param); 8] = [
    ("{key}", Param::Key),
    ("{owner}", Param::Owner),
    ("{weight}", Param::Weight),
    ("{limit}", Param::Limit),
    ("{ttl}", Param::Ttl),
    ("{reserve}", Param::Reserve),
    ("{ms}", Param::Ms),
    ("{channel}", Param::Channel),
];

/// A statement ready to bind: its SQL and the parameters in bind order.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub(crate) sql: String,
    pub(crate) binds: Vec<Param>,
}

/// Expand `parts` (shared fragments, in order, so a fragment may use a later one),
/// then `{now}` and `{table}` (the quoted permits table), then the parameters.
pub(crate) fn render(
    backend: Backend,
    template: &str,
    parts: &[(&str, &str)],
    now: &str,
    table: &str,
) -> Rendered {
    let mut text = template.to_owned();
    for (marker, fragment) in parts {
        text = text.replace(marker, fragment);
    }
    let text = text.replace("{now}", now).replace("{table}", table);
    let mut sql = String::with_capacity(text.len());
    let mut binds: Vec<Param> = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find('{') {
        sql.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some((marker, param)) = PARAMS.iter().find(|(m, _)| rest.starts_with(m)) else {
            // Not a parameter (the tests reject any left in a statement).
            sql.push('{');
            rest = &rest[1..];
            continue;
        };
        match backend {
            Backend::Mysql => {
                binds.push(*param);
                sql.push('?');
            }
            Backend::Postgres | Backend::Sqlite => {
                let n = match binds.iter().position(|p| p == param) {
                    Some(i) => i + 1,
                    None => {
                        binds.push(*param);
                        binds.len()
                    }
                };
                sql.push(if backend == Backend::Postgres {
                    '$'
                } else {
                    '?'
                });
                sql.push_str(&n.to_string());
            }
        }
        rest = &rest[marker.len()..];
    }
    sql.push_str(rest);
    Rendered { sql, binds }
}

/// The values of one call, bound by [`Param`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Values {
    pub(crate) key: Vec<u8>,
    pub(crate) owner: String,
    pub(crate) weight: i64,
    pub(crate) limit: i64,
    pub(crate) ttl: Option<i64>,
    pub(crate) reserve: Option<i64>,
    pub(crate) ms: i64,
    pub(crate) channel: String,
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
impl Rendered {
    /// The statement with `values` bound in its order, to run as any other statement
    /// of the store ([`crate::sql::Run`], prepared once per connection).
    pub(crate) fn bound(&self, values: &Values) -> crate::sql::Bound {
        use super::run::Param as P;
        let params = self.binds.iter().map(|param| match param {
            Param::Key => P::Bytes(values.key.clone()),
            Param::Owner => P::Text(values.owner.clone()),
            Param::LockOwner => P::Bytes(values.owner.as_bytes().to_vec()),
            Param::Weight => P::Int(values.weight),
            Param::Limit => P::Int(values.limit),
            Param::Ttl => P::OptInt(values.ttl),
            Param::Reserve => P::OptInt(values.reserve),
            Param::Ms => P::Int(values.ms),
            Param::Channel => P::Text(values.channel.clone()),
        });
        crate::sql::Bound::new(&self.sql, params.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_each_backends_placeholders() {
        let t = "SELECT {owner}, {key}, {x} FROM {table} WHERE o = {owner} AND t < {now}";
        let parts = [("{x}", "{ms} + 1")];
        let pg = render(Backend::Postgres, t, &parts, "NOW", "\"p\"");
        assert_eq!(
            pg.sql,
            "SELECT $1, $2, $3 + 1 FROM \"p\" WHERE o = $1 AND t < NOW"
        );
        assert_eq!(pg.binds, [Param::Owner, Param::Key, Param::Ms]);
        let lite = render(Backend::Sqlite, t, &parts, "NOW", "\"p\"");
        assert_eq!(
            lite.sql,
            "SELECT ?1, ?2, ?3 + 1 FROM \"p\" WHERE o = ?1 AND t < NOW"
        );
        let my = render(Backend::Mysql, t, &parts, "NOW", "`p`");
        assert_eq!(
            my.sql,
            "SELECT ?, ?, ? + 1 FROM `p` WHERE o = ? AND t < NOW"
        );
        assert_eq!(
            my.binds,
            [Param::Owner, Param::Key, Param::Ms, Param::Owner]
        );
    }

    #[test]
    fn other_braces_are_left_alone() {
        let r = render(Backend::Postgres, "'{e}' {owner}", &[], "", "");
        assert_eq!(r.sql, "'{e}' $1");
    }
}
