//! One way to show a connection string without its secrets, for every crate.

/// `url` with its secrets hidden, for skip lines, errors and `Debug`: the password of
/// the user info becomes `***` (`postgres://app:***@db/app`), a user info without a
/// password is kept (a user name is not a secret), and every `password=` value of a
/// query or key/value string becomes `***`. Text that is neither a URL nor a key/value
/// string may be a bare secret: it becomes `<unparsable url>`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    match url.find("://") {
        Some(scheme_end) => {
            let start = scheme_end + 3;
            let rest = &url[start..];
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            // user:password@ (the last `@` ends the user info; a password may hold `@`).
            let userinfo = authority
                .rfind('@')
                .map(|at| (at, authority[..at].find(':')));
            if let Some((at, Some(colon))) = userinfo {
                out.replace_range(start + colon + 1..start + at, "***");
            }
        }
        None if !url.contains('=') => return "<unparsable url>".to_owned(),
        None => {}
    }
    // password=… in a query string or a key/value string: each piece ends at a separator.
    const SEPARATORS: [char; 5] = ['?', '&', ' ', ';', '#'];
    out.split_inclusive(SEPARATORS)
        .map(|piece| {
            let body = piece.trim_end_matches(SEPARATORS);
            match body.to_ascii_lowercase().find("password=") {
                Some(at) => format!("{}***{}", &body[..at + 9], &piece[body.len()..]),
                None => piece.to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_passwords_only() {
        let cases = [
            (
                "postgres://app:s3cr%40t@db:5432/app",
                "postgres://app:***@db:5432/app",
            ),
            (
                "redis://user:pw@host:6379/1",
                "redis://user:***@host:6379/1",
            ),
            ("redis://:p@ss@h", "redis://:***@h"),
            ("mysql://root@127.0.0.1/test", "mysql://root@127.0.0.1/test"),
            ("redis://h:1/0", "redis://h:1/0"),
            (
                "postgres://db/app?user=a&password=hunter2&sslmode=disable",
                "postgres://db/app?user=a&password=***&sslmode=disable",
            ),
            (
                "mysql://r:x@db/app?PASSWORD=y",
                "mysql://r:***@db/app?PASSWORD=***",
            ),
            (
                "host=db password=hunter2 user=a",
                "host=db password=*** user=a",
            ),
            ("secret", "<unparsable url>"),
            (
                "redis-sentinel://u:pw@h:26379/0?sentinelServiceName=m",
                "redis-sentinel://u:***@h:26379/0?sentinelServiceName=m",
            ),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
    }
}
