//! Shared handles for the routes.

use txwatch_storage::TransactionRepository;

use crate::config::HttpConfig;
use crate::cursor::CursorCodec;

/// What handlers need, as cheap clonable handles (pools are reference
/// counted).
#[derive(Clone)]
pub struct AppState {
    /// Stored transactions.
    pub transactions: TransactionRepository,
    /// Signs and checks pagination cursors.
    pub cursors: CursorCodec,
}

impl AppState {
    /// State for the given repository and settings.
    pub fn new(transactions: TransactionRepository, config: &HttpConfig) -> AppState {
        AppState {
            transactions,
            cursors: CursorCodec::new(config.cursor_secret.as_bytes()),
        }
    }
}
