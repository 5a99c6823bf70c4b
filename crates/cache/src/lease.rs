//! Simulation leases: which server process simulates a user's transactions.
//!
//! A lease is a string key per user at [`Keys::lease`] holding the holder's
//! name, expiring after a TTL unless the holder renews it. Only the holder
//! simulates the user, so several processes can share the work without two
//! of them inventing transactions for the same user. A holder that dies
//! stops renewing, and its users go to whoever asks next once the TTL runs
//! out.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{Script, Value};
use txwatch_domain::UserId;

use crate::error::CacheError;
use crate::expiry::ttl_millis;
use crate::keys::Keys;
use crate::pool::{Held, RedisPool};
use crate::script::eval_many;

/// What [`CacheError::CorruptEntry`] says a lease key should be.
const KIND: &str = "string";

/// KEYS[1]: the lease. ARGV: holder, ttl in ms. Replies 1 when the holder has
/// the lease (taken or renewed), 0 when someone else does.
const ACQUIRE_SCRIPT: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// KEYS[1]: the lease. ARGV: holder. Deletes the lease if the holder has it.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The scripts with their hashes, made once.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_SCRIPT));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_SCRIPT));

/// Takes, renews and gives back users' simulation leases; cheap to clone.
#[derive(Clone)]
pub struct Leases {
    pool: RedisPool,
    keys: Keys,
    ttl_ms: u64,
}

impl Leases {
    /// Leases that last `ttl` (at least a millisecond) unless renewed.
    pub fn new(pool: RedisPool, keys: Keys, ttl: Duration) -> Leases {
        Leases {
            pool,
            keys,
            ttl_ms: ttl_millis(ttl),
        }
    }

    /// For each of `users`, whether `holder` has its lease now: taken if it
    /// was free, renewed for another TTL if `holder` already had it, refused
    /// if another holder has it. One round trip, none for no users.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when a lease key holds something other
    /// than a string, [`CacheError::Unavailable`] when Redis cannot be
    /// reached in time, [`CacheError::Command`] for other Redis errors.
    pub async fn acquire_or_renew(
        &self,
        users: &[UserId],
        holder: &str,
    ) -> Result<Vec<bool>, CacheError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut held = Held::get(&self.pool).await?;
        let replies = eval_many(held.connection(), &ACQUIRE, users.len(), |index, cmd| {
            cmd.arg(1)
                .arg(self.keys.lease(users[index]))
                .arg(holder)
                .arg(self.ttl_ms);
        })
        .await;
        let replies = held.settle(replies)?;
        replies
            .iter()
            .zip(users)
            .map(|(reply, &user_id)| match reply {
                Value::Int(1) => Ok(true),
                Value::Int(0) => Ok(false),
                other => Err(self.failed(user_id, other, "the lease script's reply")),
            })
            .collect()
    }

    /// Gives back the leases of `users` that `holder` has; those held by
    /// someone else stay as they are. One round trip, none for no users.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when a lease key holds something other
    /// than a string, [`CacheError::Unavailable`] when Redis cannot be
    /// reached in time, [`CacheError::Command`] for other Redis errors.
    pub async fn release(&self, users: &[UserId], holder: &str) -> Result<(), CacheError> {
        if users.is_empty() {
            return Ok(());
        }
        let mut held = Held::get(&self.pool).await?;
        let replies = eval_many(held.connection(), &RELEASE, users.len(), |index, cmd| {
            cmd.arg(1).arg(self.keys.lease(users[index])).arg(holder);
        })
        .await;
        let replies = held.settle(replies)?;
        for (reply, &user_id) in replies.iter().zip(users) {
            if !matches!(reply, Value::Int(_)) {
                return Err(self.failed(user_id, reply, "the release script's reply"));
            }
        }
        Ok(())
    }

    /// The error in a script's reply about `user_id`'s lease.
    fn failed(&self, user_id: UserId, reply: &Value, what: &'static str) -> CacheError {
        match reply {
            Value::ServerError(error) => {
                CacheError::at_key(error.clone().into(), &self.keys.lease(user_id), KIND)
            }
            other => CacheError::unexpected_reply(what, other),
        }
    }
}

// By hand: the pool's own `Debug` is long and says nothing useful here.
impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("keys", &self.keys)
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}
