//! Building and running the HTTP server, and stopping it gracefully.

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use actix_http::HttpService;
use actix_http::error::DispatchError;
use actix_server::Server;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::from_fn;
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use txwatch_cache::{CacheError, EventLog, Keys, WindowStore};
use txwatch_http::{
    AppState, HeadErrorsAsJson, IngestQueue, Metrics, Pipeline, SimulationSettings,
};
use txwatch_storage::{Replicas, StorageError, TransactionRepository};

use crate::settings::{Settings, SettingsError, window_len};

/// A server bound to its port, ready to run, with its background tasks (the
/// event relay, the simulation driver and the ingest workers) started.
pub struct Application {
    port: u16,
    server: Server,
    /// Cancelled when shutdown starts: streams end, simulations stop.
    shutdown: CancellationToken,
    /// How long a shutdown may take in all.
    grace: Duration,
    relay: JoinHandle<()>,
    simulations: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    migrations: Option<JoinHandle<()>>,
    /// Checks the read replicas' health and lag, when there are any.
    replica_checks: Option<JoinHandle<()>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be created, reached or migrated.
    #[error("cannot prepare the database")]
    Database(#[from] StorageError),
    /// The Redis pool could not be built.
    #[error("cannot set up redis")]
    Cache(#[from] CacheError),
    /// Settings that only fail when used.
    #[error("invalid settings")]
    Settings(#[from] SettingsError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// What we tried to bind.
        address: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// Creates the database if needed and applies pending migrations.
///
/// # Errors
/// [`StorageError`] when the database cannot be reached or migrated.
pub async fn prepare_database(settings: &Settings) -> Result<(), StorageError> {
    txwatch_storage::ensure_database(&settings.database.url).await?;
    txwatch_storage::migrate(&settings.database.url).await
}

/// Migrates the database at `url` once it can be reached, trying again
/// every few seconds: a server that started while Postgres was down serves
/// what does not need it meanwhile, and everything once this is done.
async fn migrate_when_reachable(url: String) {
    let mut pause = Duration::from_millis(250);
    loop {
        match prepare(&url).await {
            Ok(()) => {
                info!("database reachable and migrated");
                return;
            }
            Err(error) if error.is_unavailable() => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                // Not an outage: retrying cannot help. Requests keep answering
                // 503 and `/ready` says why.
                tracing::error!(
                    error = format!("{:#}", anyhow::Error::from(error)),
                    "database cannot be migrated"
                );
                return;
            }
        }
    }
}

async fn prepare(url: &str) -> Result<(), StorageError> {
    txwatch_storage::ensure_database(url).await?;
    txwatch_storage::migrate(url).await
}

impl Application {
    /// Migrates the database, builds the pools and binds the listener
    /// (port 0 picks a free port; see [`port`](Application::port)). When
    /// Postgres cannot be reached yet, the server starts anyway: routes that
    /// need it answer 503 and `/ready` says so until a background task has
    /// migrated it. Redis is never needed to start.
    ///
    /// # Errors
    /// [`StartupError`] when the database refuses its migrations, a setting
    /// is unusable, or the port cannot be bound.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let connect_timeout = Duration::from_millis(settings.database.connect_timeout_ms.max(1));
        let prepared =
            match tokio::time::timeout(connect_timeout * 2, prepare_database(&settings)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(StorageError::Unavailable(
                    "no answer from the database".into(),
                )),
            };
        let migrations = match prepared {
            Ok(()) => None,
            Err(error) if error.is_unavailable() => {
                warn!(
                    error = format!("{:#}", anyhow::Error::from(error)),
                    "database unreachable; starting without it and migrating once it is back"
                );
                Some(tokio::spawn(migrate_when_reachable(
                    settings.database.url.clone(),
                )))
            }
            Err(error) => return Err(error.into()),
        };
        let primary = txwatch_storage::connect(&settings.database)?;
        let replicas = Replicas::connect(&settings.database)?;
        let replica_checks = replicas.clone().map(|replicas| {
            info!(
                replicas = replicas.status().len(),
                max_lag_ms = settings.database.replica_max_lag_ms,
                "reading history and users from read replicas"
            );
            tokio::spawn(replicas.monitor(primary.clone()))
        });
        let transactions = TransactionRepository::new(primary).with_replicas(replicas);
        let redis = txwatch_cache::connect(&settings.redis)?;
        let keys = Keys::new(settings.redis.key_prefix.as_str());
        let detector = settings.detector.build().map_err(SettingsError::from)?;
        let windows = WindowStore::new(
            redis.clone(),
            keys.clone(),
            window_len(&detector),
            Duration::from_secs(settings.redis.window_idle_ttl_secs),
        );
        let events = EventLog::new(
            redis.clone(),
            &keys,
            settings.redis.event_retention,
            settings.redis.event_shards,
        );
        let pipeline = Pipeline::new(
            transactions.clone(),
            windows,
            events.clone(),
            detector,
            Metrics::new(),
        );
        let (single, single_jobs) = IngestQueue::new();
        let state = AppState::new(
            transactions,
            pipeline.clone(),
            single,
            redis,
            &settings.http,
            settings.simulator.enabled,
        )
        .map_err(SettingsError::from)?;
        let shutdown = state.shutdown.clone();

        let simulation = SimulationSettings {
            interval: Duration::from_millis(settings.simulator.interval_ms),
            simulator: settings.simulator.to_config()?,
        };
        let relay = tokio::spawn(txwatch_http::run_relay(state.hub.clone(), events));
        let simulations = tokio::spawn(txwatch_http::run_simulations(
            state.simulations.clone(),
            pipeline.clone(),
            state.hub.clone(),
            simulation,
            shutdown.clone(),
        ));
        // A few concurrent pipeline calls keep Redis and Postgres busy while
        // each gathers the single posts that arrived meanwhile.
        let ingest_workers = match settings.server.ingest_workers {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let workers = (0..ingest_workers)
            .map(|_| {
                tokio::spawn(txwatch_http::run_ingest_worker(
                    single_jobs.clone(),
                    pipeline.clone(),
                ))
            })
            .collect();

        if settings.http.uses_built_in_cursor_secret() {
            warn!(
                "the cursor secret is the built-in one, which is public: anyone can sign \
                 pagination cursors; set APP_HTTP__CURSOR_SECRET (the same on every replica)"
            );
        }
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .port();

        let server = serve(listener, state, &settings).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        info!(%address, port, "listening");
        Ok(Application {
            port,
            server,
            shutdown,
            grace: Duration::from_secs(settings.server.shutdown_timeout_secs),
            relay,
            simulations,
            workers,
            migrations,
            replica_checks,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT or SIGTERM), then
    /// shuts down gracefully; see [`run_until`](Application::run_until).
    ///
    /// # Errors
    /// An I/O error from the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(stop_signal()).await
    }

    /// Serves until `stop` completes, then shuts down within the configured
    /// grace period (`server.shutdown_timeout_secs`):
    /// 1. every SSE stream sends `event: error` `shutting_down` and ends, so
    ///    clients reconnect elsewhere and resume by id, and the simulations
    ///    stop after the tick under way;
    /// 2. the listener closes and in-flight requests finish;
    /// 3. the ingest workers finish what was handed to them, publishing the
    ///    events of what they stored.
    ///
    /// Nothing acknowledged is lost: a transaction is acknowledged only once
    /// stored.
    ///
    /// # Errors
    /// An I/O error from the server.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let outcome = tokio::select! {
            outcome = &mut server => Some(outcome),
            () = stop => None,
        };
        let stopping = Instant::now();
        let outcome = match outcome {
            Some(outcome) => outcome,
            None => {
                info!(grace_secs = self.grace.as_secs(), "shutting down");
                self.shutdown.cancel();
                // Only streams read the relay, and they are ending.
                self.relay.abort();
                handle.stop(true).await;
                server.await
            }
        };
        self.shutdown.cancel();
        // The server took at most the grace period; what it handed off gets
        // the rest of it, and at least a second.
        let until = (stopping + self.grace).max(Instant::now() + Duration::from_secs(1));
        // The queue of single posts closes with the server's app state;
        // each worker then finishes its batch and returns.
        for worker in self.workers {
            if tokio::time::timeout_at(until, worker).await.is_err() {
                warn!("an ingest worker did not finish within the grace period");
            }
        }
        if tokio::time::timeout_at(until, self.simulations)
            .await
            .is_err()
        {
            warn!("simulations did not stop within the grace period");
        }
        self.relay.abort();
        if let Some(migrations) = self.migrations {
            migrations.abort();
        }
        if let Some(checks) = self.replica_checks {
            checks.abort();
        }
        info!("stopped");
        outcome.map_err(std::io::Error::other)?
    }
}

/// The HTTP server on `listener`: actix-web's app, served by actix-http's
/// HTTP/1 service over each connection wrapped in
/// [`HeadErrorsAsJson`](txwatch_http::HeadErrorsAsJson), so that the
/// answers actix's parser writes itself (a malformed or oversized request
/// head) are in the API's JSON error shape too. This is what
/// `actix_web::HttpServer` assembles, less the socket wrapper it has no
/// place for: the same worker count, keep-alive, client request and
/// disconnect timeouts, graceful shutdown (idle keep-alive connections
/// close when it starts) and shutdown timeout. Signals are ours: see `Application::run_until`.
fn serve(listener: TcpListener, state: AppState, settings: &Settings) -> std::io::Result<Server> {
    let local = listener.local_addr()?;
    let http_config = settings.http.clone();
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
    if settings.server.workers > 0 {
        builder = builder.workers(settings.server.workers);
    }
    let shutting_down = builder.graceful_shutdown_signal();
    builder
        .listen("txwatch", listener, move || {
            let app = App::new()
                .wrap(txwatch_http::cors(&http_config))
                .wrap(from_fn(txwatch_http::observe))
                .configure(txwatch_http::configure(state.clone()))
                .default_service(web::to(txwatch_http::not_found))
                .into_factory()
                .map_err(|error| error.error_response());
            let shutting_down = shutting_down.clone();
            let http = HttpService::build()
                .client_request_timeout(Duration::from_secs(10))
                // As HttpServer: a connection closed after an early answer
                // (a 413 before the body) lingers a second, so the client
                // finishes sending and reads it rather than meeting a reset.
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(local)
                .graceful_shutdown_signal(move || {
                    let signal = shutting_down.clone();
                    async move { signal.notified().await }
                })
                // Lets streams notice at once when their client closes.
                .on_connect_ext(|connection: &HeadErrorsAsJson<TcpStream>, extensions| {
                    txwatch_http::record_connection(connection, extensions)
                })
                .h1(map_config(app, |_| AppConfig::default()));
            fn_service(|socket: TcpStream| async move {
                // Answers go out as soon as they are written: with Nagle's
                // algorithm on, the last segment of a page waited for the
                // client's delayed ACK (tens of ms at p99), and so did
                // small SSE events.
                let _ = socket.set_nodelay(true);
                let peer = socket.peer_addr().ok();
                Ok::<_, DispatchError>((HeadErrorsAsJson::new(socket), peer))
            })
            .and_then(http)
        })
        .map(actix_server::ServerBuilder::run)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => info!("interrupt received"),
        () = terminate => info!("terminate received"),
    }
}
