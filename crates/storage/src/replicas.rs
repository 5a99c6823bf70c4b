//! Read replicas: which one a read goes to, and how each one's health and
//! lag are tracked.
//!
//! Reads that may be a little stale (the history page, the users listing)
//! go to a usable replica, in turn; a replica is usable while its last
//! check found it answering and no further behind the primary than
//! `replica_max_lag_ms`. A read that fails on a replica is run again on the
//! primary within the same deadline, and the replica is skipped until a
//! check finds it answering again.
//!
//! Lag is measured without a clock shared with the replica and without
//! `pg_last_xact_replay_timestamp()` (which looks old whenever the primary
//! is idle): each check records the primary's WAL position and when it saw
//! it; a replica that has replayed up to a position the primary had reached
//! at time t is at most `now - t` behind, and a replica that has replayed
//! everything the primary had at the last check is not behind at all. The
//! lag is thus known to within one check interval.
//!
//! Must not depend on anything but the pool and sessions of this crate:
//! the checks run wherever the caller spawns [`Replicas::monitor`].

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::StorageConfig;
use crate::error::StorageError;
use crate::pool::{PgPool, connect};
use crate::session::Session;

/// What the last check found a replica to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Not checked yet: reads go to the primary meanwhile.
    Starting,
    /// Answering and within the lag bound: reads go to it.
    Up,
    /// Answering, but further behind than the bound: skipped.
    Lagging,
    /// Not answering, or its last read failed: skipped.
    Down,
}

impl ReplicaState {
    /// `starting`, `up`, `lagging` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Starting => "starting",
            ReplicaState::Up => "up",
            ReplicaState::Lagging => "lagging",
            ReplicaState::Down => "down",
        }
    }

    fn from_u8(value: u8) -> ReplicaState {
        match value {
            1 => ReplicaState::Up,
            2 => ReplicaState::Lagging,
            3 => ReplicaState::Down,
            _ => ReplicaState::Starting,
        }
    }
}

/// One replica as the metrics and readiness show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `host:port/database`, never the credentials.
    pub name: String,
    /// What the last check (or a failed read since) found.
    pub state: ReplicaState,
    /// How far behind the primary it was at the last check that reached
    /// it, in milliseconds; `None` before any.
    pub lag_ms: Option<u64>,
    /// Reads it answered.
    pub reads: u64,
    /// Reads that failed on it and went to the primary.
    pub fallbacks: u64,
}

/// The read replicas of one primary; cheap to clone.
#[derive(Clone)]
pub struct Replicas {
    inner: Arc<Inner>,
}

struct Inner {
    replicas: Vec<Replica>,
    next: AtomicU64,
    max_lag: Duration,
    interval: Duration,
    /// The primary's WAL positions as checks saw them, oldest first.
    samples: Mutex<VecDeque<(Instant, u64)>>,
    /// Reads the primary answered because no replica was usable or one
    /// failed.
    primary_reads: AtomicU64,
}

pub(crate) struct Replica {
    name: String,
    pool: PgPool,
    state: AtomicU8,
    /// `u64::MAX` until a check reached it.
    lag_ms: AtomicU64,
    reads: AtomicU64,
    fallbacks: AtomicU64,
}

/// Unanswered checks give up after this long (or the interval, if longer).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

const PRIMARY_POSITION: &str = "select (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint";
// A server that is not in recovery (a replica promoted, or a URL naming a
// primary) has everything it will ever have: never behind.
const REPLICA_POSITION: &str = "select pg_is_in_recovery(), \
     (coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn) - '0/0'::pg_lsn)::bigint";

impl Replicas {
    /// Pools for each of `config.read_urls` (opened lazily, like the
    /// primary's), with the primary's settings; `None` without any.
    ///
    /// # Errors
    /// [`StorageError::InvalidUrl`] when a URL cannot be parsed.
    pub fn connect(config: &StorageConfig) -> Result<Option<Replicas>, StorageError> {
        if config.read_urls.is_empty() {
            return Ok(None);
        }
        let replicas = config
            .read_urls
            .iter()
            .map(|url| {
                let pool = connect(&StorageConfig {
                    url: url.clone(),
                    read_urls: Vec::new(),
                    ..config.clone()
                })?;
                Ok(Replica {
                    name: name_of(url)?,
                    pool,
                    state: AtomicU8::new(0),
                    lag_ms: AtomicU64::new(u64::MAX),
                    reads: AtomicU64::new(0),
                    fallbacks: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(Some(Replicas {
            inner: Arc::new(Inner {
                replicas,
                next: AtomicU64::new(0),
                max_lag: Duration::from_millis(config.replica_max_lag_ms),
                interval: Duration::from_millis(config.replica_check_interval_ms.max(10)),
                samples: Mutex::new(VecDeque::new()),
                primary_reads: AtomicU64::new(0),
            }),
        }))
    }

    /// Each replica's state, lag and reads, in the order configured.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        self.inner
            .replicas
            .iter()
            .map(|replica| ReplicaStatus {
                name: replica.name.clone(),
                state: replica.state(),
                lag_ms: match replica.lag_ms.load(Ordering::Relaxed) {
                    u64::MAX => None,
                    lag => Some(lag),
                },
                reads: replica.reads.load(Ordering::Relaxed),
                fallbacks: replica.fallbacks.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Replica-eligible reads the primary answered (no replica usable, or
    /// the one tried failed).
    pub fn primary_reads(&self) -> u64 {
        self.inner.primary_reads.load(Ordering::Relaxed)
    }

    /// Checks every replica once every `replica_check_interval_ms`, for
    /// ever: spawn it. `primary` is the pool of the primary.
    pub async fn monitor(self, primary: PgPool) {
        let mut ticks = tokio::time::interval(self.inner.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.check(&primary).await;
        }
    }

    /// One round of checks: the primary's WAL position, then each
    /// replica's, all at once; updates each replica's state and lag.
    pub async fn check(&self, primary: &PgPool) {
        let within = CHECK_TIMEOUT.max(self.inner.interval);
        let seen = Instant::now();
        match position(primary, within, PRIMARY_POSITION).await {
            Ok((_, lsn)) => self.record(seen, lsn),
            // Without the primary's position the replicas' lag is measured
            // against the last one known, which only overstates it.
            Err(error) => tracing::debug!(%error, "replica check: primary position unknown"),
        }
        let checks = self.inner.replicas.iter().map(|replica| async move {
            let answer = position(&replica.pool, within, REPLICA_POSITION).await;
            (replica, answer)
        });
        for (replica, answer) in futures_util::future::join_all(checks).await {
            let state = match answer {
                Ok((in_recovery, replayed)) => {
                    let lag = if in_recovery {
                        self.lag(replayed, Instant::now())
                    } else {
                        Duration::ZERO
                    };
                    let lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX - 1);
                    replica.lag_ms.store(lag_ms, Ordering::Relaxed);
                    if lag > self.inner.max_lag {
                        ReplicaState::Lagging
                    } else {
                        ReplicaState::Up
                    }
                }
                Err(error) => {
                    tracing::debug!(replica = %replica.name, %error, "replica check failed");
                    ReplicaState::Down
                }
            };
            let before = replica.set_state(state);
            if before != state {
                tracing::info!(
                    replica = %replica.name,
                    from = before.as_str(),
                    to = state.as_str(),
                    lag_ms = replica.lag_ms.load(Ordering::Relaxed),
                    "read replica state changed"
                );
            }
        }
    }

    /// Remembers the primary's position; keeps enough history to tell any
    /// lag up to twice the bound.
    fn record(&self, at: Instant, lsn: u64) {
        let keep = (self.inner.max_lag * 2).max(self.inner.interval * 4);
        let mut samples = self.inner.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back((at, lsn));
        while samples
            .front()
            .is_some_and(|(seen, _)| at.duration_since(*seen) > keep)
            && samples.len() > 1
        {
            samples.pop_front();
        }
    }

    /// How long ago the primary first had WAL beyond `replayed`: zero when
    /// it had none at the last check; at least the age of the oldest sample
    /// when every sample is beyond it.
    fn lag(&self, replayed: u64, now: Instant) -> Duration {
        let samples = self.inner.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples
            .iter()
            .find(|(_, lsn)| *lsn > replayed)
            .map_or(Duration::ZERO, |(seen, _)| now.duration_since(*seen))
    }

    /// The next usable replica in turn, if any.
    pub(crate) fn pick(&self) -> Option<&Replica> {
        let replicas = &self.inner.replicas;
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        (0..replicas.len() as u64)
            .map(|i| &replicas[((start + i) % replicas.len() as u64) as usize])
            .find(|replica| replica.state() == ReplicaState::Up)
    }

    pub(crate) fn primary_answered(&self) {
        self.inner.primary_reads.fetch_add(1, Ordering::Relaxed);
    }
}

impl Replica {
    fn state(&self) -> ReplicaState {
        ReplicaState::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn set_state(&self, state: ReplicaState) -> ReplicaState {
        let code = match state {
            ReplicaState::Starting => 0,
            ReplicaState::Up => 1,
            ReplicaState::Lagging => 2,
            ReplicaState::Down => 3,
        };
        ReplicaState::from_u8(self.state.swap(code, Ordering::Relaxed))
    }

    /// A session on this replica that must be done by `deadline`.
    pub(crate) async fn session(&self, deadline: Instant) -> Result<Session, StorageError> {
        self.pool.session_until(deadline).await
    }

    pub(crate) fn answered(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// A read failed here and goes to the primary. A replica that could
    /// not be reached is skipped until a check finds it answering; one that
    /// answered with an error (a query cancelled by a recovery conflict,
    /// say) stays in turn.
    pub(crate) fn failed(&self, error: &StorageError) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        if error.is_unavailable() {
            let before = self.set_state(ReplicaState::Down);
            if before != ReplicaState::Down {
                tracing::warn!(
                    replica = %self.name,
                    error = %crate::error::chain(error),
                    "read replica unreachable; reading from the primary until it answers again"
                );
            }
        } else {
            tracing::warn!(
                replica = %self.name,
                error = %crate::error::chain(error),
                "a read failed on a replica; the primary answers it"
            );
        }
    }
}

/// A server's WAL position (and whether it is in recovery, for the
/// replicas' query), within `within`.
async fn position(pool: &PgPool, within: Duration, sql: &str) -> Result<(bool, u64), StorageError> {
    let session = pool.session_until(Instant::now() + within).await?;
    let client = session.client();
    let row = session.read(client.query_one(sql, &[])).await?;
    if row.len() == 1 {
        let lsn: i64 = row.try_get(0)?;
        Ok((false, u64::try_from(lsn).unwrap_or(0)))
    } else {
        let lsn: i64 = row.try_get(1)?;
        Ok((row.try_get(0)?, u64::try_from(lsn).unwrap_or(0)))
    }
}

/// `host:port/database` of a URL, for metrics and logs.
fn name_of(url: &str) -> Result<String, StorageError> {
    let config = tokio_postgres::Config::from_str(url).map_err(StorageError::InvalidUrl)?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("postgres");
    Ok(format!("{host}:{port}/{database}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(max_lag_ms: u64) -> Replicas {
        let config = StorageConfig {
            url: "postgres://u@primary:5432/db".into(),
            read_urls: vec![
                "postgres://u:secret@one:5433/db".into(),
                "postgres://u@two/db".into(),
            ],
            max_connections: 1,
            connect_timeout_ms: 1,
            acquire_timeout_ms: 1,
            statement_timeout_ms: 0,
            query_timeout_ms: 1,
            dead_connection_timeout_ms: 0,
            replica_max_lag_ms: max_lag_ms,
            replica_check_interval_ms: 100,
        };
        Replicas::connect(&config).expect("urls").expect("replicas")
    }

    #[tokio::test]
    async fn lag_is_how_long_ago_the_primary_first_had_wal_the_replica_lacks() {
        let replicas = replicas(1_000);
        let start = Instant::now();
        replicas.record(start, 100);
        replicas.record(start + Duration::from_millis(500), 200);
        replicas.record(start + Duration::from_millis(900), 300);
        let now = start + Duration::from_millis(1_000);
        // Everything the primary had at the last check: not behind.
        assert_eq!(replicas.lag(300, now), Duration::ZERO);
        assert_eq!(replicas.lag(350, now), Duration::ZERO);
        // Lacks what the primary had at 900 ms.
        assert_eq!(replicas.lag(250, now), Duration::from_millis(100));
        // Lacks what it had at 500 ms.
        assert_eq!(replicas.lag(100, now), Duration::from_millis(500));
        // Lacks even the oldest sample: at least that old.
        assert_eq!(replicas.lag(50, now), Duration::from_millis(1_000));
    }

    #[tokio::test]
    async fn only_replicas_found_up_are_picked_in_turn_and_names_hide_credentials() {
        let replicas = replicas(1_000);
        let names: Vec<String> = replicas.status().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["one:5433/db", "two:5432/db"]);
        // Unchecked: none picked.
        assert!(replicas.pick().is_none());
        let [one, two] = &replicas.inner.replicas[..] else {
            panic!("two replicas");
        };
        one.set_state(ReplicaState::Up);
        two.set_state(ReplicaState::Up);
        let picked: Vec<&str> = (0..4)
            .map(|_| replicas.pick().expect("one is up").name.as_str())
            .collect();
        // In turn: each one every other read.
        assert_ne!(picked[0], picked[1]);
        assert_eq!(picked[0], picked[2]);
        assert_eq!(picked[1], picked[3]);
        two.set_state(ReplicaState::Lagging);
        assert!((0..3).all(|_| replicas.pick().is_some_and(|r| r.name == "one:5433/db")));
        one.failed(&StorageError::Unavailable("gone".into()));
        assert!(replicas.pick().is_none());
        assert_eq!(replicas.status()[0].state, ReplicaState::Down);
        assert_eq!(replicas.status()[0].fallbacks, 1);
    }
}
