//! Opaque pagination cursors.
//!
//! A cursor is the position after the last row of a page, signed together
//! with the user it belongs to: 33 bytes (version, microseconds since the
//! epoch, row id, 8 bytes of HMAC-SHA256) in unpadded URL-safe base64, so it
//! travels in a query string without escaping.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use txwatch_domain::{TransactionId, UserId};
use txwatch_storage::Position;
use uuid::Uuid;

use crate::api::query::{EARLIEST, LATEST};

const VERSION: u8 = 1;
const MAC_LEN: usize = 8;
const BODY_LEN: usize = 1 + 8 + 16;
const CURSOR_LEN: usize = BODY_LEN + MAC_LEN;

/// Encodes and checks cursors with a secret key.
#[derive(Clone)]
pub struct CursorCodec {
    key: Hmac<Sha256>,
}

/// Why a cursor was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not URL-safe base64.
    #[error("the cursor is not one this server issued (bad encoding)")]
    Encoding,
    /// Decodes, but is not the size or version of ours.
    #[error("the cursor is not one this server issued (bad format)")]
    Format,
    /// The signature does not match: edited, or issued for another user or
    /// by a server with another key.
    #[error("the cursor was altered or belongs to another user's query")]
    Signature,
    /// Signed, but its position lies outside the years 0001 to 9999 (UTC),
    /// which no stored row has: made by someone who knows the key (the
    /// built-in one is public), not issued by this server.
    #[error("the cursor is not one this server issued (its date is out of range)")]
    Range,
}

impl CursorCodec {
    /// A codec signing with `secret`.
    pub fn new(secret: &[u8]) -> CursorCodec {
        let key = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        CursorCodec { key }
    }

    /// The cursor for continuing `user_id`'s history after `position`.
    pub fn encode(&self, user_id: UserId, position: &Position) -> String {
        let mut bytes = [0u8; CURSOR_LEN];
        bytes[..BODY_LEN].copy_from_slice(&body(position));
        let mac = self.mac(user_id, &bytes[..BODY_LEN]);
        bytes[BODY_LEN..].copy_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a cursor stands for, checking it was issued for `user_id`.
    ///
    /// # Errors
    /// [`CursorError`] when the cursor is malformed, foreign or altered.
    pub fn decode(&self, user_id: UserId, cursor: &str) -> Result<Position, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| CursorError::Encoding)?;
        let bytes: [u8; CURSOR_LEN] = bytes.try_into().map_err(|_| CursorError::Format)?;
        if bytes[0] != VERSION {
            return Err(CursorError::Format);
        }
        let mut mac = self.key.clone();
        mac.update(user_id.as_uuid().as_bytes());
        mac.update(&bytes[..BODY_LEN]);
        mac.verify_truncated_left(&bytes[BODY_LEN..])
            .map_err(|_| CursorError::Signature)?;
        let micros = i64::from_be_bytes(bytes[1..9].try_into().map_err(|_| CursorError::Format)?);
        let id = Uuid::from_slice(&bytes[9..BODY_LEN]).map_err(|_| CursorError::Format)?;
        // A valid signature only proves the key was known, and the built-in
        // key is public: a date Postgres cannot hold (before 4713 BC) would
        // fail the query with a 500. Accept what a stored row can have.
        let txn_date = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
            .ok()
            .filter(|at| (EARLIEST..=LATEST).contains(at))
            .ok_or(CursorError::Range)?;
        Ok(Position {
            txn_date,
            id: TransactionId(id),
        })
    }

    fn mac(&self, user_id: UserId, body: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.key.clone();
        mac.update(user_id.as_uuid().as_bytes());
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut truncated = [0u8; MAC_LEN];
        truncated.copy_from_slice(&full[..MAC_LEN]);
        truncated
    }
}

fn body(position: &Position) -> [u8; BODY_LEN] {
    // Postgres keeps microseconds, so nothing finer is needed to resume.
    let micros = (position.txn_date.unix_timestamp_nanos() / 1000) as i64;
    let mut bytes = [0u8; BODY_LEN];
    bytes[0] = VERSION;
    bytes[1..9].copy_from_slice(&micros.to_be_bytes());
    bytes[9..].copy_from_slice(position.id.as_uuid().as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn position() -> Position {
        Position {
            txn_date: datetime!(2026-02-03 04:05:06.789012 UTC),
            id: TransactionId(Uuid::from_u128(0x1234)),
        }
    }

    fn user(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }

    #[test]
    fn a_cursor_decodes_to_the_position_it_was_made_from() {
        let codec = CursorCodec::new(b"secret");
        let cursor = codec.encode(user(1), &position());
        assert_eq!(codec.decode(user(1), &cursor), Ok(position()));
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn foreign_altered_or_garbled_cursors_are_rejected() {
        let codec = CursorCodec::new(b"secret");
        let cursor = codec.encode(user(1), &position());
        let check = |text: &str, want: CursorError| {
            assert_eq!(codec.decode(user(1), text), Err(want), "cursor {text:?}");
        };
        check("abc", CursorError::Format);
        check("!!!", CursorError::Encoding);
        check(&URL_SAFE_NO_PAD.encode(b"hello world"), CursorError::Format);
        let mut flipped = URL_SAFE_NO_PAD.decode(&cursor).expect("ours");
        flipped[5] ^= 1;
        check(&URL_SAFE_NO_PAD.encode(&flipped), CursorError::Signature);
        let mut version = URL_SAFE_NO_PAD.decode(&cursor).expect("ours");
        version[0] = 9;
        check(&URL_SAFE_NO_PAD.encode(&version), CursorError::Format);
        assert_eq!(codec.decode(user(2), &cursor), Err(CursorError::Signature));
        // Signed with the right key, but a date no row can have.
        for micros in [
            i64::MIN,
            i64::MAX,
            -200_000_000_000_000_000,
            253_402_300_800_000_000,
        ] {
            let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).expect("ours");
            bytes[1..9].copy_from_slice(&micros.to_be_bytes());
            let mac = codec.mac(user(1), &bytes[..BODY_LEN]);
            bytes[BODY_LEN..].copy_from_slice(&mac);
            check(&URL_SAFE_NO_PAD.encode(&bytes), CursorError::Range);
        }
        assert_eq!(
            CursorCodec::new(b"other").decode(user(1), &cursor),
            Err(CursorError::Signature)
        );
    }
}
