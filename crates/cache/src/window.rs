//! Each user's window of recent transactions, as one packed Redis string.
//!
//! A window is always the user's latest `capacity` transactions in the order
//! of PostgreSQL's history index, `(txn_date, amount, id)`, whatever order
//! they arrive in. That is what makes the cache and the database agree: a
//! window rebuilt from history equals the one built live.
//!
//! Encoding: one binary string per user at [`Keys::window`]: a header (33
//! bytes of `0xff`, which marks the string as a valid window) and then
//! fixed-width 33-byte records, each
//! - 8 bytes: `txn_date` in whole microseconds since the Unix epoch
//!   (PostgreSQL's precision, rounded down), big-endian with the sign bit
//!   flipped,
//! - 9 bytes: the amount in cents plus 2^71, big-endian (|cents| < 2^67),
//! - 16 bytes: the id.
//!
//! Records have one width and sort bytewise in the history order: a larger
//! date, amount or id is a larger record. (A text form of the same layout
//! took 70 bytes; every step reads the whole window, so the binary form
//! halves what Redis sends and the server parses.)
//!
//! The string is an append log. A step is `MULTI; APPEND; GETEX PX; EXEC`
//! on the user's key: atomic, so concurrent steps (from any process) each
//! see every record appended before theirs (the string `GETEX` returns,
//! less the step's own record at its end), and the idle TTL restarts in the
//! same command that reads. The window is the newest
//! `capacity` distinct records of the string, which the reader works out
//! here, in Rust (sort, deduplicate, keep the newest). Once a string holds
//! twice `capacity` records, the step that sees it compacts it to the window
//! (a script that only replaces the part it read, so appends made meanwhile
//! are kept). The window a step reports is therefore exactly "the latest
//! `capacity` transactions", whatever order they arrived in, and an id
//! appended twice counts once.
//!
//! A step that finds no header (no key: never built, expired, evicted, Redis
//! restarted empty) reports [`Step::Missing`]; what it appended is not a
//! window and is replaced when the caller rebuilds from history (a script
//! that writes the history unless another process already did, then steps
//! again).
//!
//! Why not a sorted set, or a script: every transaction takes a step, and
//! Redis is single-threaded and shared by every server process, so its time
//! per step bounds the ingest rate. Measured with `INFO commandstats` under
//! `just bench-ingest` on the 2-core machine: a Lua script over a sorted set
//! cost 24 µs of Redis time per step (moving the members into Lua and back
//! dominates), a script over a sorted string about as much, a three-line
//! `GET`/`APPEND` script 13 µs, and a `MULTI; GET; APPEND; PEXPIRE; EXEC`
//! transaction about 5 µs (`EXEC` 4.6 µs with the commands inside). Folding
//! `GET` and `PEXPIRE` into one `GETEX` leaves four commands and four
//! replies per step instead of five, for Redis to run and the server to
//! parse.
//!
//! Every step, rebuild and compaction restarts the key's idle TTL, so users
//! who stop trading do not hold memory forever.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use crate::connection::Conn;
use deadpool_redis::redis::{self, Script, Value};
use time::OffsetDateTime;
use txwatch_domain::{Amount, Origin, TransactionId, UserId, WindowEntry};

use crate::error::CacheError;
use crate::expiry::ttl_millis;
use crate::keys::Keys;
use crate::pool::{Held, RedisPool};
use crate::script::eval_many;
use crate::shared::Shared;

/// What [`CacheError::CorruptEntry`] says a window key should be.
const KIND: &str = "string of window records";

/// Width of one record, and of its parts.
const RECORD: usize = 33;
const DATE_BYTES: usize = 8;
const AMOUNT_BYTES: usize = 9;
const ID_BYTES: usize = 16;
/// Where the id starts in a record.
const ID_AT: usize = DATE_BYTES + AMOUNT_BYTES;
const _: () = assert!(ID_AT + ID_BYTES == RECORD);

/// Added to cents so every amount is a positive number of 72 bits that
/// orders like the amount (|cents| < 10^20 < 2^67).
const AMOUNT_BIAS: i128 = 1 << 71;
/// The largest number of cents an amount has.
const MAX_CENTS: i128 = 99_999_999_999_999_999_999;

/// The header every valid window string starts with: one record's width of
/// `0xff`, which no record can equal (a date's first byte is `0x80` and a
/// little more for the next 290,000 years).
const HEADER: [u8; RECORD] = [0xff; RECORD];

/// Rebuilds a window from history (ARGV[1], header included) unless it is
/// valid already (another process rebuilt it first); sets the idle TTL
/// (ARGV[2]). Replies 1 when it rebuilt.
const REBUILD_SCRIPT: &str = r"
local window = redis.call('GET', KEYS[1])
if window and string.sub(window, 1, 33) == string.rep('\255', 33) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// [`REBUILD_SCRIPT`] with its hash, made once.
static REBUILD: LazyLock<Script> = LazyLock::new(|| Script::new(REBUILD_SCRIPT));

/// Compaction: replaces the start of the string, if it is still exactly
/// what was read (ARGV[1]), with the window it holds (ARGV[2]), keeping
/// whatever was appended after, and restarts the idle TTL (ARGV[3]).
/// Replies 1 when it did.
const COMPACT_SCRIPT: &str = r"
local window = redis.call('GET', KEYS[1])
if not window then
  return 0
end
local read = ARGV[1]
if string.sub(window, 1, #read) ~= read then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2] .. string.sub(window, #read + 1), 'PX', ARGV[3])
return 1
";

/// [`COMPACT_SCRIPT`] with its hash, made once.
static COMPACT: LazyLock<Script> = LazyLock::new(|| Script::new(COMPACT_SCRIPT));

/// Takes one copy of a record (ARGV[1]) out of the string; see
/// [`WindowStore::withdraw`]. Replies 1 when it did.
const WITHDRAW_SCRIPT: &str = r"
local window = redis.call('GET', KEYS[1])
if not window then
  return 0
end
local record = ARGV[1]
local at = string.find(window, record, 1, true)
while at do
  -- Only a whole record, not one straddling two.
  if (at - 1) % 33 == 0 then
    redis.call('SET', KEYS[1], string.sub(window, 1, at - 1) .. string.sub(window, at + 33), 'KEEPTTL')
    return 1
  end
  at = string.find(window, record, at + 1, true)
end
return 0
";

/// [`WITHDRAW_SCRIPT`] with its hash, made once.
static WITHDRAW: LazyLock<Script> = LazyLock::new(|| Script::new(WITHDRAW_SCRIPT));

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
        /// When each of them happened, in the same order, for detectors
        /// that learn daily and weekly rhythm; empty unless the store was
        /// asked for them ([`WindowStore::with_dates`]).
        dates: Vec<OffsetDateTime>,
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
    shared: Shared,
    keys: Keys,
    capacity: usize,
    idle_ttl_ms: u64,
    origin: Origin,
    dates: bool,
}

impl WindowStore {
    /// A store of users' windows of real transactions, keeping at most
    /// `capacity` transactions (at least one) per user, each window
    /// expiring `idle_ttl` (at least a millisecond) after its last write.
    pub fn new(pool: RedisPool, keys: Keys, capacity: usize, idle_ttl: Duration) -> WindowStore {
        WindowStore {
            shared: Shared::new(pool.clone()),
            pool,
            keys,
            capacity: capacity.max(1),
            idle_ttl_ms: ttl_millis(idle_ttl),
            origin: Origin::Real,
            dates: false,
        }
    }

    /// The same store, reporting with each [`Step::Pushed`] the dates of the
    /// previous transactions too (decoded from the records the step reads
    /// anyway; off by default, since most detectors use amounts only).
    pub fn with_dates(mut self, dates: bool) -> WindowStore {
        self.dates = dates;
        self
    }

    /// The same store over the windows of `origin`'s transactions
    /// ([`Keys::window`] or [`Keys::simulated_window`]): a user's simulated
    /// transactions are judged against a window of their own.
    pub fn with_origin(mut self, origin: Origin) -> WindowStore {
        self.origin = origin;
        self
    }

    /// Whose transactions this store's windows hold.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The key of `user_id`'s window of this store's origin.
    fn key(&self, user_id: UserId) -> String {
        match self.origin {
            Origin::Real => self.keys.window(user_id),
            Origin::Simulated => self.keys.simulated_window(user_id),
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
        let key = self.key(user_id);
        let mut held = Held::get(&self.pool).await?;
        let command = if entries.is_empty() {
            let mut del = redis::cmd("DEL");
            del.arg(&key);
            del
        } else {
            let mut set = redis::cmd("SET");
            set.arg(&key)
                .arg(self.pack(entries))
                .arg("PX")
                .arg(self.idle_ttl_ms);
            set
        };
        let reply = command.query_async::<()>(held.connection()).await;
        held.settle(reply)?;
        Ok(())
    }

    /// The user's window, oldest first: their latest
    /// [`capacity`](Self::capacity) transactions, or none when Redis has no
    /// window for them.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when the key holds something this store
    /// did not write, [`CacheError::Unavailable`] when Redis cannot be
    /// reached in time, [`CacheError::Command`] for other Redis errors.
    pub async fn read(&self, user_id: UserId) -> Result<Vec<WindowEntry>, CacheError> {
        let key = self.key(user_id);
        let mut held = Held::get(&self.pool).await?;
        let reply = redis::cmd("GET")
            .arg(&key)
            .query_async(held.connection())
            .await;
        let reply: Option<Vec<u8>> = held
            .settle(reply)
            .map_err(|error| CacheError::at_key(error, &key, KIND))?;
        let Some(window) = reply else {
            return Ok(Vec::new());
        };
        // A string without the header is what steps left on a missing
        // window: no window.
        let Some(records) = window.strip_prefix(&HEADER[..]) else {
            return Ok(Vec::new());
        };
        self.window_of(&key, records)?
            .iter()
            .map(|record| decode_record(&key, &record[..]))
            .collect()
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
            pipe.del(self.key(user_id)).ignore();
        }
        let mut held = Held::get(&self.pool).await?;
        let reply = pipe.query_async::<()>(held.connection()).await;
        held.settle(reply)?;
        Ok(())
    }

    /// Takes back pushes whose transactions were not stored because their
    /// ids were stored already (a repeated id that had left the window, so
    /// the step could not recognise it): one copy of each pushed record
    /// leaves its user's string, which is then as if the push never
    /// happened (a compaction since may have let it push an older record
    /// out of the window; the window then holds one fewer until the user's
    /// next transactions, never a wrong one).
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when Redis cannot be reached in time,
    /// [`CacheError::Command`] when Redis rejects the commands.
    pub async fn withdraw(&self, pushes: &[(UserId, WindowEntry)]) -> Result<(), CacheError> {
        if pushes.is_empty() {
            return Ok(());
        }
        let mut held = Held::get(&self.pool).await?;
        let replies = eval_many(held.connection(), &WITHDRAW, pushes.len(), |index, cmd| {
            let (user_id, entry) = &pushes[index];
            cmd.arg(1).arg(self.key(*user_id)).arg(&record(entry)[..]);
        })
        .await;
        let replies = held.settle(replies)?;
        for (reply, (user_id, _)) in replies.iter().zip(pushes) {
            if let Value::ServerError(error) = reply {
                return Err(CacheError::at_key(
                    error.clone().into(),
                    &self.key(*user_id),
                    KIND,
                ));
            }
        }
        Ok(())
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
        // A round holds at most `capacity` steps of one user, so no window
        // string grows past three times its capacity before the compactions
        // that end the round. Usually (many users) there is one round.
        let mut seen: HashMap<UserId, usize> = HashMap::new();
        let rounds: Vec<usize> = requests
            .iter()
            .map(|request| {
                let count = seen.entry(request.user_id).or_insert(0);
                *count += 1;
                (*count - 1) / self.capacity
            })
            .collect();
        let last_round = rounds.iter().copied().max().unwrap_or(0);
        let rounds = &rounds;
        self.shared
            .run(|mut connection| async move {
                self.step_rounds(&mut connection, requests, rounds, last_round)
                    .await
            })
            .await
    }

    /// Every round, in order.
    async fn step_rounds(
        &self,
        connection: &mut Conn,
        requests: &[StepRequest<'_>],
        rounds: &[usize],
        last_round: usize,
    ) -> Result<Vec<Step>, CacheError> {
        if last_round == 0 {
            return self.step_round(connection, requests).await;
        }
        let mut steps: Vec<Option<Step>> = vec![None; requests.len()];
        for round in 0..=last_round {
            let indices: Vec<usize> = (0..requests.len())
                .filter(|&i| rounds[i] == round)
                .collect();
            let batch: Vec<StepRequest<'_>> = indices.iter().map(|&i| requests[i]).collect();
            let done = self.step_round(connection, &batch).await?;
            for (i, step) in indices.into_iter().zip(done) {
                steps[i] = Some(step);
            }
        }
        Ok(steps
            .into_iter()
            .map(|step| step.expect("every request belongs to a round"))
            .collect())
    }

    /// One pipeline of steps, then the compactions they call for.
    ///
    /// A step is `MULTI; APPEND; GETEX PX; EXEC` on the user's key:
    /// atomic, with no script (Lua would copy the window in and out, which
    /// costs Redis several times what the commands do). A window is valid
    /// when it starts with [`HEADER`]; a step that finds none reports
    /// [`Step::Missing`], and whatever it appended is discarded by the
    /// rebuild that follows (a script, run before the step when the request
    /// carries history).
    async fn step_round(
        &self,
        connection: &mut Conn,
        requests: &[StepRequest<'_>],
    ) -> Result<Vec<Step>, CacheError> {
        let rebuilds: Vec<(String, Vec<u8>)> = {
            let mut seen: Vec<UserId> = Vec::new();
            requests
                .iter()
                .filter_map(|request| {
                    let history = request.rebuild?;
                    if seen.contains(&request.user_id) {
                        return None;
                    }
                    seen.push(request.user_id);
                    Some((self.key(request.user_id), self.pack(history)))
                })
                .collect()
        };
        if !rebuilds.is_empty() {
            let replies = eval_many(connection, &REBUILD, rebuilds.len(), |index, cmd| {
                let (key, window) = &rebuilds[index];
                cmd.arg(1).arg(key).arg(&window[..]).arg(self.idle_ttl_ms);
            })
            .await?;
            for (reply, (key, _)) in replies.iter().zip(&rebuilds) {
                if let Value::ServerError(error) = reply {
                    return Err(CacheError::at_key(error.clone().into(), key, KIND));
                }
            }
        }

        let packed: Vec<[u8; RECORD]> = requests.iter().map(|r| record(&r.entry)).collect();
        let keys: Vec<String> = requests.iter().map(|r| self.key(r.user_id)).collect();
        let mut pipe = redis::Pipeline::with_capacity(requests.len() * 4);
        for (key, mine) in keys.iter().zip(&packed) {
            pipe.cmd("MULTI").ignore();
            pipe.cmd("APPEND").arg(key).arg(&mine[..]).ignore();
            pipe.cmd("GETEX")
                .arg(key)
                .arg("PX")
                .arg(self.idle_ttl_ms)
                .ignore();
            pipe.cmd("EXEC");
        }
        let replies: Vec<Value> = pipe.ignore_errors().query_async(connection).await?;
        if replies.len() != requests.len() {
            return Err(CacheError::unexpected_reply(
                "one EXEC reply per step",
                &Value::Int(replies.len() as i64),
            ));
        }

        let mut steps = Vec::with_capacity(requests.len());
        let mut compactions: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut conflicts: Vec<UserId> = Vec::new();
        for (((reply, request), mine), key) in replies.iter().zip(requests).zip(&packed).zip(&keys)
        {
            // `[APPEND's length, GETEX's string]`: the string as it is with
            // this record appended last, so what it held before is all but
            // its last record.
            let (read, window) = match reply {
                Value::Array(results) => match results.get(1) {
                    Some(Value::BulkString(read))
                        if read.ends_with(mine)
                            && read[..read.len() - RECORD].starts_with(&HEADER) =>
                    {
                        (read, &read[..read.len() - RECORD])
                    }
                    Some(Value::BulkString(_) | Value::Nil) => {
                        steps.push(Step::Missing);
                        continue;
                    }
                    Some(Value::ServerError(error)) => {
                        return Err(CacheError::at_key(error.clone().into(), key, KIND));
                    }
                    _ => {
                        return Err(CacheError::unexpected_reply("a step's GETEX", reply));
                    }
                },
                Value::ServerError(error) => {
                    return Err(CacheError::at_key(error.clone().into(), key, KIND));
                }
                _ => return Err(CacheError::unexpected_reply("a step's EXEC", reply)),
            };
            let records = self.window_of(key, &window[RECORD..])?;
            let id = &mine[ID_AT..];
            match records.iter().find(|record| &record[ID_AT..] == id) {
                Some(same) => {
                    if same != mine {
                        // The id came again with another date or amount,
                        // now appended too: let the window be rebuilt.
                        conflicts.push(request.user_id);
                    }
                    steps.push(Step::Duplicate);
                }
                None => steps.push(Step::Pushed {
                    previous: records
                        .iter()
                        .map(|record| decode_amount(key, &record[..]))
                        .collect::<Result<_, _>>()?,
                    dates: if self.dates {
                        records
                            .iter()
                            .map(|record| decode_date(key, &record[..]))
                            .collect::<Result<_, _>>()?
                    } else {
                        Vec::new()
                    },
                }),
            }
            if window.len() / RECORD >= 2 * self.capacity {
                let mut all: Vec<[u8; RECORD]> = records.clone();
                all.push(*mine);
                compactions.push((key.clone(), read.clone(), self.pack_records(all)));
            }
        }
        if !conflicts.is_empty() {
            let mut pipe = redis::Pipeline::new();
            for user_id in &conflicts {
                pipe.del(self.key(*user_id)).ignore();
            }
            pipe.query_async::<()>(connection).await?;
        }
        if !compactions.is_empty() {
            // A compaction that finds the string changed does nothing: the
            // next step that reads it compacts it again.
            eval_many(connection, &COMPACT, compactions.len(), |index, cmd| {
                let (key, read, window) = &compactions[index];
                cmd.arg(1)
                    .arg(key)
                    .arg(&read[..])
                    .arg(&window[..])
                    .arg(self.idle_ttl_ms);
            })
            .await?;
        }
        Ok(steps)
    }

    /// The window a string holds: its newest [`capacity`](Self::capacity)
    /// distinct records, in history order.
    fn window_of(&self, key: &str, packed: &[u8]) -> Result<Vec<[u8; RECORD]>, CacheError> {
        if !packed.len().is_multiple_of(RECORD) {
            return Err(CacheError::CorruptEntry {
                key: key.to_owned(),
                reason: format!(
                    "{} bytes is not a whole number of {RECORD}-byte records",
                    packed.len()
                ),
            });
        }
        let mut records: Vec<[u8; RECORD]> = Vec::with_capacity(packed.len() / RECORD);
        for chunk in packed.chunks_exact(RECORD) {
            let record: [u8; RECORD] = chunk.try_into().expect("chunks are one record long");
            if record == HEADER || decode_cents(&record).is_none() {
                return Err(corrupt(key, &record));
            }
            records.push(record);
        }
        Ok(self.newest(records))
    }

    /// The newest [`capacity`](Self::capacity) distinct records, in order.
    fn newest(&self, mut records: Vec<[u8; RECORD]>) -> Vec<[u8; RECORD]> {
        records.sort_unstable();
        records.dedup();
        let excess = records.len().saturating_sub(self.capacity);
        records.drain(..excess);
        records
    }

    /// The newest [`capacity`](Self::capacity) of `records`, packed after
    /// the header.
    fn pack_records(&self, records: Vec<[u8; RECORD]>) -> Vec<u8> {
        let newest = self.newest(records);
        let mut packed = Vec::with_capacity((newest.len() + 1) * RECORD);
        packed.extend_from_slice(&HEADER);
        for record in &newest {
            packed.extend_from_slice(record);
        }
        packed
    }

    /// The newest [`capacity`](Self::capacity) of `entries`, packed in order.
    fn pack(&self, entries: &[WindowEntry]) -> Vec<u8> {
        self.pack_records(entries.iter().map(record).collect())
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

/// A transaction's record: date, amount and id, each big-endian with its
/// sign bit flipped, so records sort bytewise like the history index.
fn record(entry: &WindowEntry) -> [u8; RECORD] {
    let mut record = [0u8; RECORD];
    let micros = entry.txn_date.unix_timestamp_nanos().div_euclid(1_000);
    // Every date Postgres stores fits: it keeps microseconds in 64 bits.
    let micros = i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX });
    let date = (micros as u64) ^ (1 << 63);
    record[..DATE_BYTES].copy_from_slice(&date.to_be_bytes());
    let amount = (cents(entry.amount) + AMOUNT_BIAS) as u128;
    record[DATE_BYTES..ID_AT].copy_from_slice(&amount.to_be_bytes()[16 - AMOUNT_BYTES..]);
    record[ID_AT..].copy_from_slice(entry.id.as_uuid().as_bytes());
    record
}

/// The amount as a whole number of cents.
fn cents(amount: Amount) -> i128 {
    let mut decimal = amount.as_decimal();
    // Amounts always have two places; rescaling makes sure of it for free.
    decimal.rescale(Amount::SCALE);
    decimal.mantissa()
}

/// A record's cents, if they are an amount's.
fn decode_cents(record: &[u8]) -> Option<i128> {
    let mut bytes = [0u8; 16];
    bytes[16 - AMOUNT_BYTES..].copy_from_slice(&record[DATE_BYTES..ID_AT]);
    let cents = u128::from_be_bytes(bytes) as i128 - AMOUNT_BIAS;
    (cents.abs() <= MAX_CENTS).then_some(cents)
}

/// A record back as the entry it was made from.
fn decode_record(key: &str, record: &[u8]) -> Result<WindowEntry, CacheError> {
    let txn_date = decode_date(key, record)?;
    let amount = decode_amount(key, record)?;
    let mut id = [0u8; ID_BYTES];
    id.copy_from_slice(&record[ID_AT..]);
    Ok(WindowEntry {
        id: TransactionId(uuid::Uuid::from_bytes(id)),
        txn_date,
        amount,
    })
}

/// Only the amount of a record.
fn decode_date(key: &str, record: &[u8]) -> Result<OffsetDateTime, CacheError> {
    let mut date = [0u8; DATE_BYTES];
    date.copy_from_slice(&record[..DATE_BYTES]);
    let micros = (u64::from_be_bytes(date) ^ (1 << 63)) as i64;
    i128::from(micros)
        .checked_mul(1_000)
        .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
        .ok_or_else(|| corrupt(key, record))
}

fn decode_amount(key: &str, record: &[u8]) -> Result<Amount, CacheError> {
    decode_cents(record)
        .and_then(|cents| Amount::from_cents(cents).ok())
        .ok_or_else(|| corrupt(key, record))
}

fn corrupt(key: &str, record: &[u8]) -> CacheError {
    let hex: String = record.iter().map(|b| format!("{b:02x}")).collect();
    CacheError::CorruptEntry {
        key: key.to_owned(),
        reason: format!("`{hex}` is not a window record (8-byte date, 9-byte amount, 16-byte id)"),
    }
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

    fn hex(record: &[u8]) -> String {
        record.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_record_is_the_flipped_microseconds_the_biased_cents_and_the_id() {
        let record = record(&entry("271.62"));
        // 1725969600123456 µs with the sign bit set.
        assert_eq!(hex(&record[..DATE_BYTES]), "800621c29ce89240");
        // 2^71 + 27162.
        assert_eq!(hex(&record[DATE_BYTES..ID_AT]), "800000000000006a1a");
        assert_eq!(hex(&record[ID_AT..]), "01912c3a7b4e7c1d8e2f3a4b5c6d7e8f");
        assert_eq!(
            hex(&super::record(&entry("-0.01"))[DATE_BYTES..ID_AT]),
            "7fffffffffffffffff"
        );
    }

    #[test]
    fn records_sort_bytewise_in_date_then_amount_then_id_order() {
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
        let records: Vec<[u8; RECORD]> = amounts.iter().map(|a| record(&entry(a))).collect();
        let mut sorted = records.clone();
        sorted.sort();
        assert_eq!(sorted, records);
        let earlier = WindowEntry {
            txn_date: datetime!(1970-01-01 0:00 UTC),
            ..entry("999999999999999999.99")
        };
        let before_epoch = WindowEntry {
            txn_date: datetime!(1969-12-31 23:59:59 UTC),
            ..earlier
        };
        assert!(record(&before_epoch) < record(&earlier));
        assert!(record(&earlier) < record(&entry("-999999999999999999.99")));
        let higher_id = WindowEntry {
            id: TransactionId(Uuid::from_u128(u128::MAX)),
            ..entry("271.62")
        };
        assert!(record(&entry("271.62")) < record(&higher_id));
        assert!(records.iter().all(|record| *record < HEADER));
    }

    #[test]
    fn records_decode_to_the_entry_they_were_made_from() {
        for amount in [
            "271.62",
            "0",
            "-0.01",
            "-271.62",
            "999999999999999999.99",
            "-999999999999999999.99",
        ] {
            let entry = entry(amount);
            let record = record(&entry);
            assert_eq!(
                decode_record("k", &record).expect("a record"),
                entry,
                "{amount}"
            );
            assert_eq!(
                decode_amount("k", &record).expect("an amount"),
                entry.amount
            );
        }
    }

    #[test]
    fn records_whose_amount_is_out_of_range_are_corrupt() {
        let mut bad = record(&entry("12.50"));
        bad[DATE_BYTES..ID_AT].copy_from_slice(&[0xff; AMOUNT_BYTES]);
        match decode_record("txwatch:window:{u}", &bad) {
            Err(CacheError::CorruptEntry { key, reason }) => {
                assert_eq!(key, "txwatch:window:{u}");
                assert!(reason.contains(&hex(&bad)), "{reason}");
            }
            other => panic!("expected CorruptEntry, got {other:?}"),
        }
    }
}
