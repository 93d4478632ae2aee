//! Typed configuration: defaults → optional TOML file → `MANDAT_*` environment → `*_FILE` secrets.
//!
//! Every value is validated here, once, at start-up. A bad value becomes a [`ConfigError`]
//! naming the variable; `main` prints it on one line and exits with code 3.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

/// A configuration problem, always naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

impl ConfigError {
    fn new(var: &str, message: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            message: message.into(),
        }
    }
}

/// Which database backend the URL selects.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(SecretString),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("sqlite:") {
            Ok(Self::Sqlite(raw.to_owned()))
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(Self::Postgres(SecretString::from(raw.to_owned())))
        } else {
            Err("expected a URL starting with sqlite:// or postgres://".into())
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    // The PostgreSQL URL may carry a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(u) => write!(f, "Sqlite({u})"),
            Self::Postgres(_) => f.write_str("Postgres([redacted])"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub enum SmsProvider {
    Outbox { path: PathBuf },
    Http { url: String, token: SecretString },
}

/// A CIDR block of trusted reverse proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Self> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let ip = s.parse::<IpAddr>().ok()?;
                (ip, if ip.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr: ip, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    pub listen: SocketAddr,
    /// Base URL for links, without trailing slash.
    pub public_url: String,
    pub insecure_http: bool,
    /// `None`: read or create `keys_file`.
    pub master_key: Option<SecretString>,
    pub keys_file: PathBuf,
    pub sms: SmsProvider,
    pub sms_webhook_secret: Option<SecretString>,
    pub trusted_proxies: Vec<Cidr>,
    pub log: String,
    pub log_format: LogFormat,
    pub retention_file: PathBuf,
    /// How often `serve` applies the retention policy.
    pub retention_interval: std::time::Duration,
    pub request_timeout_secs: u64,
    /// Time allowed for a request's headers (and for an idle keep-alive connection's next
    /// request). Not configurable from the environment: [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: std::time::Duration,
    /// Open connections at most. Not configurable from the environment: [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    pub checkpoint_witness: Option<PathBuf>,
    /// HTTP witness: each checkpoint is POSTed there (background, in order, retried).
    pub checkpoint_witness_url: Option<String>,
    /// Bearer token sent to the HTTP witness, if any.
    pub checkpoint_witness_token: Option<SecretString>,
    pub checkpoint_origin: String,
    pub checkpoint_every_events: u64,
    pub checkpoint_interval_ms: u64,
    pub publish_checkpoints: bool,
    /// Address of the Prometheus endpoint (`GET /metrics`, a listener of its own); off when
    /// `None`.
    pub metrics_addr: Option<SocketAddr>,
    /// Requests per second and partner client on each OpenID Connect back-channel endpoint.
    pub oidc_client_rate: u32,
}

/// Request headers must arrive within this time (slow clients cannot hold connections).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Open connections at most.
pub const MAX_CONNECTIONS: usize = 10_000;

/// The raw layer: every key optional, unknown keys refused. Same names in TOML (lower case,
/// without the `MANDAT_` prefix) and in the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    database_url: Option<String>,
    database_max_connections: Option<String>,
    listen: Option<String>,
    public_url: Option<String>,
    insecure_http: Option<String>,
    master_key: Option<String>,
    master_key_file: Option<String>,
    keys_file: Option<String>,
    sms_provider: Option<String>,
    sms_outbox: Option<String>,
    sms_http_url: Option<String>,
    sms_http_token: Option<String>,
    sms_http_token_file: Option<String>,
    sms_webhook_secret: Option<String>,
    sms_webhook_secret_file: Option<String>,
    trusted_proxies: Option<String>,
    log: Option<String>,
    log_format: Option<String>,
    retention_file: Option<String>,
    retention_interval_secs: Option<String>,
    request_timeout_secs: Option<String>,
    checkpoint_witness: Option<String>,
    checkpoint_witness_url: Option<String>,
    checkpoint_witness_token: Option<String>,
    checkpoint_witness_token_file: Option<String>,
    audit_origin: Option<String>,
    checkpoint_every_events: Option<String>,
    checkpoint_interval_ms: Option<String>,
    publish_checkpoints: Option<String>,
    metrics_addr: Option<String>,
    oidc_client_rate: Option<String>,
}

const KNOWN: &[&str] = &[
    "database_url",
    "database_max_connections",
    "listen",
    "public_url",
    "insecure_http",
    "master_key",
    "master_key_file",
    "keys_file",
    "sms_provider",
    "sms_outbox",
    "sms_http_url",
    "sms_http_token",
    "sms_http_token_file",
    "sms_webhook_secret",
    "sms_webhook_secret_file",
    "trusted_proxies",
    "log",
    "log_format",
    "retention_file",
    "retention_interval_secs",
    "request_timeout_secs",
    "checkpoint_witness",
    "checkpoint_witness_url",
    "checkpoint_witness_token",
    "checkpoint_witness_token_file",
    "audit_origin",
    "checkpoint_every_events",
    "checkpoint_interval_ms",
    "publish_checkpoints",
    "metrics_addr",
    "oidc_client_rate",
];

fn var(key: &str) -> String {
    format!("MANDAT_{}", key.to_ascii_uppercase())
}

impl Config {
    /// Loads from the process environment and an optional TOML file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_sources(file, &env)
    }

    /// Loads from an explicit environment map (used by tests and by `load`).
    pub fn from_sources(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
            })?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                ConfigError::new("--config", e.message().to_owned())
            })?;
            for (k, v) in table {
                if !KNOWN.contains(&k.as_str()) {
                    return Err(ConfigError::new(
                        &k,
                        "unknown key in the configuration file",
                    ));
                }
                let s = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => {
                        if b {
                            "1".into()
                        } else {
                            "0".into()
                        }
                    }
                    _ => {
                        return Err(ConfigError::new(
                            &k,
                            "expected a string, integer or boolean",
                        ));
                    }
                };
                values.insert(k, s);
            }
        }
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("MANDAT_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase();
            if !KNOWN.contains(&key.as_str()) {
                return Err(ConfigError::new(
                    k,
                    "unknown variable (see README.md, Configuration)",
                ));
            }
            values.insert(key, v.clone());
        }
        let raw: Raw = serde_json::from_value(serde_json::to_value(&values).unwrap_or_default())
            .map_err(|e| ConfigError::new("configuration", e.to_string()))?;
        Self::validate(raw)
    }

    fn validate(raw: Raw) -> Result<Self, ConfigError> {
        let database_url = DatabaseUrl::parse(
            raw.database_url
                .as_deref()
                .unwrap_or("sqlite://./mandat.db"),
        )
        .map_err(|m| ConfigError::new("MANDAT_DATABASE_URL", m))?;
        let database_max_connections = parse_num(
            raw.database_max_connections.as_deref(),
            "database_max_connections",
            16,
            1,
            1000,
        )? as u32;
        let listen_raw = raw.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            ConfigError::new(
                "MANDAT_LISTEN",
                format!("'{listen_raw}' is not a socket address (expected e.g. 127.0.0.1:8080)"),
            )
        })?;
        let public_url = raw
            .public_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:8080".into())
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://"))
            || public_url.len() <= "https://".len()
            || public_url.contains(char::is_whitespace)
        {
            return Err(ConfigError::new(
                "MANDAT_PUBLIC_URL",
                "expected an absolute http:// or https:// URL",
            ));
        }
        let insecure_http = parse_bool(raw.insecure_http.as_deref(), "insecure_http")?;
        let master_key = secret(raw.master_key, raw.master_key_file, "master_key")?;
        if let Some(k) = &master_key {
            crate::crypto::keyring::MasterKey::from_base64(k)
                .map_err(|m| ConfigError::new("MANDAT_MASTER_KEY", m))?;
        }
        let keys_file = PathBuf::from(raw.keys_file.unwrap_or_else(|| "./mandat.keys".into()));
        let sms = match raw.sms_provider.as_deref().unwrap_or("outbox") {
            "outbox" => SmsProvider::Outbox {
                path: PathBuf::from(
                    raw.sms_outbox
                        .unwrap_or_else(|| "./sms-outbox.jsonl".into()),
                ),
            },
            "http" => {
                let url = raw.sms_http_url.ok_or_else(|| {
                    ConfigError::new(
                        "MANDAT_SMS_HTTP_URL",
                        "required when MANDAT_SMS_PROVIDER=http",
                    )
                })?;
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    return Err(ConfigError::new(
                        "MANDAT_SMS_HTTP_URL",
                        "expected an http(s) URL",
                    ));
                }
                let token = secret(
                    raw.sms_http_token,
                    raw.sms_http_token_file,
                    "sms_http_token",
                )?
                .ok_or_else(|| {
                    ConfigError::new(
                        "MANDAT_SMS_HTTP_TOKEN",
                        "required when MANDAT_SMS_PROVIDER=http",
                    )
                })?;
                SmsProvider::Http { url, token }
            }
            other => {
                return Err(ConfigError::new(
                    "MANDAT_SMS_PROVIDER",
                    format!("'{other}' is not one of outbox, http"),
                ));
            }
        };
        let webhook_from_file = raw.sms_webhook_secret_file.is_some();
        let sms_webhook_secret = secret(
            raw.sms_webhook_secret,
            raw.sms_webhook_secret_file,
            "sms_webhook_secret",
        )?;
        if sms_webhook_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().trim().is_empty())
        {
            // An empty HMAC key would let anyone forge webhook calls.
            return Err(ConfigError::new(
                if webhook_from_file {
                    "MANDAT_SMS_WEBHOOK_SECRET_FILE"
                } else {
                    "MANDAT_SMS_WEBHOOK_SECRET"
                },
                "the webhook secret is empty (unset the variable to turn the webhook off)",
            ));
        }
        let mut trusted_proxies = Vec::new();
        for part in raw.trusted_proxies.as_deref().unwrap_or("").split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            trusted_proxies.push(Cidr::parse(part).ok_or_else(|| {
                ConfigError::new(
                    "MANDAT_TRUSTED_PROXIES",
                    format!("'{part}' is not a CIDR block"),
                )
            })?);
        }
        let log = raw.log.unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log).is_err() {
            return Err(ConfigError::new("MANDAT_LOG", "not a valid tracing filter"));
        }
        let log_format = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "MANDAT_LOG_FORMAT",
                    format!("'{other}' is not one of text, json"),
                ));
            }
        };
        let retention_file = PathBuf::from(
            raw.retention_file
                .unwrap_or_else(|| "policies/retention.toml".into()),
        );
        let retention_interval = std::time::Duration::from_secs(parse_num(
            raw.retention_interval_secs.as_deref(),
            "retention_interval_secs",
            3600,
            60,
            7 * 86_400,
        )?);
        let request_timeout_secs = parse_num(
            raw.request_timeout_secs.as_deref(),
            "request_timeout_secs",
            30,
            1,
            3600,
        )?;
        let checkpoint_every_events = parse_num(
            raw.checkpoint_every_events.as_deref(),
            "checkpoint_every_events",
            1000,
            1,
            10_000_000,
        )?;
        let oidc_client_rate = parse_num(
            raw.oidc_client_rate.as_deref(),
            "oidc_client_rate",
            u64::from(crate::http::ratelimit::OIDC_CLIENT_RATE),
            1,
            1_000_000,
        )?;
        let checkpoint_interval_ms = parse_num(
            raw.checkpoint_interval_ms.as_deref(),
            "checkpoint_interval_ms",
            1000,
            10,
            3_600_000,
        )?;
        let host = public_url
            .split_once("://")
            .map_or("", |(_, h)| h)
            .split('/')
            .next()
            .unwrap_or("");
        let checkpoint_origin = raw.audit_origin.unwrap_or_else(|| format!("{host}/audit"));
        if checkpoint_origin.is_empty()
            || checkpoint_origin.contains(|c: char| c.is_whitespace() || c == '+' || c.is_control())
        {
            return Err(ConfigError::new(
                "MANDAT_AUDIT_ORIGIN",
                "must be non-empty, without spaces or '+'",
            ));
        }
        let checkpoint_witness_url = match raw.checkpoint_witness_url {
            None => None,
            Some(u) if u.trim().is_empty() => None,
            Some(u) => {
                let u = u.trim().to_owned();
                if !(u.starts_with("https://") || u.starts_with("http://"))
                    || u.contains(char::is_whitespace)
                    || reqwest::Url::parse(&u).is_err()
                {
                    // The URL may carry a token: never echo it.
                    return Err(ConfigError::new(
                        "MANDAT_CHECKPOINT_WITNESS_URL",
                        "expected an absolute http:// or https:// URL",
                    ));
                }
                Some(u)
            }
        };
        let checkpoint_witness_token = secret(
            raw.checkpoint_witness_token,
            raw.checkpoint_witness_token_file,
            "checkpoint_witness_token",
        )?;
        if checkpoint_witness_token.is_some() && checkpoint_witness_url.is_none() {
            return Err(ConfigError::new(
                "MANDAT_CHECKPOINT_WITNESS_TOKEN",
                "given without MANDAT_CHECKPOINT_WITNESS_URL",
            ));
        }
        let publish_checkpoints =
            parse_bool(raw.publish_checkpoints.as_deref(), "publish_checkpoints")?;
        let metrics_addr = match raw.metrics_addr.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(s.parse::<SocketAddr>().map_err(|_| {
                ConfigError::new(
                    "MANDAT_METRICS_ADDR",
                    format!("'{s}' is not a socket address (expected e.g. 127.0.0.1:9090)"),
                )
            })?),
        };
        if metrics_addr.is_some_and(|m| m == listen && m.port() != 0) {
            return Err(ConfigError::new(
                "MANDAT_METRICS_ADDR",
                "must differ from MANDAT_LISTEN (the metrics have a listener of their own)",
            ));
        }
        Ok(Self {
            database_url,
            database_max_connections,
            listen,
            public_url,
            insecure_http,
            master_key,
            keys_file,
            sms,
            sms_webhook_secret,
            trusted_proxies,
            log,
            log_format,
            retention_file,
            retention_interval,
            request_timeout_secs,
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            checkpoint_witness: raw.checkpoint_witness.map(PathBuf::from),
            checkpoint_witness_url,
            checkpoint_witness_token,
            checkpoint_origin,
            checkpoint_every_events,
            checkpoint_interval_ms,
            publish_checkpoints,
            metrics_addr,
            oidc_client_rate: u32::try_from(oidc_client_rate).unwrap_or(u32::MAX),
        })
    }

    /// A configuration for tests and benchmarks: everything local, nothing read from the
    /// environment.
    pub fn for_tests(database_url: DatabaseUrl, dir: &Path) -> Self {
        Self {
            database_url,
            database_max_connections: 8,
            listen: "127.0.0.1:0".parse().expect("literal address"),
            public_url: "http://127.0.0.1:8080".into(),
            insecure_http: true,
            master_key: Some(SecretString::from(
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
            )),
            keys_file: dir.join("mandat.keys"),
            sms: SmsProvider::Outbox {
                path: dir.join("sms-outbox.jsonl"),
            },
            sms_webhook_secret: None,
            trusted_proxies: Vec::new(),
            log: "warn".into(),
            log_format: LogFormat::Text,
            retention_file: PathBuf::from("policies/retention.toml"),
            retention_interval: std::time::Duration::from_secs(3600),
            request_timeout_secs: 30,
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            checkpoint_witness: Some(dir.join("witness.jsonl")),
            checkpoint_witness_url: None,
            checkpoint_witness_token: None,
            checkpoint_origin: "mandat.test/audit".into(),
            checkpoint_every_events: 1000,
            checkpoint_interval_ms: 1000,
            publish_checkpoints: false,
            metrics_addr: None,
            oidc_client_rate: crate::http::ratelimit::OIDC_CLIENT_RATE,
        }
    }

    /// `Secure` cookies unless explicitly running on plain HTTP.
    pub fn secure_cookies(&self) -> bool {
        !self.insecure_http
    }
}

fn parse_bool(v: Option<&str>, key: &str) -> Result<bool, ConfigError> {
    match v {
        None | Some("" | "0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(ConfigError::new(
            &var(key),
            format!("'{other}' is not a boolean (1 or 0)"),
        )),
    }
}

fn parse_num(
    v: Option<&str>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    match s.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            &var(key),
            format!("expected an integer between {min} and {max}"),
        )),
    }
}

/// A secret given directly or as `<NAME>_FILE` (one trailing newline stripped). Both → error.
fn secret(
    direct: Option<String>,
    file: Option<String>,
    key: &str,
) -> Result<Option<SecretString>, ConfigError> {
    match (direct, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            &var(key),
            format!("give either {} or {}_FILE, not both", var(key), var(key)),
        )),
        (Some(v), None) => Ok(Some(SecretString::from(v))),
        (None, Some(path)) => {
            let mut text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new(
                    &format!("{}_FILE", var(key)),
                    format!("cannot read {path}: {}", e.kind()),
                )
            })?;
            while text.ends_with('\n') || text.ends_with('\r') {
                text.pop();
            }
            Ok(Some(SecretString::from(text)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
