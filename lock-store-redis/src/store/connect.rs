//! Building a store: from a URL or a fred configuration (its own connection), or from
//! the application's client or pool; one operation timeout bounds the whole build.

use super::*;
use fred::types::config::ServerConfig;
use lock_core::BoxError;

use crate::options::{check_query, expected_form};

impl RedisStore {
    /// Connect (or adopt the application's connection) and build the store.
    ///
    /// For a URL or a [`Config`](fred::types::config::Config) the store opens its own
    /// connection, with fred's command timeout and connect timeout set to the operation
    /// timeout and a reconnect policy that retries forever; it is closed when the last clone
    /// of the store is dropped. A client or pool from the application is shared, connected
    /// first if it never was, and never closed by the store.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidArgument`] for a malformed URL (or one with a query parameter
    /// fred would ignore, or a Unix socket URL without a path), a `rediss://` URL without a TLS
    /// feature, a prefix with braces, a zero timeout or a fence margin out of range;
    /// [`LockError::Storage`] (naming the store and the endpoint, without its password) when
    /// Redis cannot be reached within the operation timeout. The whole call takes at most the
    /// operation timeout (plus scheduling), even against a server that accepts the connection
    /// and never answers.
    pub async fn connect(options: RedisStoreOptions) -> Result<Self, LockError> {
        options.validate()?;
        let timeout = options.timeout;
        match options.connection.clone() {
            Connection::Url(url) => {
                let config = parse_url(&url)?;
                Self::connect_owned(config, redact_url(&url), &options).await
            }
            Connection::Config(config) => {
                let endpoint = endpoint_of(&config);
                Self::connect_owned(*config, endpoint, &options).await
            }
            Connection::Client(client) => {
                let endpoint = endpoint_of(&client.client_config());
                if client.state() == ClientState::Disconnected {
                    connect_within(timeout, client.client_config().uses_tls(), client.init())
                        .await
                        .map_err(|cause| unreachable(&endpoint, cause))?;
                }
                Ok(Self::build(
                    Commands::Client(client),
                    false,
                    endpoint,
                    &options,
                ))
            }
            Connection::Pool(pool) => {
                let endpoint = endpoint_of(&pool.next().client_config());
                if pool
                    .clients()
                    .iter()
                    .all(|c| c.state() == ClientState::Disconnected)
                {
                    let tls = pool.next().client_config().uses_tls();
                    connect_within(timeout, tls, pool.init())
                        .await
                        .map_err(|cause| unreachable(&endpoint, cause))?;
                }
                Ok(Self::build(Commands::Pool(pool), false, endpoint, &options))
            }
        }
    }

    /// A store on a client the application already has (and has connected), with the
    /// default prefix and timeout. Use [`RedisStore::connect`] with
    /// [`RedisStoreOptions::from_client`] to choose them.
    pub fn from_client(client: Client) -> Self {
        let endpoint = endpoint_of(&client.client_config());
        Self::build(
            Commands::Client(client),
            false,
            endpoint,
            &RedisStoreOptions::default(),
        )
    }

    /// A store on a pool the application already has (and has connected), with the default
    /// prefix and timeout.
    pub fn from_pool(pool: Pool) -> Self {
        let endpoint = endpoint_of(&pool.next().client_config());
        Self::build(
            Commands::Pool(pool),
            false,
            endpoint,
            &RedisStoreOptions::default(),
        )
    }

    async fn connect_owned(
        mut config: Config,
        endpoint: String,
        options: &RedisStoreOptions,
    ) -> Result<Self, LockError> {
        let timeout = options.timeout;
        // The first connection gets one attempt (bounded by the connect timeout); the
        // reconnect policy applies to connections lost later. Without this, a failed first
        // connection would keep retrying in the background after `connect` gave up.
        config.fail_fast = true;
        let perf = PerformanceConfig {
            default_command_timeout: timeout,
            ..Default::default()
        };
        let connection = ConnectionConfig {
            connection_timeout: timeout,
            internal_command_timeout: timeout,
            // Belt and braces: lock commands also carry `max_attempts: 1` themselves.
            max_command_attempts: 1,
            ..Default::default()
        };
        let tls = config.uses_tls();
        let client = Client::new(config, Some(perf), Some(connection), Some(default_policy()));
        if let Err(cause) = connect_within(timeout, tls, client.init()).await {
            // A connection still pending after the timeout is closed in the background:
            // `quit` waits up to its own timeout for an answer the server may never give,
            // and the caller's time is already spent. (If the pending connection succeeds
            // after all, the queued QUIT closes it.) A failed one has stopped already.
            if cause.is::<ConnectTimedOut>() && client.state() != ClientState::Disconnected {
                tokio::spawn(async move {
                    let _ = client.quit().await;
                });
            }
            return Err(unreachable(&endpoint, cause));
        }
        Ok(Self::build(
            Commands::Client(client),
            true,
            endpoint,
            options,
        ))
    }

    fn build(
        commands: Commands,
        owned: bool,
        endpoint: String,
        options: &RedisStoreOptions,
    ) -> Self {
        let template = commands.client();
        let subscriber_config = SubscriberConfig {
            config: template.client_config(),
            perf: template.perf_config(),
            connection: template.connection_config().clone(),
            policy: template
                .client_reconnect_policy()
                .unwrap_or_else(default_policy),
            endpoint: endpoint.clone(),
        };
        let clustered = template.is_clustered();
        let channel = format!("{}released", options.prefix);
        let fence_margin_ms = millis(options.fence_margin);
        let hub = ReleaseHub::default();
        RedisStore {
            inner: Arc::new(Inner {
                commands,
                owned,
                prefix: options.prefix.clone(),
                channel: channel.clone(),
                timeout: options.timeout,
                endpoint,
                fence_margin_ms,
                options: Options {
                    max_attempts: Some(1),
                    timeout: Some(options.timeout),
                    ..Default::default()
                },
                acquire: Script::from_lua(scripts::acquire()),
                release: Script::from_lua(scripts::release(&channel, fence_margin_ms)),
                force_release: Script::from_lua(scripts::force_release(&channel, fence_margin_ms)),
                extend: Script::from_lua(scripts::EXTEND),
                batch: Script::from_lua(scripts::batch(&channel, fence_margin_ms)),
                // One script may only touch keys of one slot: no batches on Cluster.
                batcher: batch::Batcher::new(if clustered { 0 } else { options.max_in_flight }),
                hub: hub.clone(),
                subscriber: Subscriber::new(channel, hub, subscriber_config),
            }),
        }
    }
}

/// The servers of a configuration, for messages (fred's `Debug` of a `Config` would show
/// the password; the hosts never contain it): `redis://host:port` for one server,
/// `redis://a:1,b:2` for several, `redis+unix:///path` for a Unix socket.
fn endpoint_of(config: &Config) -> String {
    let hosts: Vec<String> = config
        .server
        .hosts()
        .iter()
        .map(|host| format!("{}:{}", host.host, host.port))
        .collect();
    let scheme = match &config.server {
        ServerConfig::Sentinel { .. } => "redis-sentinel",
        ServerConfig::Clustered { .. } => "redis-cluster",
        _ => "redis",
    };
    #[cfg(all(unix, feature = "unix-sockets"))]
    if let ServerConfig::Unix { path } = &config.server {
        return format!("redis+unix://{}", path.display());
    }
    format!("{scheme}://{}", hosts.join(","))
}

/// A first connection that did not complete within the operation timeout.
#[derive(Debug)]
struct ConnectTimedOut {
    timeout: Duration,
    /// Whether the connection uses TLS: a TLS client talking to a plain server waits for
    /// a handshake answer that never comes, and nothing else tells why.
    tls: bool,
}

impl fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no connection within the operation timeout of {:?}",
            self.timeout
        )?;
        if self.tls {
            f.write_str(" (is the server speaking TLS?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectTimedOut {}

/// Bound a first connection by the operation timeout. fred's own connect timeout is the
/// same, so its timeout error (or, behind Sentinel, "failed to connect to all sentinel
/// nodes") can arrive first: a failure that took the whole timeout is a timeout too.
async fn connect_within<T>(
    timeout: Duration,
    tls: bool,
    future: impl Future<Output = Result<T, FredError>>,
) -> Result<T, BoxError> {
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(timeout, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error))
            if *error.kind() == fred::error::ErrorKind::Timeout
                || (tls && started.elapsed() >= timeout) =>
        {
            Err(Box::new(ConnectTimedOut { timeout, tls }))
        }
        Ok(Err(error)) => Err(cause(error)),
        Err(_) => Err(Box::new(ConnectTimedOut { timeout, tls })),
    }
}

/// The error of a store that could not reach its server when it was built (logged once).
fn unreachable(endpoint: &str, cause: BoxError) -> LockError {
    LockError::connect_failed("redis", endpoint, cause)
}

fn parse_url(url: &str) -> Result<Config, LockError> {
    let (scheme, rest) = url.split_once("://").unwrap_or((url, ""));
    let scheme = scheme.to_ascii_lowercase();
    let tls = scheme.starts_with("rediss") || scheme.starts_with("valkeys");
    if tls && !cfg!(any(feature = "rustls", feature = "native-tls")) {
        return Err(LockError::invalid(format!(
            "redis URL {} uses TLS, but lock-store-redis was built without its `rustls` \
             (formerly `tls`) or `native-tls` feature",
            redact_url(url)
        )));
    }
    let unix = scheme == "unix" || scheme.ends_with("+unix");
    if unix && !cfg!(all(unix, feature = "unix-sockets")) {
        return Err(LockError::invalid(format!(
            "redis URL {} names a Unix socket, but lock-store-redis was built without its \
             `unix-sockets` feature (or not for Unix)",
            redact_url(url)
        )));
    }
    check_query(url, &scheme)?;
    // fred knows `redis+unix://` and `valkey+unix://`; `unix://` is the same thing.
    let fred_url = if scheme == "unix" {
        format!("redis+unix://{rest}")
    } else {
        url.to_owned()
    };
    let invalid = |problem: &str| {
        LockError::invalid(format!(
            "invalid redis URL {}: {problem} (expected {})",
            redact_url(url),
            expected_form(&scheme)
        ))
    };
    let config = Config::from_url(&fred_url).map_err(|error| {
        invalid(if *error.kind() == fred::error::ErrorKind::Url {
            url_problem(error.details())
        } else {
            error.details()
        })
    })?;
    #[cfg(all(unix, feature = "unix-sockets"))]
    if let ServerConfig::Unix { path } = &config.server {
        if path.as_os_str().is_empty() || path.as_os_str() == "/" {
            return Err(invalid("no socket path"));
        }
    }
    Ok(config)
}

/// The words of the `url` crate's parse error whose `Debug` fred kept.
fn url_problem(debug: &str) -> &str {
    match debug {
        "EmptyHost" => "empty host",
        "IdnaError" => "invalid international domain name",
        "InvalidPort" => "invalid port number",
        "InvalidIpv4Address" => "invalid IPv4 address",
        "InvalidIpv6Address" => "invalid IPv6 address",
        "InvalidDomainCharacter" => "invalid domain character",
        "RelativeUrlWithoutBase" => "relative URL without a base",
        "Overflow" => "URLs more than 4 GB are not supported",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_timeout_asks_about_tls_only_for_a_tls_connection() {
        let timeout = Duration::from_secs(3);
        let plain = ConnectTimedOut {
            timeout,
            tls: false,
        };
        assert_eq!(
            plain.to_string(),
            "no connection within the operation timeout of 3s"
        );
        let tls = ConnectTimedOut { timeout, tls: true };
        assert_eq!(
            tls.to_string(),
            "no connection within the operation timeout of 3s (is the server speaking TLS?)"
        );
    }

    fn invalid_text(result: Result<Config, LockError>) -> String {
        match result {
            Err(LockError::InvalidArgument(text)) => text,
            other => panic!("expected an InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn a_sentinel_url_without_a_service_name_shows_the_sentinel_form() {
        for (url, form) in [
            ("redis-sentinel://127.0.0.1:6379", "redis-sentinel://"),
            ("valkey-sentinel://127.0.0.1:6379/0", "valkey-sentinel://"),
        ] {
            let text = invalid_text(parse_url(url));
            assert!(text.contains("sentinel service name"), "{text}");
            assert!(
                text.contains(&format!("(expected {form}"))
                    && text.contains("?sentinelServiceName="),
                "{text}"
            );
        }
        let text = invalid_text(parse_url("redis-cluster://127.0.0.1?node=a"));
        assert!(text.contains("(expected redis-cluster://"), "{text}");
    }

    #[test]
    fn url_parse_errors_are_told_in_words() {
        let text = invalid_text(parse_url("redis://:6379"));
        assert!(text.contains(": empty host (expected redis://"), "{text}");
        let text = invalid_text(parse_url("redis://127.0.0.1:99999"));
        assert!(text.contains(": invalid port number (expected"), "{text}");
    }

    #[test]
    fn query_parameters_fred_would_ignore_are_refused() {
        let text = invalid_text(parse_url("redis://127.0.0.1:6379?foo=bar"));
        assert!(
            text.contains("unknown query parameter \"foo\"")
                && text.contains("redis:// URLs take no query parameters"),
            "{text}"
        );
        // A misspelt service name, and a password-like value that must not be shown.
        let text = invalid_text(parse_url(
            "redis-sentinel://127.0.0.1:26379?sentinelservicename=m&pasword=hunter2",
        ));
        assert!(
            text.contains("\"sentinelservicename\"")
                && text.contains("take sentinelServiceName, node, sentinelUsername"),
            "{text}"
        );
        let text = invalid_text(parse_url("redis://:pw@h:6379?pasword=hunter2"));
        assert!(
            !text.contains("hunter2") && !text.contains(":pw@"),
            "{text}"
        );
        // A `?` in an unencoded password is no query: nothing of it is named.
        let text = invalid_text(parse_url("redis://:hun?ter2@127.0.0.1:6379"));
        assert!(!text.contains("ter2") && !text.contains("query"), "{text}");
        // A parameter of another topology is ignored by fred too.
        let text = invalid_text(parse_url("redis://127.0.0.1:6379?node=127.0.0.1:6380"));
        assert!(
            text.contains("\"node\" is for cluster and sentinel URLs"),
            "{text}"
        );
        let text = invalid_text(parse_url(
            "redis-cluster://127.0.0.1:30001?sentinelServiceName=m",
        ));
        assert!(text.contains("is for sentinel URLs only"), "{text}");
        // What fred reads is accepted.
        for url in [
            "redis://127.0.0.1:6379/2",
            "redis://127.0.0.1:6379?",
            "redis-cluster://127.0.0.1:30001?node=127.0.0.1:30002&node=127.0.0.1:30003",
            "redis-sentinel://u:p@127.0.0.1:26379/0?sentinelServiceName=m&node=127.0.0.1:26380\
             &sentinelUsername=s&sentinelPassword=t",
        ] {
            assert!(parse_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn a_unix_socket_url_needs_a_path() {
        for url in ["redis+unix://", "unix://", "valkey+unix:///"] {
            let text = invalid_text(parse_url(url));
            if cfg!(all(unix, feature = "unix-sockets")) {
                assert!(
                    text.starts_with(&format!("invalid redis URL {url}: no socket path"))
                        && text.contains(":///path/to/redis.sock"),
                    "{text}"
                );
            } else {
                assert!(text.contains("`unix-sockets`"), "{text}");
            }
        }
    }

    #[test]
    fn valkey_urls_parse_as_redis_urls() {
        for (valkey, redis) in [
            ("valkey://127.0.0.1:6380/2", "redis://127.0.0.1:6380/2"),
            (
                "valkey-cluster://127.0.0.1:30001?node=127.0.0.1:30002",
                "redis-cluster://127.0.0.1:30001?node=127.0.0.1:30002",
            ),
            (
                "valkey-sentinel://127.0.0.1:26379/0?sentinelServiceName=m",
                "redis-sentinel://127.0.0.1:26379/0?sentinelServiceName=m",
            ),
        ] {
            let (a, b) = (parse_url(valkey).unwrap(), parse_url(redis).unwrap());
            assert_eq!(a.server, b.server, "{valkey}");
            assert_eq!(a.database, b.database, "{valkey}");
        }
    }

    #[test]
    fn valkeys_needs_a_tls_feature_like_rediss() {
        let result = parse_url("valkeys://127.0.0.1:6380");
        if cfg!(any(feature = "rustls", feature = "native-tls")) {
            assert!(result.is_ok(), "{result:?}");
        } else {
            let err = result.unwrap_err();
            assert!(err.to_string().contains("`tls`"), "{err}");
        }
    }

    #[test]
    fn unix_urls_need_the_unix_sockets_feature() {
        for url in [
            "unix:///tmp/redis.sock",
            "redis+unix:///tmp/redis.sock",
            "valkey+unix:///tmp/redis.sock",
        ] {
            let result = parse_url(url);
            if cfg!(all(unix, feature = "unix-sockets")) {
                let config = result.unwrap();
                assert_eq!(
                    endpoint_of(&config),
                    "redis+unix:///tmp/redis.sock",
                    "{url}"
                );
            } else {
                let err = result.unwrap_err();
                assert!(err.to_string().contains("`unix-sockets`"), "{url}: {err}");
            }
        }
    }
}
