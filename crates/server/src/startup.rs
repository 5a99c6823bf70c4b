//! Building and running the HTTP server.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;
use tracing::info;
use txwatch_cache::{CacheError, EventLog, Keys, Leases, WindowStore};
use txwatch_http::{AppState, IngestQueue, Pipeline, SimulationSettings};
use txwatch_storage::{StorageError, TransactionRepository};

use crate::settings::{Settings, SettingsError, window_len};

/// Concurrent pipeline calls for single posted transactions.
const INGEST_WORKERS: usize = 8;

/// A server bound to its port, ready to run, with its background tasks (the
/// event relay and the simulation driver) started.
pub struct Application {
    port: u16,
    server: Server,
    background: Vec<JoinHandle<()>>,
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

impl Application {
    /// Migrates the database, builds the pools and binds the listener
    /// (port 0 picks a free port; see [`port`](Application::port)).
    ///
    /// # Errors
    /// [`StartupError`] when the database cannot be prepared or the port
    /// bound.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        prepare_database(&settings).await?;
        let transactions =
            TransactionRepository::new(txwatch_storage::connect(&settings.database)?);
        let redis = txwatch_cache::connect(&settings.redis)?;
        let keys = Keys::new(settings.redis.key_prefix.as_str());
        let detector = settings.detector.build().map_err(SettingsError::from)?;
        let windows = WindowStore::new(
            redis.clone(),
            keys.clone(),
            window_len(&detector),
            Duration::from_secs(settings.redis.window_idle_ttl_secs),
        );
        let events = EventLog::new(redis.clone(), &keys, settings.redis.event_retention);
        let pipeline = Pipeline::new(transactions.clone(), windows, events.clone(), detector);
        let (single, single_jobs) = IngestQueue::new();
        let state = AppState::new(transactions, pipeline.clone(), single, &settings.http);

        let interval = Duration::from_millis(settings.simulator.interval_ms);
        // A holder that stops renewing loses its users after three missed
        // ticks; another process with viewers takes them over.
        let leases = Leases::new(redis, keys, (interval * 3).max(Duration::from_secs(1)));
        let simulation = SimulationSettings {
            interval,
            simulator: settings.simulator.to_config()?,
            holder: uuid::Uuid::new_v4().to_string(),
        };
        let mut background = vec![
            tokio::spawn(txwatch_http::run_relay(state.hub.clone(), events)),
            tokio::spawn(txwatch_http::run_simulations(
                state.simulations.clone(),
                pipeline.clone(),
                leases,
                state.hub.clone(),
                simulation,
            )),
        ];
        // A few concurrent pipeline calls keep Redis and Postgres busy while
        // each gathers the single posts that arrived meanwhile.
        for _ in 0..INGEST_WORKERS {
            background.push(tokio::spawn(txwatch_http::run_ingest_worker(
                single_jobs.clone(),
                pipeline.clone(),
            )));
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

        let http_config = settings.http.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(txwatch_http::cors(&http_config))
                .configure(txwatch_http::configure(state.clone()))
                .default_service(web::to(txwatch_http::not_found))
        })
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .client_request_timeout(Duration::from_secs(10));
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .run();
        info!(%address, port, "listening");
        Ok(Application {
            port,
            server,
            background,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT or SIGTERM).
    ///
    /// # Errors
    /// An I/O error from the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = self.server.await;
        for task in &self.background {
            task.abort();
        }
        outcome
    }
}
