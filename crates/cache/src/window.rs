//! Each user's window of recent amounts, as a Redis list.
//!
//! Encoding: one list per user at [`Keys::window`], oldest amount first, each
//! entry the amount's decimal string with two places (`"271.62"`), never a
//! float.

use deadpool_redis::redis;
use txwatch_domain::{Amount, UserId};

use crate::error::CacheError;
use crate::keys::Keys;
use crate::pool::RedisPool;

/// Reads and writes users' windows; cheap to clone.
#[derive(Clone)]
pub struct WindowStore {
    pool: RedisPool,
    keys: Keys,
    capacity: usize,
}

impl WindowStore {
    /// A store keeping at most `capacity` amounts (at least one) per user.
    pub fn new(pool: RedisPool, keys: Keys, capacity: usize) -> WindowStore {
        WindowStore {
            pool,
            keys,
            capacity: capacity.max(1),
        }
    }

    /// Most amounts kept per user.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Replaces the user's window with `amounts` (oldest first), keeping only
    /// the newest [`capacity`](Self::capacity) of them. Readers see either the
    /// old window or the new one, never a mix: this is how the seeder warms
    /// windows and how a lost window is rebuilt from history.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when Redis cannot be reached in time,
    /// [`CacheError::Command`] when Redis rejects the commands.
    pub async fn replace(&self, user_id: UserId, amounts: &[Amount]) -> Result<(), CacheError> {
        let key = self.keys.window(user_id);
        let newest = &amounts[amounts.len().saturating_sub(self.capacity)..];
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        if !newest.is_empty() {
            let entries: Vec<String> = newest.iter().map(Amount::to_string).collect();
            pipe.rpush(&key, entries).ignore();
        }
        let mut connection = self.pool.get().await?;
        pipe.query_async::<()>(&mut connection).await?;
        Ok(())
    }

    /// The user's window, oldest first: its newest
    /// [`capacity`](Self::capacity) amounts, or none for a user never seen
    /// (or whose window Redis lost).
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when an entry is not an amount or the key
    /// is not a list, [`CacheError::Unavailable`] when Redis cannot be reached
    /// in time, [`CacheError::Command`] for other Redis errors.
    pub async fn read(&self, user_id: UserId) -> Result<Vec<Amount>, CacheError> {
        let key = self.keys.window(user_id);
        // A larger capacity than `isize` can count is the whole list anyway.
        let first = isize::try_from(self.capacity).map_or(0, |capacity| -capacity);
        let mut connection = self.pool.get().await?;
        let entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(first)
            .arg(-1)
            .query_async(&mut connection)
            .await
            .map_err(|error| match error.code() {
                Some("WRONGTYPE") => CacheError::CorruptEntry {
                    key: key.clone(),
                    reason: "the key does not hold a list".to_owned(),
                },
                _ => CacheError::from(error),
            })?;
        entries.iter().map(|entry| decode(&key, entry)).collect()
    }
}

// By hand: the pool's own `Debug` is long and says nothing useful here.
impl std::fmt::Debug for WindowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowStore")
            .field("keys", &self.keys)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn decode(key: &str, entry: &[u8]) -> Result<Amount, CacheError> {
    let corrupt = |reason: String| CacheError::CorruptEntry {
        key: key.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(entry)
        .map_err(|_| corrupt(format!("`{}` is not text", entry.escape_ascii())))?;
    text.parse()
        .map_err(|error: txwatch_domain::AmountError| corrupt(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_as_exact_amounts() {
        let amount = decode("k", b"271.62").expect("an amount");
        assert_eq!(amount.to_string(), "271.62");
    }

    #[test]
    fn entries_that_are_not_amounts_are_corrupt() {
        for (entry, reason) in [
            (&b"lots"[..], "`lots` is not a decimal number"),
            (&b"1.234"[..], "`1.234` has more than two decimal places"),
            (&b"\xff"[..], r"`\xff` is not text"),
        ] {
            match decode("txwatch:window:{u}", entry) {
                Err(CacheError::CorruptEntry { key, reason: got }) => {
                    assert_eq!(key, "txwatch:window:{u}");
                    assert_eq!(got, reason);
                }
                other => panic!("{entry:?}: expected CorruptEntry, got {other:?}"),
            }
        }
    }
}
