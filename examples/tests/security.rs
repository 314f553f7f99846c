//! Security: owner tokens are 128 bits from the OS RNG (unique over 1 000 000); no password
//! from a URL reaches an error, a `Debug` or a log line (logs captured at TRACE while
//! connection errors are provoked); owner tokens never reach logs; all SQL binds its
//! values; the docs call a serialized lock a capability.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{closed_port, mysql_url, postgres_url, rand_hex, redis_url, unique};
use lock_core::testing::TestStore;
use lock_core::{LockConfig, LockError, LockFactory, LockManager};
use lock_store_database::{DatabaseStore, DatabaseStoreOptions, database};
use lock_store_redis::{RedisStore, RedisStoreOptions, redis};

// ---- owner tokens ---------------------------------------------------------------------

#[test]
fn owner_tokens_are_128_random_bits_unique_over_a_million() {
    const N: usize = 1_000_000;
    let factory = LockFactory::new(TestStore::default());
    let mut seen: HashSet<u128> = HashSet::with_capacity(N);
    let mut ones = [0u32; 128];
    for _ in 0..N {
        let lock = factory.create_lock("k").unwrap();
        let owner = lock.owner();
        assert_eq!(owner.len(), 32, "{owner}");
        let v = u128::from_str_radix(owner, 16).expect("hex owner");
        assert!(
            seen.insert(v),
            "duplicate owner token after {} tokens",
            seen.len()
        );
        for (bit, count) in ones.iter_mut().enumerate() {
            *count += ((v >> bit) & 1) as u32;
        }
    }
    // Every one of the 128 bits is random: about half ones (σ = 500; allow 8σ).
    for (bit, &count) in ones.iter().enumerate() {
        assert!(
            (496_000..=504_000).contains(&count),
            "bit {bit} is set in {count} of {N} tokens: not uniformly random"
        );
    }
    // And they come from the OS RNG.
    let src = include_str!("../../lock-core/src/owner.rs");
    assert!(
        src.contains("getrandom::fill"),
        "owner tokens no longer use the OS RNG"
    );
    assert!(
        src.contains("OWNER_BYTES: usize = 16"),
        "owner tokens are no longer 128 bits"
    );
}

// ---- passwords and owner tokens in errors, Debug and logs -----------------------------

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged by this test binary, at TRACE, from every thread.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buf
    })
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// Display, Debug and every source of an error.
fn error_text(e: &LockError) -> String {
    let mut out = format!("{e}\n{e:?}\n");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    out
}

fn assert_no_secret(what: &str, text: &str, secret: &str) {
    assert!(!text.contains(secret), "{what} shows the secret: {text}");
}

/// `url` with `user:password@` put in front of the host.
fn with_password(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}")
}

fn closed(url: &str) -> String {
    // Replace the port by one where nothing listens.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    format!("{scheme}://{host}:{}/{path}", closed_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passwords_never_reach_errors_debug_or_logs() {
    logs();
    let secret = format!("Pw{}", rand_hex());
    let timeout = Duration::from_millis(700);
    // Unreachable port.
    let url = with_password(&closed(&redis_url()), "alice", &secret);
    let options = RedisStoreOptions::from_url(&url).with_timeout(timeout);
    assert_no_secret("RedisStoreOptions Debug", &format!("{options:?}"), &secret);
    let err = RedisStore::connect(options.clone()).await.unwrap_err();
    assert_no_secret("redis connect error", &error_text(&err), &secret);

    // Through a manager: lazy connect on first use.
    let manager = LockManager::new(
        LockConfig::new()
            .default_store("redis")
            .store("redis", redis(options)),
    )
    .unwrap();
    let lock = manager.create_lock(unique("sec")).unwrap();
    let err = lock.acquire_immediately().await.unwrap_err();
    assert!(err.is_storage(), "{err:?}");
    assert_no_secret("redis acquire error", &error_text(&err), &secret);
    assert_no_secret("LockManager Debug", &format!("{manager:?}"), &secret);
    assert_no_secret("Lock Debug", &format!("{lock:?}"), &secret);
    assert_no_secret(
        "LockFactory Debug",
        &format!("{:?}", manager.use_store("redis").unwrap()),
        &secret,
    );

    // Reachable server, password given (a server without AUTH refuses or ignores it).
    let url = with_password(&redis_url(), "default", &secret);
    match RedisStore::connect(RedisStoreOptions::from_url(&url).with_timeout(timeout)).await {
        Ok(store) => {
            assert_no_secret("RedisStore Debug", &format!("{store:?}"), &secret);
            let f = LockFactory::new(store);
            let lock = f.create_lock(unique("sec")).unwrap();
            assert!(lock.acquire_immediately().await.unwrap());
            assert_no_secret("Lock Debug", &format!("{lock:?}"), &secret);
            assert_no_secret("LockFactory Debug", &format!("{f:?}"), &secret);
            lock.release().await.unwrap();
        }
        Err(e) => assert_no_secret("redis auth error", &error_text(&e), &secret),
    }
    assert_no_secret("logs", &logged(), &secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_passwords_never_reach_errors_debug_or_logs() {
    logs();
    let secret = format!("Pw{}", rand_hex());
    let timeout = Duration::from_millis(1_500);
    for base in [postgres_url(), mysql_url()] {
        let user = if base.starts_with("mysql") {
            "root"
        } else {
            "postgres"
        };
        // Unreachable port.
        let url = with_password(&closed(&base), user, &secret);
        let options = DatabaseStoreOptions::new(&url).operation_timeout(timeout);
        assert_no_secret(
            "DatabaseStoreOptions Debug",
            &format!("{options:?}"),
            &secret,
        );
        let err = DatabaseStore::connect(options.clone()).await.unwrap_err();
        assert!(err.is_storage(), "{err:?}");
        assert_no_secret("database connect error", &error_text(&err), &secret);
        let manager = LockManager::new(
            LockConfig::new()
                .default_store("db")
                .store("db", database(options)),
        )
        .unwrap();
        let lock = manager.create_lock(unique("sec")).unwrap();
        let err = lock.acquire_immediately().await.unwrap_err();
        assert_no_secret("database acquire error", &error_text(&err), &secret);
        assert_no_secret("LockManager Debug", &format!("{manager:?}"), &secret);
        assert_no_secret("Lock Debug", &format!("{lock:?}"), &secret);

        // Reachable server with a password: PostgreSQL (trust) accepts it, MariaDB's
        // root without password refuses it.
        let url = with_password(&base, user, &secret);
        match DatabaseStore::connect(
            DatabaseStoreOptions::new(&url)
                .table_name(common::TABLE)
                .operation_timeout(timeout),
        )
        .await
        {
            Ok(store) => {
                assert_no_secret("DatabaseStore Debug", &format!("{store:?}"), &secret);
                let f = LockFactory::new(store);
                let lock = f.create_lock(unique("sec")).unwrap();
                assert!(lock.acquire_immediately().await.unwrap());
                assert_no_secret("Lock Debug", &format!("{lock:?}"), &secret);
                lock.release().await.unwrap();
            }
            Err(e) => assert_no_secret("database auth error", &error_text(&e), &secret),
        }
    }
    assert_no_secret("logs", &logged(), &secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_tokens_never_reach_logs_or_debug() {
    logs();
    let factory = LockFactory::new(lock_store_memory::MemoryStore::new());
    let key = unique("sec.owner");
    let a = factory
        .create_lock_with_ttl(key.clone(), Some(Duration::from_millis(300)))
        .unwrap()
        .with_auto_extend(true);
    let b = factory.create_lock(key.clone()).unwrap();
    assert!(a.acquire().await.unwrap());
    tokio::time::sleep(Duration::from_millis(250)).await; // auto-extensions
    assert!(!b.acquire_immediately().await.unwrap());
    a.extend(None).await.unwrap();
    let serialized = a.serialize();
    a.release().await.unwrap();
    assert!(b.release().await.unwrap_err().is_not_owned());
    b.force_release().await.unwrap();
    for (name, owner) in [("a", a.owner()), ("b", b.owner())] {
        assert_no_secret(
            &format!("Debug of lock {name}"),
            &format!("{a:?}{b:?}"),
            owner,
        );
        assert_no_secret("Debug of SerializedLock", &format!("{serialized:?}"), owner);
        let logs = logged();
        assert!(
            logs.contains(&key),
            "the lock events were not captured: {logs}"
        );
        assert_no_secret("logs", &logs, owner);
    }
}

// ---- SQL: bound parameters only -------------------------------------------------------

/// Every SQL text in lock-store-database is a constant template whose only placeholders
/// are the validated, quoted table name and the database-clock expression; values go
/// through `.bind`. `format!` may build SQL only from the table name (or the channel
/// derived from it) and an integer setting.
#[test]
fn all_sql_binds_its_values() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../lock-store-database/src");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("lock-store-database/src") {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 5, "sources not found: {files:?}");
    let sql_words = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "LISTEN", "PRAGMA", "WHERE", "DROP",
    ];
    let allowed_format_args = ["table", "busy_ms", "channel"];
    let mut checked_templates = 0;
    for file in &files {
        let src = std::fs::read_to_string(file).unwrap();
        let name = file.display();
        // 1. format!/write! producing SQL interpolates only allowed names.
        for (i, line) in src.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for mac in ["format!(", "write!(", "format_args!("] {
                let Some(at) = code.find(mac) else { continue };
                // The macro's text up to the closing of the statement (a few lines).
                let text: String = src.lines().skip(i).take(4).collect::<Vec<_>>().join("\n");
                let text = &text[text.find(mac).unwrap_or(at)..];
                let upper = text.to_ascii_uppercase();
                if !sql_words.iter().any(|w| upper.contains(&format!("{w} "))) {
                    continue;
                }
                for arg in placeholders(text) {
                    assert!(
                        allowed_format_args.contains(&arg.as_str()),
                        "{name}:{}: SQL built with format! interpolates {{{arg}}}: {line}",
                        i + 1
                    );
                }
            }
            // 2. sql_query never takes a format!ed string.
            assert!(
                !(code.contains("sql_query(format!") || code.contains("sql_query(&format!")),
                "{name}:{}: sql_query(format!(..)): {line}",
                i + 1
            );
            // 3. Templates are rendered by replacing {table} and {now} only.
            if let Some(at) = code.find(".replace(\"{") {
                let ph = &code[at + ".replace(\"".len()..];
                let ph = &ph[..ph.find('"').unwrap_or(ph.len())];
                assert!(
                    ph == "{table}" || ph == "{now}",
                    "{name}:{}: template placeholder {ph} is not the table or the clock: {line}",
                    i + 1
                );
            }
        }
        // 4. SQL templates (string constants in src/sql, module-level or a dialect's
        //    associated constants) hold no placeholder but {table}/{now}, and no quoted
        //    literal built from a value.
        if file.parent().is_some_and(|p| p.ends_with("sql")) {
            for konst in src.split("const ").skip(1) {
                let decl_end = konst.find(['=', ';']).unwrap_or(0);
                if !konst[..decl_end].contains("str") || !konst[decl_end..].starts_with('=') {
                    continue; // not a string, or a declaration without a value
                }
                let end = ["\";", "\","].iter().filter_map(|p| konst.find(p)).min();
                let body = &konst[..end.map_or(konst.len(), |e| e + 1)];
                for ph in placeholders(body) {
                    assert!(
                        ph == "table" || ph == "now",
                        "{name}: SQL constant with placeholder {{{ph}}}: {body}"
                    );
                }
                assert!(!body.contains("'{"), "{name}: a quoted placeholder: {body}");
                checked_templates += 1;
            }
        }
    }
    assert!(
        checked_templates >= 15,
        "only {checked_templates} SQL templates found"
    );
    println!(
        "SQL templates checked: {checked_templates} in {} files",
        files.len()
    );
}

/// `{name}` placeholders of a Rust format string or template (not `{{`, not `{}` or `{:?}`).
fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            if b.get(i + 1) == Some(&b'{') {
                i += 2;
                continue;
            }
            let end = text[i..].find('}').map(|e| i + e);
            if let Some(end) = end {
                let inner = &text[i + 1..end];
                let name = inner.split(':').next().unwrap_or("");
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.chars().all(|c| c.is_ascii_digit())
                {
                    out.push(name.to_owned());
                }
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

#[test]
fn the_sql_check_bites_on_an_interpolated_value() {
    let bad = "sql_query(format!(\"SELECT * FROM locks WHERE lock_key = '{key}'\"))";
    assert_eq!(placeholders(bad), vec!["key".to_owned()]);
    assert!(placeholders("format!(\"{{x}} {} {0} {:?}\")").is_empty());
}

// ---- docs -----------------------------------------------------------------------------

#[test]
fn docs_say_a_serialized_lock_is_a_capability_to_keep_secret() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = [
        "lock-core/src/serialized.rs",
        "lock-core/src/lock/mod.rs",
        "lock-core/src/lib.rs",
    ];
    for doc in docs {
        let text = std::fs::read_to_string(root.join(doc))
            .unwrap()
            .to_lowercase();
        assert!(
            text.contains("capabilit"),
            "{doc} does not call it a capability"
        );
    }
    let serialized = std::fs::read_to_string(root.join("lock-core/src/serialized.rs")).unwrap();
    assert!(serialized.contains("**It is a capability.**"));
    assert!(serialized.to_lowercase().contains("like a secret"));
    // The README, once it exists, must say it where it shows serialization.
    if let Ok(readme) = std::fs::read_to_string(root.join("README.md")) {
        let lower = readme.to_lowercase();
        if lower.contains("serialize") {
            assert!(
                lower.contains("capability") && lower.contains("secret"),
                "README.md shows serialized locks without calling them a secret capability"
            );
        }
    }
}
