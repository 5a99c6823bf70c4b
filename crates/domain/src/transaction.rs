//! Transactions and their identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::detector::Verdict;
use crate::money::Amount;

/// Identifies one transaction; also its idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransactionId(pub Uuid);

/// Identifies the user (account) a transaction belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

macro_rules! uuid_newtype_impls {
    ($name:ident) => {
        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(text).map(Self)
            }
        }
    };
}
uuid_newtype_impls!(TransactionId);
uuid_newtype_impls!(UserId);

/// An ISO 4217 style currency code: exactly three ASCII uppercase letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

/// Why a text is not a [`Currency`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a currency code: expected three uppercase letters such as INR")]
pub struct CurrencyError(pub String);

impl Currency {
    /// Indian rupee, the old service's only currency.
    pub const INR: Currency = Currency(*b"INR");

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("constructed from ASCII letters only")
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(text: &str) -> Result<Currency, CurrencyError> {
        let bytes: [u8; 3] = text
            .as_bytes()
            .try_into()
            .map_err(|_| CurrencyError(text.to_owned()))?;
        if bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency(bytes))
        } else {
            Err(CurrencyError(text.to_owned()))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

/// A payment's status, such as `paid` or `failed`: 1 to 32 characters of
/// lowercase ASCII letters, digits and underscores (the column is
/// `varchar(32)`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Status(StatusRepr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum StatusRepr {
    Known(&'static str),
    Other(Box<str>),
}

/// Why a text is not a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a status: use 1 to 32 lowercase letters, digits or underscores")]
pub struct StatusError(pub String);

impl Status {
    /// The payment went through.
    pub const PAID: Status = Status(StatusRepr::Known("paid"));
    /// The payment was declined or failed.
    pub const FAILED: Status = Status(StatusRepr::Known("failed"));

    /// The status as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            StatusRepr::Known(s) => s,
            StatusRepr::Other(s) => s,
        }
    }
}

impl FromStr for Status {
    type Err = StatusError;
    fn from_str(text: &str) -> Result<Status, StatusError> {
        match text {
            "paid" => return Ok(Status::PAID),
            "failed" => return Ok(Status::FAILED),
            _ => {}
        }
        let valid = (1..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Status(StatusRepr::Other(text.into())))
        } else {
            Err(StatusError(text.to_owned()))
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Status({})", self.as_str())
    }
}

/// Where a transaction came from. Simulated transactions are demo data: a
/// user's real transactions are never judged against them, and they are
/// judged against earlier simulated ones of the user only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// Sent by a client, or loaded as history.
    Real,
    /// Made up by the live simulation.
    Simulated,
}

impl Origin {
    /// Whether this is [`Origin::Simulated`].
    pub fn is_simulated(self) -> bool {
        self == Origin::Simulated
    }
}

/// A scored transaction: what was paid, and what the detector made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// Unique id, also the idempotency key.
    pub id: TransactionId,
    /// Whose transaction it is.
    pub user_id: UserId,
    /// How much, exactly.
    pub amount: Amount,
    /// In which currency.
    pub currency: Currency,
    /// When it happened (stored with microsecond precision).
    pub txn_date: OffsetDateTime,
    /// Paid, failed, ...
    pub status: Status,
    /// Sent by a client (or loaded as history), or made up by the live
    /// simulation; each is judged against its own kind only.
    pub origin: Origin,
    /// The detector's verdict against the user's earlier amounts.
    pub verdict: Verdict,
}

impl Transaction {
    /// Whether the detector flagged this transaction.
    pub fn is_anomaly(&self) -> bool {
        self.verdict.is_anomaly()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_three_uppercase_letters() {
        assert_eq!(
            "INR".parse::<Currency>().map(|c| c.to_string()),
            Ok("INR".into())
        );
        for bad in ["inr", "IN", "INRR", "", "I1R", "ÄBC"] {
            assert!(bad.parse::<Currency>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn statuses_are_short_lowercase_words() {
        assert_eq!("paid".parse::<Status>(), Ok(Status::PAID));
        assert_eq!("failed".parse::<Status>(), Ok(Status::FAILED));
        assert_eq!(
            "charged_back".parse::<Status>().map(|s| s.to_string()),
            Ok("charged_back".into())
        );
        for bad in ["", "Paid", "with space", &"x".repeat(33)] {
            assert!(bad.parse::<Status>().is_err(), "{bad:?} accepted");
        }
    }
}
