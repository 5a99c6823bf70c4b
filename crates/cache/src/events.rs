//! The live event log, shared by every server process: `S` Redis Streams
//! (shards, [`Keys::event_shard`]), a user's events always in the same one.
//!
//! A user's shard is [`shard_of`]: a fixed mix of the user id's 128 bits
//! modulo `S`, the same in every process and version, so one user's events
//! keep their order (one stream) while the users spread over the shards,
//! and on a Redis Cluster over the masters (each shard key is hash-tagged
//! by its number). Each shard is trimmed to about `retention / S` entries.
//!
//! Each transaction is one stream entry in its user's shard with one field,
//! `e`: the user id (16 bytes), a flag byte (`1` when the transaction was
//! flagged, `0` otherwise) and the payload (the caller's JSON, opaque here).
//! One field rather than three halves what Redis stores and sends per entry
//! and what every process's relay parses. A simulated transaction's entry
//! has a second field, `f`: the [`FeedId`] of the simulated feed that made
//! it (8 bytes, big-endian), so each feed's connection can pick out its own
//! events, also when it resumes. Readers of an earlier version ignore `f`. Entries of the earlier
//! three-field form (`u` the user id as text, `a` `1` or `0`, `d` the
//! payload) are still read, so processes of both versions can share a
//! stream during an upgrade. The stream is trimmed to about
//! [`EventLog::retention`] entries as it grows. Entry ids are [`EventId`]s,
//! which readers resume from.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::connection::Conn;
use bytes::Bytes;
use deadpool_redis::redis::{self, Value};
use txwatch_domain::UserId;

use crate::error::CacheError;
use crate::keys::Keys;
use crate::pool::{Held, RESPONSE_TIMEOUT, RedisPool};
use crate::shared::Shared;

/// What [`CacheError::CorruptEntry`] says the event key should be.
const KIND: &str = "stream";
/// Width of the user id at the start of an entry's `e` field.
const USER_BYTES: usize = 16;

/// A stream entry id, `<ms>-<seq>`, ordered as Redis orders them. Its text
/// form ([`Display`](fmt::Display), [`FromStr`]) is Redis's, and serves as
/// the SSE event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    /// Milliseconds since the Unix epoch when Redis added the entry (or
    /// later, to keep ids increasing).
    pub ms: u64,
    /// The entry's number within its millisecond.
    pub seq: u64,
}

impl EventId {
    /// Before every entry: reading after it reads from the beginning.
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Why a text is not an [`EventId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event id of the form `<ms>-<seq>`")]
pub struct EventIdError(String);

impl FromStr for EventId {
    type Err = EventIdError;

    /// Parses `<ms>-<seq>`, both plain decimal numbers.
    fn from_str(text: &str) -> Result<EventId, EventIdError> {
        let number = |part: &str| {
            (!part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
        };
        text.split_once('-')
            .and_then(|(ms, seq)| {
                Some(EventId {
                    ms: number(ms)?,
                    seq: number(seq)?,
                })
            })
            .ok_or_else(|| EventIdError(text.to_owned()))
    }
}

/// One simulated feed: the transactions one connection's simulation makes.
/// Its text form is 16 lowercase hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeedId(pub u64);

impl fmt::Display for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a text is not a [`FeedId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a feed id: expected 16 hexadecimal digits")]
pub struct FeedIdError(String);

impl FromStr for FeedId {
    type Err = FeedIdError;

    /// Parses exactly 16 hexadecimal digits.
    fn from_str(text: &str) -> Result<FeedId, FeedIdError> {
        if text.len() != 16 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(FeedIdError(text.to_owned()));
        }
        u64::from_str_radix(text, 16)
            .map(FeedId)
            .map_err(|_| FeedIdError(text.to_owned()))
    }
}

/// An event to append: whose transaction, whether it was flagged, which
/// simulated feed made it (if one did), and the payload.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// The transaction's user.
    pub user_id: UserId,
    /// Whether the transaction was flagged as an anomaly.
    pub is_anomaly: bool,
    /// The simulated feed that made the transaction; `None` for a real one.
    pub feed: Option<FeedId>,
    /// The payload, opaque to the log (the caller's JSON).
    pub data: &'a [u8],
}

/// The shard of `user_id`'s events among `shards` (at least one): the
/// splitmix64 finaliser over the two halves of the id's 128 bits xored,
/// modulo `shards`. Stable across processes and versions: changing it moves
/// users between shards, as changing the shard count does.
pub fn shard_of(user_id: UserId, shards: usize) -> usize {
    let bits = user_id.as_uuid().as_u128();
    // Truncation on purpose: the two halves are mixed.
    #[allow(clippy::cast_possible_truncation)]
    let mut x = (bits as u64) ^ ((bits >> 64) as u64);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let shards = u64::try_from(shards.max(1)).unwrap_or(u64::MAX);
    usize::try_from(x % shards).unwrap_or(0)
}

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The shard it is in.
    pub shard: usize,
    /// Where it is in its shard's stream.
    pub id: EventId,
    /// The transaction's user.
    pub user_id: UserId,
    /// Whether the transaction was flagged as an anomaly.
    pub is_anomaly: bool,
    /// The simulated feed that made the transaction; `None` for a real one.
    pub feed: Option<FeedId>,
    /// The payload, as appended.
    pub data: Bytes,
}

/// Appends to and reads the event shards; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    pool: RedisPool,
    shared: Shared,
    keys: Arc<[String]>,
    retention: usize,
    shard_retention: usize,
}

impl EventLog {
    /// The log in `shards` streams (at least one, [`Keys::event_shard`]),
    /// keeping about `retention` events in all (at least one per shard).
    pub fn new(pool: RedisPool, keys: &Keys, retention: usize, shards: usize) -> EventLog {
        let shards = shards.max(1);
        EventLog {
            shared: Shared::new(pool.clone()),
            pool,
            keys: (0..shards).map(|shard| keys.event_shard(shard)).collect(),
            retention: retention.max(1),
            shard_retention: retention.div_ceil(shards).max(1),
        }
    }

    /// About how many events the shards keep in all. Trimming is
    /// approximate (`MAXLEN ~`): Redis drops whole internal nodes of entries
    /// at a time, so a shard may hold somewhat more.
    pub fn retention(&self) -> usize {
        self.retention
    }

    /// Whether the log is on a Redis Cluster, where a blocking read waits
    /// on one shard at a time (see [`read_shards`](Self::read_shards)).
    pub fn is_cluster(&self) -> bool {
        self.pool.is_cluster()
    }

    /// How many shards the log has.
    pub fn shards(&self) -> usize {
        self.keys.len()
    }

    /// The shard of `user_id`'s events ([`shard_of`]).
    pub fn shard_of(&self, user_id: UserId) -> usize {
        shard_of(user_id, self.keys.len())
    }

    /// The key of `shard`.
    ///
    /// # Panics
    /// When `shard` is not below [`shards`](Self::shards).
    pub fn key(&self, shard: usize) -> &str {
        &self.keys[shard]
    }

    /// Runs `pipe` in one round trip and returns one reply per command,
    /// `expected` of them. A command's error stays in its reply (so
    /// `WRONGTYPE` can be told apart per key); a reply count other than
    /// `expected` is an unexpected reply, described by `what`.
    async fn run_each(
        &self,
        mut pipe: redis::Pipeline,
        expected: usize,
        what: &'static str,
    ) -> Result<Vec<Value>, CacheError> {
        pipe.ignore_errors();
        let pipe = &pipe;
        let replies: Vec<Value> = self
            .shared
            .run(|mut connection| async move {
                pipe.query_async(&mut connection)
                    .await
                    .map_err(CacheError::from)
            })
            .await?;
        if replies.len() != expected {
            return Err(CacheError::unexpected_reply(what, &Value::Array(replies)));
        }
        Ok(replies)
    }

    /// Appends `events` in one round trip (none for no events), each to its
    /// user's shard, in order, trimming each shard to about its part of
    /// [`retention`](Self::retention), and returns their ids (each in its
    /// shard). On a cluster the pipeline is split by slot, so by shard.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when the key holds something other than a
    /// stream, [`CacheError::Unavailable`] when Redis cannot be reached in
    /// time, [`CacheError::Command`] for other Redis errors. Some events may
    /// have been appended even so.
    pub async fn append(&self, events: &[NewEvent<'_>]) -> Result<Vec<EventId>, CacheError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::Pipeline::with_capacity(events.len());
        let mut entry: Vec<u8> = Vec::new();
        for event in events {
            entry.clear();
            entry.extend_from_slice(event.user_id.as_uuid().as_bytes());
            entry.push(u8::from(event.is_anomaly));
            entry.extend_from_slice(event.data);
            let xadd = pipe
                .cmd("XADD")
                .arg(self.key(self.shard_of(event.user_id)))
                .arg("MAXLEN")
                .arg("~")
                .arg(self.shard_retention)
                .arg("*")
                .arg("e")
                .arg(&entry[..]);
            if let Some(feed) = event.feed {
                xadd.arg("f").arg(&feed.0.to_be_bytes()[..]);
            }
        }
        let replies = self
            .run_each(pipe, events.len(), "XADD must answer once per event")
            .await?;
        replies
            .iter()
            .zip(events)
            .map(|(reply, event)| {
                let key = self.key(self.shard_of(event.user_id));
                match reply {
                    Value::ServerError(error) => {
                        Err(CacheError::at_key(error.clone().into(), key, KIND))
                    }
                    id => decode_id(key, id),
                }
            })
            .collect()
    }

    /// Events of `shard` strictly after `after`, oldest first, at most
    /// `count` (at least one); none when the shard is empty or missing.
    /// [`EventId::ZERO`] reads from the oldest event kept.
    ///
    /// With `block`, when there are none yet, waits up to that long (at
    /// least a millisecond) for some to be appended, and answers as soon as
    /// there are. The wait holds one pooled connection to itself, because
    /// Redis answers nothing else on a connection while it blocks: the
    /// pool's size bounds how many readers can wait at once, so have one
    /// reader per process fan events out, not one per client. A wait cut
    /// short (the future dropped, or no answer in time) closes its connection
    /// rather than hand a blocked one back to the pool.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when the key holds something other than a
    /// stream or an entry lacks a field, [`CacheError::Unavailable`] when
    /// Redis cannot be reached in time, [`CacheError::Command`] for other
    /// Redis errors.
    pub async fn read_after(
        &self,
        shard: usize,
        after: EventId,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Event>, CacheError> {
        self.read_streams(&[(shard, after)], count, block).await
    }

    /// Events of several shards, each strictly after its own position, at
    /// most `count` of each, each shard's oldest first (shards one after the
    /// other). On one Redis this is one `XREAD` of every shard, which
    /// waits as [`read_after`](Self::read_after) does while there are none
    /// (one connection held while it waits). On a cluster, where one
    /// command may only touch one slot, it is one `XREAD` per shard at
    /// once, and `block` applies only when one shard is read: several
    /// blocking reads would answer only once the slowest one did. Read
    /// shards one at a time to wait on a cluster.
    ///
    /// # Errors
    /// As [`read_after`](Self::read_after).
    pub async fn read_shards(
        &self,
        from: &[(usize, EventId)],
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Event>, CacheError> {
        if from.len() <= 1 || !self.pool.is_cluster() {
            return self.read_streams(from, count, block).await;
        }
        let reads = from
            .iter()
            .map(|position| self.read_streams(std::slice::from_ref(position), count, None));
        let mut events = Vec::new();
        for read in futures_util::future::join_all(reads).await {
            events.extend(read?);
        }
        Ok(events)
    }

    /// One `XREAD` of the shards in `from` (one slot each on a cluster).
    async fn read_streams(
        &self,
        from: &[(usize, EventId)],
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Event>, CacheError> {
        if from.is_empty() {
            return Ok(Vec::new());
        }
        let mut xread = redis::cmd("XREAD");
        xread.arg("COUNT").arg(count.max(1));
        let mut response_timeout = RESPONSE_TIMEOUT;
        if let Some(block) = block {
            // `BLOCK 0` would wait forever.
            let ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
            xread.arg("BLOCK").arg(ms);
            response_timeout = RESPONSE_TIMEOUT.saturating_add(Duration::from_millis(ms));
        }
        xread.arg("STREAMS");
        for &(shard, _) in from {
            xread.arg(self.key(shard));
        }
        for &(_, after) in from {
            xread.arg(after.to_string());
        }
        let first_key = self.key(from[0].0);

        let mut held = Held::get(&self.pool).await?;
        // A clone shares the connection but has its own response timeout,
        // which must outlast the block. The pooled handle stays held, so no
        // one else sends commands that would queue behind the wait.
        let mut connection = Conn::clone(held.connection());
        connection.set_response_timeout(response_timeout);
        let reply = xread.query_async::<Value>(&mut connection).await;
        drop(connection);
        // A server's refusal leaves the connection usable; anything else (a
        // timeout above all) may leave it blocked, and it is closed.
        let reply = held
            .settle(reply)
            .map_err(|error| CacheError::at_key(error, first_key, KIND))?;
        self.decode_xread(reply)
    }

    /// The newest event's id in `shard`, or `None` when it is empty or
    /// missing: where a reader that only wants new events starts.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when the key holds something other than a
    /// stream, [`CacheError::Unavailable`] when Redis cannot be reached in
    /// time, [`CacheError::Command`] for other Redis errors.
    pub async fn last_id(&self, shard: usize) -> Result<Option<EventId>, CacheError> {
        self.end_id(shard, "XREVRANGE", "+", "-").await
    }

    /// [`last_id`](Self::last_id) of each shard in `shards`, in one round
    /// trip (split by slot on a cluster).
    ///
    /// # Errors
    /// As [`last_id`](Self::last_id).
    pub async fn last_ids(&self, shards: &[usize]) -> Result<Vec<Option<EventId>>, CacheError> {
        if shards.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::Pipeline::with_capacity(shards.len());
        for &shard in shards {
            pipe.cmd("XREVRANGE")
                .arg(self.key(shard))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
        }
        let replies = self
            .run_each(pipe, shards.len(), "XREVRANGE must answer once per shard")
            .await?;
        replies
            .into_iter()
            .zip(shards)
            .map(|(reply, &shard)| match reply {
                Value::ServerError(error) => {
                    Err(CacheError::at_key(error.into(), self.key(shard), KIND))
                }
                reply => first_entry_id(self.key(shard), &reply),
            })
            .collect()
    }

    /// The oldest event's id still kept in `shard`, or `None` when it is
    /// empty or missing: a reader resuming after an older id has missed
    /// events that retention dropped.
    ///
    /// # Errors
    /// [`CacheError::CorruptEntry`] when the key holds something other than a
    /// stream, [`CacheError::Unavailable`] when Redis cannot be reached in
    /// time, [`CacheError::Command`] for other Redis errors.
    pub async fn first_id(&self, shard: usize) -> Result<Option<EventId>, CacheError> {
        self.end_id(shard, "XRANGE", "-", "+").await
    }

    /// Whether `shard` holds an entry with exactly this id.
    ///
    /// # Errors
    /// As [`last_id`](Self::last_id).
    pub async fn contains(&self, shard: usize, id: EventId) -> Result<bool, CacheError> {
        let id = id.to_string();
        Ok(self.end_id(shard, "XRANGE", &id, &id).await?.is_some())
    }

    /// The id of the first entry `command` (`XRANGE` or `XREVRANGE`) lists
    /// from `start` to `end`.
    async fn end_id(
        &self,
        shard: usize,
        command: &str,
        start: &str,
        end: &str,
    ) -> Result<Option<EventId>, CacheError> {
        let key = self.key(shard);
        let mut held = Held::get(&self.pool).await?;
        let reply = redis::cmd(command)
            .arg(key)
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(1)
            .query_async(held.connection())
            .await;
        let reply: Value = held
            .settle(reply)
            .map_err(|error| CacheError::at_key(error, key, KIND))?;
        first_entry_id(key, &reply)
    }

    /// The events in an `XREAD` reply, shard by shard.
    fn decode_xread(&self, reply: Value) -> Result<Vec<Event>, CacheError> {
        // RESP2: nil, or [[key, entries], ...]. RESP3: nil, or {key: entries}.
        let streams: Vec<(Value, Value)> = match reply {
            Value::Nil => return Ok(Vec::new()),
            Value::Array(streams) => streams
                .into_iter()
                .filter_map(|stream| match stream {
                    Value::Array(pair) => {
                        let mut pair = pair.into_iter();
                        Some((pair.next()?, pair.next()?))
                    }
                    _ => None,
                })
                .collect(),
            Value::Map(streams) => streams,
            other => {
                return Err(CacheError::unexpected_reply("XREAD lists streams", &other));
            }
        };
        let mut events = Vec::new();
        for (key, entries) in streams {
            let shard = bytes_of(&key)
                .and_then(|key| self.keys.iter().position(|ours| ours.as_bytes() == key))
                .ok_or_else(|| {
                    CacheError::unexpected_reply("XREAD answers for the streams asked", &key)
                })?;
            match entries {
                Value::Array(entries) => {
                    for entry in entries {
                        events.push(self.decode_entry(shard, entry)?);
                    }
                }
                Value::Nil => {}
                other => {
                    return Err(CacheError::unexpected_reply(
                        "XREAD lists a stream's entries",
                        &other,
                    ));
                }
            }
        }
        Ok(events)
    }

    /// One `[id, [field, value, ...]]` entry of `shard` as an event.
    fn decode_entry(&self, shard: usize, entry: Value) -> Result<Event, CacheError> {
        let key = self.key(shard);
        let Value::Array(parts) = entry else {
            return Err(CacheError::unexpected_reply(
                "a stream entry is an id and fields",
                &entry,
            ));
        };
        let mut parts = parts.into_iter();
        let (Some(id), Some(fields), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CacheError::unexpected_reply(
                "a stream entry is an id and fields",
                &Value::Nil,
            ));
        };
        let id = decode_id(key, &id)?;
        let pairs: Vec<(Value, Value)> = match fields {
            Value::Array(flat) => {
                let mut flat = flat.into_iter();
                let mut pairs = Vec::with_capacity(3);
                while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                    pairs.push((name, value));
                }
                pairs
            }
            Value::Map(pairs) => pairs,
            other => {
                return Err(CacheError::unexpected_reply(
                    "a stream entry's fields",
                    &other,
                ));
            }
        };
        let (mut user_id, mut is_anomaly, mut data) = (None, None, None);
        let mut feed = None;
        // Whether the entry has fields of the earlier three-field form.
        let mut legacy = false;
        for (name, value) in pairs {
            let Value::BulkString(value) = value else {
                continue;
            };
            match bytes_of(&name) {
                Some(b"e") => {
                    if let Some((head, _)) = value.split_at_checked(USER_BYTES + 1) {
                        user_id = uuid::Uuid::from_slice(&head[..USER_BYTES]).ok().map(UserId);
                        is_anomaly = match head[USER_BYTES] {
                            1 => Some(true),
                            0 => Some(false),
                            _ => None,
                        };
                        data = Some(Bytes::from(value).slice(USER_BYTES + 1..));
                    }
                }
                Some(b"f") => {
                    let bytes: [u8; 8] =
                        value
                            .as_slice()
                            .try_into()
                            .map_err(|_| CacheError::CorruptEntry {
                                key: key.to_owned(),
                                reason: format!("event {id} has a feed id that is not 8 bytes"),
                            })?;
                    feed = Some(FeedId(u64::from_be_bytes(bytes)));
                }
                Some(b"u") => {
                    legacy = true;
                    user_id = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|text| text.parse().ok());
                }
                Some(b"a") => {
                    legacy = true;
                    is_anomaly = match value.as_slice() {
                        b"1" => Some(true),
                        b"0" => Some(false),
                        _ => None,
                    };
                }
                Some(b"d") => {
                    legacy = true;
                    data = Some(Bytes::from(value));
                }
                _ => {}
            }
        }
        let corrupt = |legacy_field: &str| CacheError::CorruptEntry {
            key: key.to_owned(),
            reason: format!(
                "event {id} has no valid `{}` field",
                if legacy { legacy_field } else { "e" }
            ),
        };
        Ok(Event {
            shard,
            id,
            user_id: user_id.ok_or_else(|| corrupt("u"))?,
            is_anomaly: is_anomaly.ok_or_else(|| corrupt("a"))?,
            feed,
            data: data.ok_or_else(|| corrupt("d"))?,
        })
    }
}

/// The id of the first entry of an `XRANGE` or `XREVRANGE` reply of `key`.
fn first_entry_id(key: &str, reply: &Value) -> Result<Option<EventId>, CacheError> {
    match reply {
        Value::Nil => Ok(None),
        Value::Array(entries) => match entries.first() {
            None => Ok(None),
            Some(Value::Array(entry)) if !entry.is_empty() => decode_id(key, &entry[0]).map(Some),
            Some(_) => Err(CacheError::unexpected_reply(
                "a stream range lists entries",
                reply,
            )),
        },
        other => Err(CacheError::unexpected_reply(
            "a stream range lists entries",
            other,
        )),
    }
}

fn decode_id(key: &str, id: &Value) -> Result<EventId, CacheError> {
    bytes_of(id)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| CacheError::CorruptEntry {
            key: key.to_owned(),
            reason: format!("{id:?} is not a stream entry id"),
        })
}

// By hand: the pool's own `Debug` is long and says nothing useful here.
impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("shards", &self.keys.len())
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

fn bytes_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_prints_and_parses_as_redis_writes_it() {
        let id = EventId {
            ms: 1_725_969_600_123,
            seq: 7,
        };
        assert_eq!(id.to_string(), "1725969600123-7");
        assert_eq!("1725969600123-7".parse::<EventId>(), Ok(id));
        assert_eq!("0-0".parse::<EventId>(), Ok(EventId::ZERO));
        assert_eq!(
            format!("{}-{}", u64::MAX, u64::MAX).parse::<EventId>(),
            Ok(EventId {
                ms: u64::MAX,
                seq: u64::MAX
            })
        );
    }

    #[test]
    fn a_feed_id_is_sixteen_hex_digits_both_ways() {
        let feed = FeedId(0x00ab_cdef_0123_4567);
        assert_eq!(feed.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<FeedId>(), Ok(feed));
        assert_eq!("00ABCDEF01234567".parse::<FeedId>(), Ok(feed));
        for text in [
            "",
            "abc",
            "00abcdef012345678",
            "00abcdef0123456g",
            "+0abcdef01234567",
        ] {
            assert!(text.parse::<FeedId>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn text_that_is_not_ms_dash_seq_is_not_an_event_id() {
        for text in [
            "",
            "-",
            "12",
            "12-",
            "-3",
            "12-3-4",
            "a-1",
            "1-b",
            "+1-2",
            "1-+2",
            " 1-2",
            "1-2 ",
            "18446744073709551616-0",
        ] {
            let error = text.parse::<EventId>().expect_err(text);
            assert_eq!(
                error.to_string(),
                format!("`{text}` is not an event id of the form `<ms>-<seq>`")
            );
        }
    }

    #[test]
    fn a_user_s_shard_is_stable_and_users_spread_over_every_shard() {
        let user = UserId(uuid::Uuid::from_u128(
            0x0191_2c3a_7b4e_7c1d_8e2f_3a4b_5c6d_7e8f,
        ));
        // Fixed: a change would move users between shards.
        assert_eq!(shard_of(user, 8), shard_of(user, 8));
        assert_eq!(shard_of(user, 1), 0);
        assert_eq!(shard_of(user, 0), 0);
        let mut counts = [0usize; 8];
        for n in 0..8_000u128 {
            // Sequential ids, the worst case for a plain modulo.
            counts[shard_of(UserId(uuid::Uuid::from_u128(n)), 8)] += 1;
        }
        assert!(
            counts.iter().all(|&count| (800..1200).contains(&count)),
            "{counts:?}"
        );
    }

    #[test]
    fn event_ids_order_by_millisecond_then_sequence() {
        let ids: Vec<EventId> = ["0-0", "0-1", "1-0", "1-2", "1-10", "2-0", "10-0"]
            .iter()
            .map(|text| text.parse().expect("an id"))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids);
        assert!(EventId { ms: 1, seq: 10 } > EventId { ms: 1, seq: 2 });
    }
}
