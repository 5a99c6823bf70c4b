//! Each user's window of recent transactions, as a Redis sorted set.
//!
//! A window is always the user's latest `capacity` transactions in the order
//! of PostgreSQL's history index, `(txn_date, amount, id)`, whatever order
//! they arrive in. That is what makes the cache and the database agree: a
//! window rebuilt from history equals the one built live.
//!
//! Encoding: one sorted set per user at [`Keys::window`], where each
//! transaction is
//! - scored by its `txn_date` in whole microseconds since the Unix epoch
//!   (PostgreSQL's precision; anything finer is dropped, rounding down),
//!   written as an integer. A double holds that exactly until 2^53 µs, around
//!   the year 2255.
//! - named by its amount in cents as 20 digits, `:`, and its id as a
//!   lowercase hyphenated UUID:
//!   `00000000000000027162:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f`. A negative
//!   amount is `-` and then 10^20 plus its cents as 20 digits (ten's
//!   complement: -0.01 is `-99999999999999999999`).
//!
//! Redis orders members of equal score bytewise, and this naming makes that
//! the order of amounts and then of ids: the width is fixed, `-` sorts before
//! any digit, the complement puts larger debts first, and hyphenated hex
//! sorts like the UUID's bytes (PostgreSQL's `uuid` order).
//!
//! Every write also sets the key to expire after an idle TTL, so users who
//! stop trading do not hold memory forever; a lost window is
//! [`Step::Missing`] and is rebuilt from history.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{self, Script, Value};
use time::OffsetDateTime;
use txwatch_domain::{Amount, TransactionId, UserId, WindowEntry};

use crate::error::CacheError;
use crate::expiry::ttl_millis;
use crate::keys::Keys;
use crate::pool::RedisPool;
use crate::script::eval_many;

/// What [`CacheError::CorruptEntry`] says a window key should be.
const KIND: &str = "sorted set";

/// Digits of the amount part of a member.
const AMOUNT_DIGITS: usize = 20;

/// Offset of negative amounts' ten's complement.
const TEN_POW_20: i128 = 100_000_000_000_000_000_000;

/// Length of a hyphenated UUID.
const ID_LEN: usize = 36;

/// The atomic step: see [`WindowStore::step`]. Replies `{0}` (missing),
/// `{2}` (duplicate) or `{1, previous}` (pushed), `previous` oldest first.
const STEP_SCRIPT: &str = r"
-- KEYS[1]: the window. ARGV: capacity, idle ttl in ms, score, member, id,
-- rebuild flag ('1' or '0'), then score, member pairs to rebuild from.
-- Every call counts: this runs for every transaction.
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
-- A sorted set is never empty: no members means no window.
local previous = redis.call('ZRANGE', key, 0, -1)
if #previous == 0 then
  if ARGV[6] ~= '1' then
    return {0}
  end
  if #ARGV > 6 then
    -- In chunks, to stay well inside Lua's limit on unpacked values.
    local chunk = {}
    for i = 7, #ARGV do
      chunk[#chunk + 1] = ARGV[i]
      if #chunk == 1000 then
        redis.call('ZADD', key, unpack(chunk))
        chunk = {}
      end
    end
    if #chunk > 0 then
      redis.call('ZADD', key, unpack(chunk))
    end
    redis.call('ZREMRANGEBYRANK', key, 0, -(capacity + 1))
    redis.call('PEXPIRE', key, ARGV[2])
    previous = redis.call('ZRANGE', key, 0, -1)
  end
end
-- Members end with the 36-character id: compare in place, without
-- building substrings.
local id = ARGV[5]
for i = 1, #previous do
  if string.find(previous[i], id, -36, true) then
    return {2}
  end
end
redis.call('ZADD', key, ARGV[3], ARGV[4])
if #previous >= capacity then
  redis.call('ZREMRANGEBYRANK', key, 0, -(capacity + 1))
end
redis.call('PEXPIRE', key, ARGV[2])
if #previous > capacity then
  -- Written with a larger capacity: report only what this one keeps.
  local latest = {}
  for i = #previous - capacity + 1, #previous do
    latest[#latest + 1] = previous[i]
  end
  previous = latest
end
return {1, previous}
";

/// [`STEP_SCRIPT`] with its hash, made once.
static STEP: LazyLock<Script> = LazyLock::new(|| Script::new(STEP_SCRIPT));

/// One transaction to put through a user's window.
#[derive(Debug, Clone, Copy)]
pub struct StepRequest<'a> {
    /// Whose window.
    pub user_id: UserId,
    /// The transaction.
    pub entry: WindowEntry,
    /// The user's history, in any order, to build the window from when Redis
    /// has none: `None` the first time, which answers [`Step::Missing`] if
    /// the window is gone; then the history fetched from the database (only
    /// the latest `capacity` matter; `Some(&[])` for a user without any).
    /// Ignored when the window exists, as when another process rebuilt it
    /// meanwhile.
    pub rebuild: Option<&'a [WindowEntry]>,
}

/// What putting a transaction through a window found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The transaction joined the window, which now holds the latest
    /// `capacity` transactions (possibly without it, when it is older than
    /// all of a full window).
    Pushed {
        /// The amounts the window held just before, oldest first: the history
        /// to judge the transaction against.
        previous: Vec<Amount>,
    },
    /// The window already holds a transaction with this id; nothing changed.
    /// An id that has left the window is not recognised: the database is the
    /// authority on duplicates.
    Duplicate,
    /// Redis has no window for the user (never built, expired or forgotten)
    /// and the request carried no history: fetch it and step again with
    /// [`StepRequest::rebuild`].
    Missing,
}

/// Reads and writes users' windows; cheap to clone.
#[derive(Clone)]
pub struct WindowStore {
    pool: RedisPool,
    keys: Keys,
    capacity: usize,
    idle_ttl_ms: u64,
}

impl WindowStore {
    /// A store keeping at most `capacity` transactions (at least one) per
    /// user, each window expiring `idle_ttl` (at least a millisecond) after
    /// its last write.
    pub fn new(pool: RedisPool, keys: Keys, capacity: usize, idle_ttl: Duration) -> WindowStore {
        WindowStore {
            pool,
            keys,
            capacity: capacity.max(1),
            idle_ttl_ms: ttl_millis(idle_ttl),
        }
    }

    /// Most transactions kept per user.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Replaces the user's window with the latest [`capacity`](Self::capacity)
    /// of `entries` (in any order) and restarts its idle TTL; no entries
    /// delete it. Readers see either the old window or the new one, never a
    /// mix: this is how the seeder warms windows.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when Redis cannot be reached in time,
    /// [`CacheError::Command`] when Redis rejects the commands.
    pub async fn replace(
        &self,
        user_id: UserId,
        entries: &[WindowEntry],
    ) -> Result<(), CacheError> {
        let key = self.keys.window(user_id);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        if !entries.is_empty() {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&key);
            for entry in entries {
                zadd.arg(score(entry.txn_date)).arg(member(entry));
            }
            pipe.add_command(zadd).ignore();
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(&key)
                .arg(0)
                .arg(self.trim_rank())
                .ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(self.idle_ttl_ms).ignore();
        }
        let mut connection = self.pool.get().await?;
        pipe.query_async::<()>(&mut connection)
            .await
            .map_err(|error| CacheError::at_key(error, &key, KIND))?;
        Ok(())
    }

    /// The user's window, oldest first: their latest
    /// [`capacity`](Self::capacity) transactions, or none when Redis has no
    /// window for them.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when an entry is not one this store wrote
    /// or the key is not a sorted set, [`CacheError::Unavailable`] when Redis
    /// cannot be reached in time, [`CacheError::Command`] for other Redis
    /// errors.
    pub async fn read(&self, user_id: UserId) -> Result<Vec<WindowEntry>, CacheError> {
        let key = self.keys.window(user_id);
        // A capacity larger than `i64` can count is the whole set anyway.
        let first = i64::try_from(self.capacity).map_or(0, |capacity| -capacity);
        let mut connection = self.pool.get().await?;
        let reply: Value = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(first)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
            .map_err(|error| CacheError::at_key(error, &key, KIND))?;
        let items = match &reply {
            Value::Array(items) => items,
            other => {
                return Err(CacheError::unexpected_reply(
                    "ZRANGE must answer a list",
                    other,
                ));
            }
        };
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut items = items.iter();
        while let Some(item) = items.next() {
            // RESP2 answers a flat list of members and scores, RESP3 pairs.
            let (member, score) = match item {
                Value::Array(pair) if pair.len() == 2 => (&pair[0], &pair[1]),
                member => match items.next() {
                    Some(score) => (member, score),
                    None => {
                        return Err(CacheError::unexpected_reply(
                            "ZRANGE WITHSCORES must answer a score with each member",
                            &reply,
                        ));
                    }
                },
            };
            let (amount, id) = decode_member(&key, member)?;
            let txn_date = decode_score(&key, score)?;
            entries.push(WindowEntry {
                id,
                txn_date,
                amount,
            });
        }
        Ok(entries)
    }

    /// Deletes the windows of `users`, in one round trip (none for no
    /// users): for when the database did not take their transactions, so the
    /// windows are rebuilt from what it holds.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when Redis cannot be reached in time,
    /// [`CacheError::Command`] when Redis rejects the commands.
    pub async fn forget(&self, users: &[UserId]) -> Result<(), CacheError> {
        if users.is_empty() {
            return Ok(());
        }
        // One `DEL` per key rather than one for all: on a Redis Cluster the
        // users' keys live in different slots.
        let mut pipe = redis::Pipeline::with_capacity(users.len());
        for &user_id in users {
            pipe.del(self.keys.window(user_id)).ignore();
        }
        let mut connection = self.pool.get().await?;
        pipe.query_async::<()>(&mut connection).await?;
        Ok(())
    }

    /// Takes back pushes whose transactions were not stored because their
    /// ids were stored already (a repeated id that had left the window, so
    /// the step could not recognise it). A push that was trimmed at once
    /// changed nothing; one still in the window is removed, and then that
    /// window is deleted too, since the push may have trimmed an older entry
    /// that only a rebuild from the database restores.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when Redis cannot be reached in time,
    /// [`CacheError::Command`] when Redis rejects the commands.
    pub async fn withdraw(&self, pushes: &[(UserId, WindowEntry)]) -> Result<(), CacheError> {
        if pushes.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::Pipeline::with_capacity(pushes.len());
        for (user_id, entry) in pushes {
            pipe.zrem(self.keys.window(*user_id), member(entry));
        }
        let mut connection = self.pool.get().await?;
        let removed: Vec<i64> = pipe.query_async(&mut connection).await?;
        let touched: Vec<UserId> = pushes
            .iter()
            .zip(removed)
            .filter(|(_, removed)| *removed > 0)
            .map(|((user_id, _), _)| *user_id)
            .collect();
        drop(connection);
        self.forget(&touched).await
    }

    /// Puts one transaction through its user's window, atomically: see
    /// [`step_many`](Self::step_many).
    ///
    /// # Errors
    /// As [`step_many`](Self::step_many).
    pub async fn step(&self, request: &StepRequest<'_>) -> Result<Step, CacheError> {
        let mut steps = self.step_many(std::slice::from_ref(request)).await?;
        match steps.pop() {
            Some(step) if steps.is_empty() => Ok(step),
            _ => Err(CacheError::unexpected_reply(
                "one step must give one answer",
                &Value::Nil,
            )),
        }
    }

    /// Puts transactions through their users' windows in one round trip,
    /// answering for each in order.
    ///
    /// Each step is one atomic script in Redis: if the window is missing it
    /// is rebuilt from [`StepRequest::rebuild`] (or the answer is
    /// [`Step::Missing`]); if it holds the id the answer is
    /// [`Step::Duplicate`]; otherwise the transaction joins the window, which
    /// keeps its latest [`capacity`](Self::capacity) transactions and
    /// restarts its idle TTL, and the answer is [`Step::Pushed`] with what it
    /// held before. The steps are a pipeline, not a transaction: Redis runs
    /// them in the given order, so several steps of one user see each other,
    /// but other clients' commands may come between them.
    ///
    /// Only the script's hash is sent; if Redis has lost the script (a
    /// restart), it is loaded and the refused steps sent again, once.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when a window key holds something this
    /// store did not write, [`CacheError::Unavailable`] when Redis cannot be
    /// reached in time (the steps may or may not have run),
    /// [`CacheError::Command`] for other Redis errors. One failed step fails
    /// the call, though the other steps have run.
    pub async fn step_many(&self, requests: &[StepRequest<'_>]) -> Result<Vec<Step>, CacheError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.pool.get().await?;
        let replies = eval_many(&mut connection, &STEP, requests.len(), |index, cmd| {
            let request = &requests[index];
            let entry = &request.entry;
            cmd.arg(1)
                .arg(self.keys.window(request.user_id))
                .arg(self.capacity)
                .arg(self.idle_ttl_ms)
                .arg(score(entry.txn_date))
                .arg(member(entry))
                .arg(entry.id.to_string())
                .arg(if request.rebuild.is_some() { "1" } else { "0" });
            for old in request.rebuild.unwrap_or_default() {
                cmd.arg(score(old.txn_date)).arg(member(old));
            }
        })
        .await?;
        replies
            .iter()
            .zip(requests)
            .map(|(reply, request)| self.decode_step(request.user_id, reply))
            .collect()
    }

    /// The rank `ZREMRANGEBYRANK key 0 <rank>` trims down to capacity with.
    fn trim_rank(&self) -> i64 {
        i64::try_from(self.capacity).map_or(i64::MIN, |capacity| -1 - capacity)
    }

    fn decode_step(&self, user_id: UserId, reply: &Value) -> Result<Step, CacheError> {
        let unexpected = || CacheError::unexpected_reply("the step script's reply", reply);
        let items = match reply {
            Value::Array(items) => items,
            Value::ServerError(error) => {
                return Err(CacheError::at_key(
                    error.clone().into(),
                    &self.keys.window(user_id),
                    KIND,
                ));
            }
            _ => return Err(unexpected()),
        };
        match items.as_slice() {
            [Value::Int(0)] => Ok(Step::Missing),
            [Value::Int(2)] => Ok(Step::Duplicate),
            [Value::Int(1), Value::Array(previous)] => {
                let key = self.keys.window(user_id);
                let previous = previous
                    .iter()
                    .map(|member| decode_amount(&key, member))
                    .collect::<Result<_, _>>()?;
                Ok(Step::Pushed { previous })
            }
            _ => Err(unexpected()),
        }
    }
}

// By hand: the pool's own `Debug` is long and says nothing useful here.
impl std::fmt::Debug for WindowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowStore")
            .field("keys", &self.keys)
            .field("capacity", &self.capacity)
            .field("idle_ttl_ms", &self.idle_ttl_ms)
            .finish_non_exhaustive()
    }
}

/// A `txn_date` as a score: whole microseconds since the Unix epoch,
/// rounded down.
fn score(txn_date: OffsetDateTime) -> i128 {
    txn_date.unix_timestamp_nanos().div_euclid(1_000)
}

/// The member naming a transaction: its amount, then its id.
fn member(entry: &WindowEntry) -> String {
    let cents = cents(entry.amount);
    if cents < 0 {
        format!("-{:020}:{}", TEN_POW_20 + cents, entry.id)
    } else {
        format!("{cents:020}:{}", entry.id)
    }
}

/// The amount as a whole number of cents.
fn cents(amount: Amount) -> i128 {
    let mut decimal = amount.as_decimal();
    // Amounts always have two places; rescaling makes sure of it for free.
    decimal.rescale(Amount::SCALE);
    decimal.mantissa()
}

/// The amount and id in a member.
fn decode_member(key: &str, member: &Value) -> Result<(Amount, TransactionId), CacheError> {
    let bytes = member_bytes(key, member)?;
    let (amount, id) = split_member(bytes).ok_or_else(|| not_a_member(key, bytes))?;
    let amount = parse_amount(amount).ok_or_else(|| not_a_member(key, bytes))?;
    let id = std::str::from_utf8(id)
        .ok()
        .filter(|id| id.len() == ID_LEN)
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| not_a_member(key, bytes))?;
    Ok((amount, id))
}

/// Only the amount in a member.
fn decode_amount(key: &str, member: &Value) -> Result<Amount, CacheError> {
    let bytes = member_bytes(key, member)?;
    split_member(bytes)
        .and_then(|(amount, _)| parse_amount(amount))
        .ok_or_else(|| not_a_member(key, bytes))
}

fn member_bytes<'v>(key: &str, member: &'v Value) -> Result<&'v [u8], CacheError> {
    match member {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) => Ok(text.as_bytes()),
        other => Err(CacheError::CorruptEntry {
            key: key.to_owned(),
            reason: format!("a member is not a string: {other:?}"),
        }),
    }
}

/// The amount and id parts of a member, split at the `:`.
fn split_member(member: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = member.iter().position(|&byte| byte == b':')?;
    Some((&member[..colon], &member[colon + 1..]))
}

/// An amount written as 20 digits of cents, or `-` and their complement.
fn parse_amount(text: &[u8]) -> Option<Amount> {
    let cents = match text {
        [b'-', digits @ ..] => parse_digits(digits)? - TEN_POW_20,
        digits => parse_digits(digits)?,
    };
    Amount::from_cents(cents).ok()
}

/// Exactly [`AMOUNT_DIGITS`] decimal digits.
fn parse_digits(digits: &[u8]) -> Option<i128> {
    if digits.len() != AMOUNT_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0, |value, digit| value * 10 + i128::from(digit - b'0')),
    )
}

fn not_a_member(key: &str, member: &[u8]) -> CacheError {
    CacheError::CorruptEntry {
        key: key.to_owned(),
        reason: format!(
            "`{}` is not `<20-digit cents>:<uuid>`",
            member.escape_ascii()
        ),
    }
}

/// A score back as the `txn_date` it was made from.
fn decode_score(key: &str, score: &Value) -> Result<OffsetDateTime, CacheError> {
    let corrupt = || CacheError::CorruptEntry {
        key: key.to_owned(),
        reason: format!("the score {score:?} is not a time in microseconds"),
    };
    let micros = match score {
        Value::BulkString(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| corrupt())?;
            // Redis writes whole scores as integers; anything else would be
            // a double, exact only where it is whole.
            match text.parse::<i128>() {
                Ok(micros) => micros,
                Err(_) => whole(text.parse::<f64>().map_err(|_| corrupt())?).ok_or_else(corrupt)?,
            }
        }
        Value::Double(value) => whole(*value).ok_or_else(corrupt)?,
        Value::Int(micros) => i128::from(*micros),
        _ => return Err(corrupt()),
    };
    micros
        .checked_mul(1_000)
        .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
        .ok_or_else(corrupt)
}

/// A double that is a whole number within `i64`'s range, as an integer.
fn whole(value: f64) -> Option<i128> {
    // `as` saturates, so the round trip only holds for whole, finite values
    // in range.
    let integer = value as i64;
    let back = integer as f64;
    (back == value && value.abs() < 9.0e18).then_some(i128::from(integer))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;

    const ID: TransactionId =
        TransactionId(Uuid::from_u128(0x0191_2c3a_7b4e_7c1d_8e2f_3a4b_5c6d_7e8f));

    fn entry(amount: &str) -> WindowEntry {
        WindowEntry {
            id: ID,
            txn_date: datetime!(2024-09-10 12:00:00.123456 UTC),
            amount: amount.parse().expect("fixture amounts are valid"),
        }
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn a_member_is_twenty_digits_of_cents_a_colon_and_the_hyphenated_id() {
        assert_eq!(
            member(&entry("271.62")),
            "00000000000000027162:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f"
        );
        assert_eq!(
            member(&entry("0")),
            "00000000000000000000:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f"
        );
        assert_eq!(
            member(&entry("999999999999999999.99")),
            "99999999999999999999:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f"
        );
    }

    #[test]
    fn a_negative_amount_is_a_minus_and_the_complement_of_its_cents() {
        assert_eq!(
            member(&entry("-0.01")),
            "-99999999999999999999:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f"
        );
        assert_eq!(
            member(&entry("-999999999999999999.99")),
            "-00000000000000000001:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f"
        );
    }

    #[test]
    fn members_sort_bytewise_in_the_order_of_their_amounts() {
        let amounts = [
            "-999999999999999999.99",
            "-271.62",
            "-2.00",
            "-1.00",
            "-0.01",
            "0",
            "0.01",
            "9.99",
            "10.00",
            "271.62",
            "999999999999999999.99",
        ];
        let members: Vec<String> = amounts
            .iter()
            .map(|amount| member(&entry(amount)))
            .collect();
        let mut sorted = members.clone();
        sorted.sort();
        assert_eq!(sorted, members);
    }

    #[test]
    fn members_decode_to_the_amount_and_id_they_were_made_from() {
        for amount in [
            "271.62",
            "0",
            "-0.01",
            "-271.62",
            "999999999999999999.99",
            "-999999999999999999.99",
        ] {
            let entry = entry(amount);
            let (decoded, id) = decode_member("k", &bulk(&member(&entry))).expect("a member");
            assert_eq!((decoded, id), (entry.amount, entry.id), "{amount}");
            assert_eq!(
                decode_amount("k", &bulk(&member(&entry))).expect("an amount"),
                entry.amount
            );
        }
    }

    #[test]
    fn members_this_store_did_not_write_are_corrupt() {
        for text in [
            "271.62",
            "27162:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f",
            "0000000000000002716x:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f",
            "-00000000000000000000:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f",
            "+0000000000000027162:01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f",
            "00000000000000027162:01912c3a7b4e7c1d8e2f3a4b5c6d7e8f",
            "00000000000000027162:not-a-uuid",
        ] {
            match decode_member("txwatch:window:{u}", &bulk(text)) {
                Err(CacheError::CorruptEntry { key, reason }) => {
                    assert_eq!(key, "txwatch:window:{u}");
                    assert!(reason.contains(text), "{reason}");
                }
                other => panic!("{text}: expected CorruptEntry, got {other:?}"),
            }
        }
        assert!(matches!(
            decode_amount("k", &bulk("-00000000000000000000:x")),
            Err(CacheError::CorruptEntry { .. })
        ));
    }

    #[test]
    fn a_score_is_whole_microseconds_since_the_epoch_rounded_down() {
        assert_eq!(score(datetime!(1970-01-01 00:00:00 UTC)), 0);
        assert_eq!(
            score(datetime!(2024-09-10 12:00:00.123456789 UTC)),
            1_725_969_600_123_456
        );
        assert_eq!(score(datetime!(1969-12-31 23:59:59.9999995 UTC)), -1);
    }

    #[test]
    fn scores_decode_as_integers_or_whole_doubles() {
        let time = datetime!(2024-09-10 12:00:00.123456 UTC);
        for value in [
            bulk("1725969600123456"),
            bulk("1.725969600123456e15"),
            Value::Double(1_725_969_600_123_456.0),
            Value::Int(1_725_969_600_123_456),
        ] {
            assert_eq!(
                decode_score("k", &value).expect("a score"),
                time,
                "{value:?}"
            );
        }
        for value in [bulk("1.5"), bulk("inf"), bulk("later"), Value::Nil] {
            assert!(
                matches!(
                    decode_score("k", &value),
                    Err(CacheError::CorruptEntry { .. })
                ),
                "{value:?}"
            );
        }
    }
}
