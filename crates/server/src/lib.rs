//! The `txwatch` server: reads settings, sets up logging, builds the pools,
//! runs migrations, and starts the HTTP server; also the `migrate` and `seed`
//! commands.
//!
//! Main items: [`Settings`] (every setting, from defaults, an optional file
//! and the environment), [`Application`] (a bound, ready-to-run server), and
//! [`seed`] (bulk history loading).
//!
//! This is the only crate that reads configuration or environment variables,
//! installs the tracing subscriber, or spawns long-lived tasks. It wires the
//! library crates together and holds no business logic of its own.

pub mod seed;
mod settings;
mod startup;
pub mod telemetry;

pub use settings::{LogFormat, LogSettings, ServerSettings, Settings, SettingsError, window_len};
pub use startup::{Application, StartupError, prepare_database};
