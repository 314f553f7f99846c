//! The TLS parameters of a database URL: taken out of its query string (the drivers
//! reject names they do not know), the rest of the URL left as it was.

// Each backend's half is used only with that backend's feature.
#![cfg_attr(not(all(feature = "postgres", feature = "mysql")), allow(dead_code))]

use std::path::PathBuf;

use lock_core::LockError;

/// A URL split around the query parameters that were taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taken {
    /// The URL without the taken parameters (the others in their order and spelling).
    pub(crate) rest: String,
    /// The taken parameters, decoded: `(name, value)`.
    pub(crate) params: Vec<(&'static str, String)>,
    /// The names of the parameters left in `rest`, decoded.
    pub(crate) others: Vec<String>,
}

impl Taken {
    /// The value of `name`, if the URL gave it.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the URL keeps a parameter called `name` (for the driver).
    pub(crate) fn keeps(&self, name: &str) -> bool {
        self.others.iter().any(|n| n == name)
    }

    /// `rest` with `name=value` appended to its query string.
    pub(crate) fn rest_with(&self, name: &str, value: &str) -> String {
        let (url, fragment) = match self.rest.split_once('#') {
            Some((url, fragment)) => (url, Some(fragment)),
            None => (self.rest.as_str(), None),
        };
        let sep = if url.contains('?') { "&" } else { "?" };
        let mut out = format!("{url}{sep}{name}={value}");
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(fragment);
        }
        out
    }
}

/// Take the query parameters named in `names` out of `url`. A name given twice, or a
/// value that is not valid percent-encoded UTF-8, is `InvalidArgument` naming the
/// parameter (`what` names the URL's kind, such as "PostgreSQL").
pub(crate) fn take(url: &str, names: &[&'static str], what: &str) -> Result<Taken, LockError> {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut params: Vec<(&'static str, String)> = Vec::new();
    let mut kept: Vec<&str> = Vec::new();
    let mut others = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name).unwrap_or_default();
        let Some(&known) = names.iter().find(|n| **n == name) else {
            others.push(name);
            kept.push(pair);
            continue;
        };
        if params.iter().any(|(n, _)| *n == known) {
            return Err(LockError::invalid(format!(
                "the {what} URL gives `{known}` more than once"
            )));
        }
        let value = decode(raw_value).ok_or_else(|| {
            LockError::invalid(format!(
                "the {what} URL parameter `{known}` is not valid percent-encoded UTF-8"
            ))
        })?;
        params.push((known, value));
    }
    let mut rest = base.to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        rest.push('#');
        rest.push_str(fragment);
    }
    Ok(Taken {
        rest,
        params,
        others,
    })
}

/// Percent-decoding (`+` stays a plus, as the drivers read it).
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// PostgreSQL's `sslmode` (libpq's names and meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PgSslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without verifying it.
    Prefer,
    /// TLS or fail, without verifying the server.
    Require,
    /// TLS or fail; the server's certificate chain must lead to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

/// Which roots verify a server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The system's trusted roots.
    System,
    /// The certificates of a PEM file (and no others).
    File(PathBuf),
}

/// The TLS settings of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgParams {
    pub(crate) mode: PgSslMode,
    pub(crate) roots: Roots,
    /// The URL for tokio-postgres: `sslmode` as it knows it (`disable`, `prefer`,
    /// `require`), `sslrootcert` taken out, everything else unchanged.
    pub(crate) driver_url: String,
}

const PG_MODES: &str = "disable, prefer, require, verify-ca or verify-full";

/// Read `sslmode` and `sslrootcert` from a PostgreSQL URL, as libpq does:
///
/// * no `sslmode`: `prefer` (`verify-full` with `sslrootcert=system`);
/// * `require` with an `sslrootcert` file verifies the chain, like `verify-ca`;
/// * `sslrootcert=system` takes the system's roots and allows only `verify-full`;
/// * without `sslrootcert`, `verify-ca` and `verify-full` trust the system's roots.
pub(crate) fn postgres(url: &str) -> Result<PgParams, LockError> {
    let taken = take(url, &["sslmode", "sslrootcert"], "PostgreSQL")?;
    let roots = match taken.get("sslrootcert") {
        None => None,
        Some("") => {
            return Err(LockError::invalid(
                "the PostgreSQL URL parameter `sslrootcert` is empty: give a PEM file's path \
                 or `system`",
            ));
        }
        Some("system") => Some(Roots::System),
        Some(path) => Some(Roots::File(PathBuf::from(path))),
    };
    let mode = match taken.get("sslmode") {
        None if roots == Some(Roots::System) => PgSslMode::VerifyFull,
        None => PgSslMode::Prefer,
        Some("disable") => PgSslMode::Disable,
        Some("prefer") => PgSslMode::Prefer,
        Some("require") if matches!(roots, Some(Roots::File(_))) => PgSslMode::VerifyCa,
        Some("require") => PgSslMode::Require,
        Some("verify-ca") => PgSslMode::VerifyCa,
        Some("verify-full") => PgSslMode::VerifyFull,
        Some("allow") => {
            return Err(LockError::invalid(format!(
                "the PostgreSQL URL parameter `sslmode=allow` is not supported (the driver \
                 cannot try without TLS first): use {PG_MODES}"
            )));
        }
        Some(other) => {
            return Err(LockError::invalid(format!(
                "the PostgreSQL URL parameter `sslmode` is {other:?}: use {PG_MODES}"
            )));
        }
    };
    if roots == Some(Roots::System) && mode != PgSslMode::VerifyFull {
        return Err(LockError::invalid(
            "the PostgreSQL URL parameter `sslrootcert=system` needs `sslmode=verify-full` \
             (as with libpq)",
        ));
    }
    let driver_mode = match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Prefer => "prefer",
        _ => "require",
    };
    let driver_url = if taken.get("sslmode").is_none() && mode == PgSslMode::Prefer {
        taken.rest.clone()
    } else {
        taken.rest_with("sslmode", driver_mode)
    };
    Ok(PgParams {
        mode,
        roots: roots.unwrap_or(Roots::System),
        driver_url,
    })
}

/// MySQL's `ssl-mode` (MySQL's client names and meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MySslMode {
    /// No TLS.
    Disabled,
    /// TLS when the server offers it, without verifying it.
    Preferred,
    /// TLS or fail, without verifying the server.
    Required,
    /// TLS or fail; the server's certificate chain must lead to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyIdentity,
}

/// The TLS settings of a MySQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MyParams {
    /// `None`: the URL uses mysql_async's own TLS parameters (`require_ssl`, …), which
    /// it then reads itself.
    pub(crate) mode: Option<MySslMode>,
    /// `ssl-ca`: the CA file that verifies the server (instead of the built-in roots).
    pub(crate) ca: Option<PathBuf>,
    /// The URL for mysql_async: `ssl-mode` and `ssl-ca` taken out.
    pub(crate) driver_url: String,
}

/// mysql_async's own TLS parameters.
const MYSQL_ASYNC_TLS: [&str; 4] = [
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "built_in_roots",
];

const MY_MODES: &str = "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY";

/// Read `ssl-mode` and `ssl-ca` from a MySQL URL. No `ssl-mode`: `PREFERRED` (MySQL's
/// default), unless the URL sets TLS with mysql_async's own parameters. `ssl-ca` is
/// used by `VERIFY_CA` and `VERIFY_IDENTITY` only, and is refused with the others (a
/// CA given with a mode that does not verify would protect nothing).
pub(crate) fn mysql(url: &str) -> Result<MyParams, LockError> {
    let taken = take(url, &["ssl-mode", "ssl-ca"], "MySQL")?;
    let driver_tls = MYSQL_ASYNC_TLS.iter().find(|n| taken.keeps(n));
    let mode = match taken.get("ssl-mode") {
        None if driver_tls.is_some() => None,
        None => Some(MySslMode::Preferred),
        Some(value) => {
            if let Some(name) = driver_tls {
                return Err(LockError::invalid(format!(
                    "the MySQL URL gives both `ssl-mode` and `{name}`: use `ssl-mode` (and \
                     `ssl-ca`) alone"
                )));
            }
            Some(match value.to_ascii_uppercase().as_str() {
                "DISABLED" => MySslMode::Disabled,
                "PREFERRED" => MySslMode::Preferred,
                "REQUIRED" => MySslMode::Required,
                "VERIFY_CA" => MySslMode::VerifyCa,
                "VERIFY_IDENTITY" => MySslMode::VerifyIdentity,
                _ => {
                    return Err(LockError::invalid(format!(
                        "the MySQL URL parameter `ssl-mode` is {value:?}: use {MY_MODES}"
                    )));
                }
            })
        }
    };
    let ca = match taken.get("ssl-ca") {
        None => None,
        Some("") => {
            return Err(LockError::invalid(
                "the MySQL URL parameter `ssl-ca` is empty: give a PEM file's path",
            ));
        }
        Some(path) => {
            if !matches!(mode, Some(MySslMode::VerifyCa | MySslMode::VerifyIdentity)) {
                return Err(LockError::invalid(
                    "the MySQL URL parameter `ssl-ca` needs `ssl-mode=VERIFY_CA` or \
                     `ssl-mode=VERIFY_IDENTITY` (the other modes do not verify the server)",
                ));
            }
            Some(PathBuf::from(path))
        }
    };
    Ok(MyParams {
        mode,
        ca,
        driver_url: taken.rest,
    })
}

#[cfg(test)]
mod tests;
