//! Building and running the HTTP server.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use tracing::info;
use txwatch_http::AppState;
use txwatch_storage::{StorageError, TransactionRepository};

use crate::settings::Settings;

/// A server bound to its port, ready to run.
pub struct Application {
    port: u16,
    server: Server,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be created, reached or migrated.
    #[error("cannot prepare the database")]
    Database(#[from] StorageError),
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
        let pool = txwatch_storage::connect(&settings.database)?;
        let state = AppState::new(TransactionRepository::new(pool), &settings.http);

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
        Ok(Application { port, server })
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
        self.server.await
    }
}
