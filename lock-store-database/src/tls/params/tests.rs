//! The URL parameters, read as libpq and MySQL's clients read them.

use super::*;

/// The message of `parsed`, an `InvalidArgument` for `url` that names `needle`.
fn invalid_naming<T: std::fmt::Debug>(
    parsed: Result<T, LockError>,
    url: &str,
    needle: &str,
) -> String {
    let err = parsed.expect_err(url);
    assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{url}");
    let msg = err.to_string();
    assert!(msg.contains(needle), "{url}: {msg}");
    msg
}

#[test]
fn taking_parameters_leaves_the_rest_of_the_url_as_it_was() {
    let t = take(
        "postgres://u:p%40ss@h:5432/db?application_name=a%20b&sslmode=require&x=1#frag",
        &["sslmode", "sslrootcert"],
        "PostgreSQL",
    )
    .unwrap();
    assert_eq!(
        t.rest,
        "postgres://u:p%40ss@h:5432/db?application_name=a%20b&x=1#frag"
    );
    assert_eq!(t.get("sslmode"), Some("require"));
    assert_eq!(t.get("sslrootcert"), None);
    assert!(t.keeps("application_name") && t.keeps("x"));
    assert_eq!(
        t.rest_with("sslmode", "disable"),
        "postgres://u:p%40ss@h:5432/db?application_name=a%20b&x=1&sslmode=disable#frag"
    );
    let t = take(
        "postgres://h/db?sslmode=disable",
        &["sslmode"],
        "PostgreSQL",
    )
    .unwrap();
    assert_eq!(t.rest, "postgres://h/db");
    assert_eq!(
        t.rest_with("sslmode", "require"),
        "postgres://h/db?sslmode=require"
    );
    let t = take("postgres://h/db", &["sslmode"], "PostgreSQL").unwrap();
    assert_eq!((t.rest.as_str(), t.params.len()), ("postgres://h/db", 0));
}

#[test]
fn values_are_percent_decoded_and_repeats_refused() {
    let t = take(
        "postgres://h/db?sslrootcert=%2Fetc%2Fca%20file.pem",
        &["sslrootcert"],
        "PostgreSQL",
    )
    .unwrap();
    assert_eq!(t.get("sslrootcert"), Some("/etc/ca file.pem"));
    for url in [
        "postgres://h/db?sslmode=require&sslmode=disable",
        "postgres://h/db?sslmode=%ZZ",
        "postgres://h/db?sslmode=%ff",
    ] {
        let err = take(url, &["sslmode"], "PostgreSQL").expect_err(url);
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS");
        assert!(err.to_string().contains("`sslmode`"), "{err}");
    }
}

#[test]
fn postgres_modes_follow_libpq() {
    let p = |url: &str| postgres(url).unwrap();
    let base = "postgres://postgres@localhost:5432/test";
    let none = p(base);
    assert_eq!(
        (none.mode, none.driver_url.as_str()),
        (PgSslMode::Prefer, base)
    );
    for (mode, expected, driver) in [
        ("disable", PgSslMode::Disable, "disable"),
        ("prefer", PgSslMode::Prefer, "prefer"),
        ("require", PgSslMode::Require, "require"),
        ("verify-ca", PgSslMode::VerifyCa, "require"),
        ("verify-full", PgSslMode::VerifyFull, "require"),
    ] {
        let parsed = p(&format!("{base}?sslmode={mode}&application_name=x"));
        assert_eq!(parsed.mode, expected, "{mode}");
        assert_eq!(parsed.roots, Roots::System, "{mode}");
        assert_eq!(
            parsed.driver_url,
            format!("{base}?application_name=x&sslmode={driver}")
        );
    }
    let full = p(&format!("{base}?sslmode=verify-full&sslrootcert=/ca.pem"));
    assert_eq!(
        (full.mode, full.roots, full.driver_url),
        (
            PgSslMode::VerifyFull,
            Roots::File("/ca.pem".into()),
            format!("{base}?sslmode=require")
        )
    );
    // libpq: `require` with a root file verifies the chain.
    assert_eq!(
        p(&format!("{base}?sslmode=require&sslrootcert=/ca.pem")).mode,
        PgSslMode::VerifyCa
    );
    // libpq: a root file with `prefer` is not used.
    assert_eq!(
        p(&format!("{base}?sslrootcert=/ca.pem")).mode,
        PgSslMode::Prefer
    );
    // libpq 16: `sslrootcert=system` defaults to, and allows only, `verify-full`.
    assert_eq!(
        p(&format!("{base}?sslrootcert=system")).mode,
        PgSslMode::VerifyFull
    );
}

#[test]
fn bad_postgres_values_are_invalid_arguments_naming_the_parameter() {
    let base = "postgres://postgres@localhost/test";
    for (query, needle) in [
        ("sslmode=verify_full", "`sslmode`"),
        ("sslmode=REQUIRE", "`sslmode`"),
        ("sslmode=", "`sslmode`"),
        ("sslmode=allow", "`sslmode=allow`"),
        ("sslrootcert=", "`sslrootcert`"),
        ("sslmode=require&sslrootcert=system", "`sslrootcert=system`"),
    ] {
        let url = format!("{base}?{query}");
        let msg = invalid_naming(postgres(&url), &url, needle);
        if needle == "`sslmode`" {
            assert!(msg.contains("verify-full"), "{url}: {msg} lists no modes");
        }
    }
}

#[test]
fn mysql_modes_follow_mysql() {
    let base = "mysql://root@localhost:3306/test";
    let m = mysql(base).unwrap();
    assert_eq!(
        (m.mode, m.ca, m.driver_url.as_str()),
        (Some(MySslMode::Preferred), None, base)
    );
    for (value, expected) in [
        ("DISABLED", MySslMode::Disabled),
        ("preferred", MySslMode::Preferred),
        ("REQUIRED", MySslMode::Required),
        ("VERIFY_CA", MySslMode::VerifyCa),
        ("Verify_Identity", MySslMode::VerifyIdentity),
    ] {
        let m = mysql(&format!("{base}?ssl-mode={value}&prefer_socket=false")).unwrap();
        assert_eq!(m.mode, Some(expected), "{value}");
        assert_eq!(m.driver_url, format!("{base}?prefer_socket=false"));
    }
    let m = mysql(&format!("{base}?ssl-mode=VERIFY_IDENTITY&ssl-ca=%2Fca.pem")).unwrap();
    assert_eq!(m.ca, Some(PathBuf::from("/ca.pem")));
    assert_eq!(m.driver_url, base);
    // mysql_async's own parameters are left to it.
    let m = mysql(&format!("{base}?require_ssl=true&verify_ca=false")).unwrap();
    assert_eq!(m.mode, None);
    assert_eq!(
        m.driver_url,
        format!("{base}?require_ssl=true&verify_ca=false")
    );
}

#[test]
fn bad_mysql_values_are_invalid_arguments_naming_the_parameter() {
    let base = "mysql://root:hunter2@localhost/test";
    for (query, needle) in [
        ("ssl-mode=VERIFY_FULL", "`ssl-mode`"),
        ("ssl-mode=", "`ssl-mode`"),
        ("ssl-mode=REQUIRED&ssl-mode=DISABLED", "`ssl-mode`"),
        ("ssl-ca=", "`ssl-ca`"),
        ("ssl-ca=/ca.pem", "`ssl-ca`"),
        ("ssl-mode=REQUIRED&ssl-ca=/ca.pem", "`ssl-ca`"),
        ("ssl-mode=REQUIRED&require_ssl=true", "`require_ssl`"),
    ] {
        let url = format!("{base}?{query}");
        let msg = invalid_naming(mysql(&url), &url, needle);
        assert!(!msg.contains("hunter2"), "password leaked: {msg}");
    }
}
