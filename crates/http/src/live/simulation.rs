//! Live simulations: one simulated feed per connection, as the old service
//! had.
//!
//! Each connection to `GET /sse/transactions/{user_id}` that may simulate
//! (the simulation is on, and the API key was sent when one is set) starts
//! a feed of its own with [`Simulations::start`] and receives that feed's
//! transactions; dropping the returned [`FeedGuard`] (the connection ended)
//! stops it. A feed therefore lives in the process that holds its
//! connection, and processes need not agree on anything: two connections
//! of one user, on one process or two, drive two feeds, exactly as two
//! connections to the old service did.
//!
//! One driver per process ([`run_simulations`]) ticks every feed once per
//! interval, starting a new feed at once, and puts the due feeds'
//! transactions through the pipeline as one batch. Each is marked with its
//! feed ([`NewTransaction::feed`]): the pipeline judges simulated
//! transactions against the user's simulated window only, stores them as
//! simulated, and tags their events with the feed, which is how the feed's
//! connection (and a reconnection resuming it) picks them out of the
//! user's events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use txwatch_cache::FeedId;
use txwatch_domain::UserId;
use txwatch_simulator::{SimulatorConfig, UserSimulator};

use crate::api::error::ApiError;
use crate::live::hub::{EventHub, Notice};
use crate::live::pipeline::{IdOrigin, NewTransaction, Pipeline};

/// The feeds of this process; cheap to clone.
#[derive(Clone, Default)]
pub struct Simulations {
    inner: Arc<SimulationsInner>,
}

#[derive(Default)]
struct SimulationsInner {
    /// Every running feed and whose transactions it makes.
    feeds: Mutex<HashMap<FeedId, UserId>>,
    /// Wakes the driver when a feed starts or stops.
    changed: Notify,
}

/// One running feed; dropping it stops the feed.
pub struct FeedGuard {
    simulations: Simulations,
    feed: FeedId,
}

/// How the driver runs.
#[derive(Debug, Clone)]
pub struct SimulationSettings {
    /// Time between two transactions of one feed.
    pub interval: Duration,
    /// How amounts are drawn.
    pub simulator: SimulatorConfig,
}

impl Simulations {
    /// No feeds yet.
    pub fn new() -> Simulations {
        Simulations::default()
    }

    /// Starts a feed of `user_id`'s transactions, under a fresh id, until
    /// the guard is dropped.
    pub fn start(&self, user_id: UserId) -> FeedGuard {
        let feed = {
            let mut feeds = self.feeds();
            let feed = loop {
                // Random, so feeds of different processes do not collide.
                let feed = FeedId(uuid::Uuid::new_v4().as_u64_pair().0);
                if !feeds.contains_key(&feed) {
                    break feed;
                }
            };
            feeds.insert(feed, user_id);
            feed
        };
        self.inner.changed.notify_one();
        FeedGuard {
            simulations: self.clone(),
            feed,
        }
    }

    /// How many feeds run in this process.
    pub fn running(&self) -> usize {
        self.feeds().len()
    }

    fn feeds(&self) -> MutexGuard<'_, HashMap<FeedId, UserId>> {
        // Every change is a single insert or remove: the map stays
        // consistent whatever a panicking holder was doing.
        self.inner
            .feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl FeedGuard {
    /// The feed's id, which tags its transactions' events.
    pub fn feed(&self) -> FeedId {
        self.feed
    }
}

impl Drop for FeedGuard {
    fn drop(&mut self) {
        self.simulations.feeds().remove(&self.feed);
        self.simulations.inner.changed.notify_one();
    }
}

/// A feed this process drives.
struct Running {
    user_id: UserId,
    simulator: UserSimulator,
    next_due: Instant,
}

/// Drives every feed of this process, forever: the one long-lived
/// simulation task of a process. Each tick generates one transaction per
/// due feed and ingests them as one batch through the pipeline; a failure
/// is told to the users' streams as `event: error` and the feeds carry on
/// at the next tick. When `shutdown` is cancelled it finishes the tick
/// under way and returns.
pub async fn run_simulations(
    simulations: Simulations,
    pipeline: Pipeline,
    hub: EventHub,
    settings: SimulationSettings,
    shutdown: CancellationToken,
) {
    let interval = settings.interval.max(Duration::from_millis(10));
    let mut running: HashMap<FeedId, Running> = HashMap::new();
    loop {
        let feeds: HashMap<FeedId, UserId> = simulations.feeds().clone();
        running.retain(|feed, _| feeds.contains_key(feed));
        let now = Instant::now();
        for (feed, user_id) in feeds {
            running.entry(feed).or_insert_with(|| Running {
                user_id,
                simulator: UserSimulator::new(
                    user_id,
                    settings.simulator.clone(),
                    uuid::Uuid::new_v4().as_u64_pair().0,
                ),
                next_due: now,
            });
        }

        let due: Vec<FeedId> = running
            .iter()
            .filter(|(_, r)| r.next_due <= now)
            .map(|(feed, _)| *feed)
            .collect();
        if !due.is_empty() {
            tick(&mut running, &due, &pipeline, &hub).await;
            let now = Instant::now();
            for feed in &due {
                if let Some(r) = running.get_mut(feed) {
                    r.next_due += interval;
                    // After a stall, carry on from now rather than catch up.
                    if r.next_due <= now {
                        r.next_due = now + interval;
                    }
                }
            }
        }

        let next_due = running.values().map(|r| r.next_due).min();
        let changed = simulations.inner.changed.notified();
        let wait = async {
            match next_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = changed => {}
            () = wait => {}
        }
    }
    tracing::info!(feeds = running.len(), "simulations stopped");
}

/// One round: a transaction for each due feed, ingested as one batch.
async fn tick(
    running: &mut HashMap<FeedId, Running>,
    due: &[FeedId],
    pipeline: &Pipeline,
    hub: &EventHub,
) {
    let now = OffsetDateTime::now_utc();
    let mut users: Vec<UserId> = Vec::with_capacity(due.len());
    let mut items: Vec<NewTransaction> = Vec::with_capacity(due.len());
    for feed in due {
        let Some(r) = running.get_mut(feed) else {
            continue;
        };
        let t = r.simulator.next_at(now);
        users.push(r.user_id);
        items.push(NewTransaction {
            // The simulator's own UUIDv7, stamped with the transaction's date.
            id: t.id,
            id_origin: IdOrigin::Generated,
            user_id: t.user_id,
            amount: t.amount,
            currency: t.currency,
            txn_date: t.txn_date,
            status: t.status,
            feed: Some(*feed),
        });
    }
    if items.is_empty() {
        return;
    }
    if let Err(error) = pipeline.ingest(items).await {
        tracing::warn!(%error, feeds = users.len(), "simulated transactions not stored");
        if let Some(dependency) = error.dependency() {
            pipeline.metrics().dependency_error(dependency);
        }
        users.sort_unstable();
        users.dedup();
        hub.notify_users(&users, unavailable_notice(&error));
    }
}

fn unavailable_notice(error: &ApiError) -> Notice {
    // Whether a simulated transaction got stored is no question for a
    // viewer, who only sees the feed pause: the database stopped answering.
    if matches!(error, ApiError::OutcomeUnknown(_)) {
        return Notice {
            code: "service_unavailable",
            message: "the live simulation paused: the database did not answer; \
                      it resumes by itself"
                .to_owned(),
        };
    }
    Notice {
        code: error.code(),
        message: format!("the live simulation paused: {error}; it resumes by itself"),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn each_start_is_a_feed_of_its_own_until_its_guard_is_dropped() {
        let simulations = Simulations::new();
        let user = UserId(Uuid::from_u128(7));
        let first = simulations.start(user);
        let second = simulations.start(user);
        assert_ne!(first.feed(), second.feed());
        assert_eq!(simulations.running(), 2);
        drop(first);
        assert_eq!(simulations.running(), 1);
        assert_eq!(simulations.feeds().get(&second.feed()).copied(), Some(user));
        drop(second);
        assert_eq!(simulations.running(), 0);
    }
}
