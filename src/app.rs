//! The application as a library: configuration in, a running server out. `main` and the
//! tests build it the same way, on a listener they bound (port 0 in tests).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::checkpointer::{CheckpointSettings, Checkpointer};
use crate::audit::sequencer::Sequencer;
use crate::audit::witness::{Backoff, HttpWitness};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::{Keyring, MasterKey};
use crate::store::{self, Store, StoreError};

/// Everything a request or a job needs, passed explicitly (no globals).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub keyring: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
    pub sequencer: Sequencer,
    pub authz: Arc<crate::authz::Authz>,
    /// The audit checkpoint writer and the log's integrity state.
    pub checkpoints: Checkpointer,
    pub hasher: crate::crypto::password::PasswordHasher,
    pub limits: Arc<crate::http::ratelimit::RateLimits>,
    /// The SMS sender and its delivery worker's wake-up (messages leave after the commit).
    pub sms: crate::sms::Delivery,
    pub code_failures: Arc<crate::http::code_failures::CodeFailures>,
    /// The retention periods, read once from `MANDAT_RETENTION_FILE`.
    pub retention: Arc<crate::service::retention::RetentionPolicy>,
}

/// Why start-up failed; `main` maps each kind to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration error: {0}")]
    Config(String),
    #[error("database unreachable: {0}")]
    Database(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StartError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) => 3,
            Self::Database(_) => 4,
            Self::Other(_) => 1,
        }
    }
}

/// Resolves the master key: configured, or read/created in the local key file.
pub fn load_keyring(config: &Config) -> Result<Keyring, StartError> {
    let master = match &config.master_key {
        Some(k) => MasterKey::from_base64(k)
            .map_err(|m| StartError::Config(format!("MANDAT_MASTER_KEY: {m}")))?,
        None => {
            let (key, created) = MasterKey::load_or_create_file(&config.keys_file)
                .map_err(|e| StartError::Config(format!("MANDAT_KEYS_FILE: {e}")))?;
            if created {
                tracing::warn!(
                    path = %config.keys_file.display(),
                    "generated a new master key file (mode 0600); back it up, or set MANDAT_MASTER_KEY in production: without it the encrypted data cannot be read"
                );
            } else {
                tracing::info!(path = %config.keys_file.display(), "using the master key file");
            }
            key
        }
    };
    Ok(Keyring::new(master))
}

/// Connects to the database (exit 4 within 30 s when unreachable) and optionally migrates.
pub async fn open_store(config: &Config, migrate: bool) -> Result<Arc<dyn Store>, StartError> {
    let store = store::connect(
        &config.database_url,
        config.database_max_connections,
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| StartError::Database(describe_store_error(&e)))?;
    if migrate {
        store.migrate().await.map_err(|e| match e {
            StoreError::Unavailable(_) => StartError::Database(describe_store_error(&e)),
            other => StartError::Other(anyhow::anyhow!(
                "migration failed: {}",
                describe_store_error(&other)
            )),
        })?;
    }
    Ok(store)
}

fn describe_store_error(e: &StoreError) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

impl AppState {
    pub async fn new(
        config: Config,
        clock: Arc<dyn Clock>,
        migrate: bool,
    ) -> Result<Self, StartError> {
        let keyring = Arc::new(load_keyring(&config)?);
        let authz = crate::authz::Authz::load()
            .map_err(|e| StartError::Config(format!("policies: {e}")))?;
        let retention = crate::service::retention::RetentionPolicy::load(&config.retention_file)
            .map_err(|m| StartError::Config(format!("MANDAT_RETENTION_FILE: {m}")))?;
        let http_witness = match &config.checkpoint_witness_url {
            Some(url) => Some(
                HttpWitness::new(
                    url,
                    config.checkpoint_witness_token.clone(),
                    Backoff::default(),
                )
                .map_err(|e| {
                    StartError::Config(format!(
                        "MANDAT_CHECKPOINT_WITNESS_URL: cannot build an HTTP client: {}",
                        e.without_url()
                    ))
                })?,
            ),
            None => None,
        };
        let store = open_store(&config, migrate).await?;
        let checkpoints = Checkpointer::new(
            store.clone(),
            keyring.clone(),
            clock.clone(),
            CheckpointSettings {
                origin: config.checkpoint_origin.clone(),
                witness: config.checkpoint_witness.clone(),
                http_witness,
                every_events: config.checkpoint_every_events.max(1),
                interval: Duration::from_millis(config.checkpoint_interval_ms),
            },
        );
        Ok(Self {
            authz: Arc::new(authz),
            hasher: crate::crypto::password::PasswordHasher::new(),
            limits: Arc::new(crate::http::ratelimit::RateLimits::default()),
            sms: crate::sms::Delivery::new(crate::sms::from_config(&config.sms)),
            code_failures: Arc::default(),
            retention: Arc::new(retention),
            config: Arc::new(config),
            sequencer: Sequencer::new(store.clone()),
            store,
            keyring,
            clock,
            checkpoints,
        })
    }
}

/// A server bound to its listener, not yet serving.
pub struct App {
    pub state: AppState,
    listener: TcpListener,
}

impl App {
    /// Builds the application on the configured address.
    pub async fn build(config: Config, migrate: bool) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            StartError::Config(format!(
                "MANDAT_LISTEN: cannot listen on {}: {e}",
                config.listen
            ))
        })?;
        let state = AppState::new(config, Arc::new(SystemClock), migrate).await?;
        Ok(Self { state, listener })
    }

    /// Builds the application on a listener the caller bound (tests: port 0).
    pub fn with_listener(state: AppState, listener: TcpListener) -> Self {
        Self { state, listener }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| ([127, 0, 0, 1], 0).into())
    }

    /// Serves until `shutdown` resolves, then drains connections and background jobs.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let expiry = tokio::spawn(crate::service::lifecycle::run_expiry(
            self.state.clone(),
            stop_rx.clone(),
        ));
        let retention = tokio::spawn(crate::service::retention::run_scheduled(
            self.state.clone(),
            crate::service::retention::Schedule::every(self.state.config.retention_interval),
            stop_rx.clone(),
        ));
        let witness = self
            .state
            .checkpoints
            .http_witness()
            .cloned()
            .map(|w| tokio::spawn(w.run(stop_rx.clone())));
        let sms = tokio::spawn(crate::sms::delivery::run(
            self.state.clone(),
            stop_rx.clone(),
        ));
        let jobs = tokio::spawn(self.state.sequencer.clone().run(stop_rx.clone()));
        let checkpoints = tokio::spawn(self.state.checkpoints.clone().run(stop_rx));
        let router = crate::http::router(self.state.clone());
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        let _ = stop_tx.send(true);
        let _ = jobs.await;
        let _ = checkpoints.await;
        let _ = expiry.await;
        let _ = retention.await;
        let _ = sms.await;
        if let Some(w) = witness {
            let _ = w.await;
        }
        self.state.store.close().await;
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received, draining connections");
}
