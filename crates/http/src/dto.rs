//! JSON shapes of the API, converted from domain types at the edge.

use serde::Serialize;
use txwatch_domain::{Transaction, UserId, Verdict};

use crate::query::format_instant;

/// A transaction as the old service sent it, plus the verdict's details in
/// `meta_data` so a flag can be explained.
#[derive(Debug, Serialize)]
pub(crate) struct TransactionJson {
    id: uuid::Uuid,
    user_id: uuid::Uuid,
    /// Two decimals, as a string: `"271.62"`.
    amount: String,
    currency: String,
    /// RFC 3339 in UTC.
    txn_date: String,
    status: String,
    meta_data: MetaDataJson,
}

/// `meta_data`: `is_anomaly` as before; the rest explains it.
#[derive(Debug, Serialize)]
pub(crate) struct MetaDataJson {
    is_anomaly: bool,
    /// Earlier amounts the verdict used.
    window_len: usize,
    /// Graded suspicion in `[0, 1]`; absent without enough history.
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    /// Mean of the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    window_mean: Option<f64>,
    /// The amount above which the transaction would be flagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold: Option<f64>,
}

impl From<&Transaction> for TransactionJson {
    fn from(t: &Transaction) -> TransactionJson {
        let score = match &t.verdict {
            Verdict::Scored(score) => Some(score),
            Verdict::NotEnoughHistory { .. } => None,
        };
        TransactionJson {
            id: t.id.as_uuid(),
            user_id: t.user_id.as_uuid(),
            amount: t.amount.to_string(),
            currency: t.currency.to_string(),
            txn_date: format_instant(t.txn_date),
            status: t.status.to_string(),
            meta_data: MetaDataJson {
                is_anomaly: t.verdict.is_anomaly(),
                window_len: t.verdict.window_len(),
                score: score.map(|s| s.score),
                window_mean: score.map(|s| s.window_mean),
                threshold: score.map(|s| s.threshold),
            },
        }
    }
}

/// `GET /transactions`.
#[derive(Debug, Serialize)]
pub(crate) struct PageJson {
    pub(crate) transactions: Vec<TransactionJson>,
    /// Continue after the last row; `""` for an empty page.
    pub(crate) cursor: String,
    /// Whether another non-empty page follows.
    pub(crate) has_more: bool,
}

/// `GET /users`.
#[derive(Debug, Serialize)]
pub(crate) struct UsersJson {
    pub(crate) users: Vec<uuid::Uuid>,
}

impl UsersJson {
    pub(crate) fn new(users: Vec<UserId>) -> UsersJson {
        UsersJson {
            users: users.iter().map(UserId::as_uuid).collect(),
        }
    }
}

/// `GET /health`.
#[derive(Debug, Serialize)]
pub(crate) struct HealthJson {
    pub(crate) health: &'static str,
}
