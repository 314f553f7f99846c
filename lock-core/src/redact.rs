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
            if let Some((colon, at)) = password_span(&url[start..]) {
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

/// Where the password of `rest` (a URL after its `://`) lies: the `:` before it and the
/// `@` after it. The user info ends at the last `@` of the authority (a password may
/// hold `@`). A password that holds an unencoded `/`, `?` or `#` cuts the authority
/// short; drivers still accept some such URLs, so when the authority has no `@` but a
/// later `@` is followed by what reads as a host (no `=` or `&` after it: not a query
/// value), everything from the first `:` up to that `@` counts as the password. That
/// hides a little too much in a rare URL with `@` in its path, never too little.
fn password_span(rest: &str) -> Option<(usize, usize)> {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..authority_end].rfind('@') {
        Some(at) => at,
        None => {
            let at = rest.rfind('@')?;
            if rest[at + 1..].contains(['=', '&']) {
                return None;
            }
            at
        }
    };
    let colon = rest[..at].find(':')?;
    Some((colon, at))
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
            // Unencoded `/`, `?`, `#` in a password: still hidden.
            ("postgres://u:sec/ret@h/db", "postgres://u:***@h/db"),
            ("redis://:a#b@h:6379", "redis://:***@h:6379"),
            ("mysql://u:p?w@h/db", "mysql://u:***@h/db"),
            ("postgres://u:a/b@c@h:5432/db", "postgres://u:***@h:5432/db"),
            // `@` in a query value is not user info.
            (
                "postgres://h:5432/db?user=a@b.example&sslmode=disable",
                "postgres://h:5432/db?user=a@b.example&sslmode=disable",
            ),
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
