//! Live simulations: one per watched user, however many viewers and however
//! many server processes.
//!
//! Viewers register with [`Simulations::watch`]; the guard it returns counts
//! them. One driver per process ([`run_simulations`]) ticks every watched
//! user once per interval, starting at once when a user gains its first
//! viewer and stopping at the next tick after the last one leaves. Across
//! processes a Redis lease per user (`txwatch_cache::Leases`) decides which
//! process generates: the others only relay the events, which reach their
//! viewers through the shared event stream like any other transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use txwatch_cache::Leases;
use txwatch_domain::UserId;
use txwatch_simulator::{SimulatorConfig, UserSimulator};

use crate::error::ApiError;
use crate::hub::{EventHub, Notice};
use crate::pipeline::{IdOrigin, NewTransaction, Pipeline};

/// Who watches which user in this process; cheap to clone.
#[derive(Clone, Default)]
pub struct Simulations {
    inner: Arc<SimulationsInner>,
}

#[derive(Default)]
struct SimulationsInner {
    viewers: Mutex<HashMap<UserId, usize>>,
    changed: Notify,
}

/// One viewer of one user's simulation; leaving is dropping it.
pub struct WatchGuard {
    simulations: Simulations,
    user_id: UserId,
}

/// How the driver runs.
#[derive(Debug, Clone)]
pub struct SimulationSettings {
    /// Time between two transactions of one user.
    pub interval: Duration,
    /// How amounts are drawn.
    pub simulator: SimulatorConfig,
    /// This process's name in the per-user leases; unique per process.
    pub holder: String,
}

impl Simulations {
    /// Nobody watching anything yet.
    pub fn new() -> Simulations {
        Simulations::default()
    }

    /// Counts a viewer of `user_id` until the guard is dropped; the first
    /// viewer starts the user's simulation.
    pub fn watch(&self, user_id: UserId) -> WatchGuard {
        let first = {
            let mut viewers = self.viewers();
            let count = viewers.entry(user_id).or_insert(0);
            *count += 1;
            *count == 1
        };
        if first {
            self.inner.changed.notify_one();
        }
        WatchGuard {
            simulations: self.clone(),
            user_id,
        }
    }

    /// Viewers of `user_id` in this process.
    pub fn viewers_of(&self, user_id: UserId) -> usize {
        self.viewers().get(&user_id).copied().unwrap_or(0)
    }

    /// Users with at least one viewer in this process.
    pub fn watched(&self) -> Vec<UserId> {
        self.viewers().keys().copied().collect()
    }

    fn viewers(&self) -> MutexGuard<'_, HashMap<UserId, usize>> {
        // Counts stay consistent whatever a panicking holder was doing.
        self.inner
            .viewers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let last = {
            let mut viewers = self.simulations.viewers();
            match viewers.get_mut(&self.user_id) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                _ => {
                    viewers.remove(&self.user_id);
                    true
                }
            }
        };
        if last {
            self.simulations.inner.changed.notify_one();
        }
    }
}

/// A simulation this process keeps for a watched user.
struct Running {
    simulator: UserSimulator,
    next_due: Instant,
    held: bool,
}

/// Drives every watched user's simulation, forever: the one long-lived
/// simulation task of a process. Each tick generates one transaction per due
/// user whose lease this process holds and ingests them as one batch through
/// the pipeline; failures are told to that user's viewers as `event: error`
/// and the simulation carries on at the next tick. When `shutdown` is
/// cancelled it finishes the tick under way, gives up its leases (so another
/// process takes its users over at once) and returns.
pub async fn run_simulations(
    simulations: Simulations,
    pipeline: Pipeline,
    leases: Leases,
    hub: EventHub,
    settings: SimulationSettings,
    shutdown: CancellationToken,
) {
    let interval = settings.interval.max(Duration::from_millis(10));
    let mut running: HashMap<UserId, Running> = HashMap::new();
    loop {
        let watched = simulations.watched();
        let gone: Vec<UserId> = running
            .keys()
            .filter(|user_id| !watched.contains(user_id))
            .copied()
            .collect();
        let released: Vec<UserId> = gone
            .iter()
            .filter(|user_id| running.remove(user_id).is_some_and(|r| r.held))
            .copied()
            .collect();
        if !released.is_empty()
            && let Err(error) = leases.release(&released, &settings.holder).await
        {
            tracing::warn!(%error, "could not release simulation leases; they expire by themselves");
        }
        let now = Instant::now();
        for user_id in watched {
            running.entry(user_id).or_insert_with(|| Running {
                simulator: UserSimulator::new(
                    user_id,
                    settings.simulator.clone(),
                    uuid::Uuid::new_v4().as_u64_pair().0,
                ),
                next_due: now,
                held: false,
            });
        }

        let due: Vec<UserId> = running
            .iter()
            .filter(|(_, r)| r.next_due <= now)
            .map(|(user_id, _)| *user_id)
            .collect();
        if !due.is_empty() {
            tick(
                &mut running,
                &due,
                &pipeline,
                &leases,
                &hub,
                &settings.holder,
            )
            .await;
            let now = Instant::now();
            for user_id in &due {
                if let Some(r) = running.get_mut(user_id) {
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
    let held: Vec<UserId> = running
        .iter()
        .filter(|(_, r)| r.held)
        .map(|(user_id, _)| *user_id)
        .collect();
    if !held.is_empty()
        && let Err(error) = leases.release(&held, &settings.holder).await
    {
        tracing::warn!(%error, "could not release simulation leases; they expire by themselves");
    }
    tracing::info!(users = held.len(), "simulations stopped");
}

/// One round for the due users: take or renew their leases, then generate
/// and ingest for the ones this process holds.
async fn tick(
    running: &mut HashMap<UserId, Running>,
    due: &[UserId],
    pipeline: &Pipeline,
    leases: &Leases,
    hub: &EventHub,
    holder: &str,
) {
    let held = match leases.acquire_or_renew(due, holder).await {
        Ok(held) => held,
        Err(error) => {
            tracing::warn!(%error, users = due.len(), "simulation leases unavailable");
            pipeline.metrics().dependency_error("redis");
            hub.notify_users(due, unavailable_notice(&ApiError::from(error)));
            return;
        }
    };
    let now = OffsetDateTime::now_utc();
    let mut mine: Vec<UserId> = Vec::new();
    let mut items: Vec<NewTransaction> = Vec::new();
    for (user_id, held) in due.iter().zip(held) {
        let Some(r) = running.get_mut(user_id) else {
            continue;
        };
        r.held = held;
        if held {
            let t = r.simulator.next_at(now);
            mine.push(*user_id);
            items.push(NewTransaction {
                id: NewTransaction::generated_id(),
                id_origin: IdOrigin::Generated,
                user_id: t.user_id,
                amount: t.amount,
                currency: t.currency,
                txn_date: t.txn_date,
                status: t.status,
            });
        }
    }
    if items.is_empty() {
        return;
    }
    if let Err(error) = pipeline.ingest(items).await {
        tracing::warn!(%error, users = mine.len(), "simulated transactions not stored");
        if let Some(dependency) = error.dependency() {
            pipeline.metrics().dependency_error(dependency);
        }
        hub.notify_users(&mine, unavailable_notice(&error));
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
