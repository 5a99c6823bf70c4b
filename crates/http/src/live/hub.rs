//! Fan-out of live events to this process's SSE subscribers.
//!
//! Every process relays the shared Redis event stream ([`run_relay`]) into
//! its hub, so a transaction ingested through any process reaches the
//! subscribers of all of them. The hub routes each event to the channel of
//! its user (only streams of that user wake up) and to the channel of the
//! all-users stream. Channels are bounded broadcast channels: a subscriber
//! that falls behind is told so by the channel and catches up from the Redis
//! stream by event id (see `sse`), so it never silently skips events.
//!
//! A relay with no subscribers in its process reads no events: reading
//! every event back (its payload included) only to drop it cost about a
//! seventh of the server's CPU under a heavy ingest load. While idle it only
//! keeps its position at the stream's end (a one-entry `XREVRANGE` every
//! 100 ms, or at once when a subscriber arrives). It adopts the position it
//! read only if no subscriber registered since it found the hub idle. A
//! stream that registers later reads its starting position (a new stream)
//! or catches up from Redis (a resumed one) after registering (see `sse`),
//! so its position, or its catch-up, reaches at least the adopted one, and
//! the relay delivers everything after it. Nothing between a stream's start
//! and the live events is skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use txwatch_cache::{Event, EventId, EventLog};
use txwatch_domain::UserId;

use crate::ops::metrics::Metrics;

/// Most events one relay read takes at once.
const RELAY_BATCH: usize = 1000;
/// How long one blocking read waits before it asks again.
const RELAY_BLOCK: Duration = Duration::from_secs(1);
/// How often an idle relay (no subscribers here) moves its position to the
/// stream's end, so that the first subscriber's relay has little to read.
const IDLE_REFRESH: Duration = Duration::from_millis(100);

/// Something a subscriber receives.
#[derive(Debug, Clone)]
pub enum Live {
    /// A stored transaction.
    Event(Arc<Event>),
    /// Something subscribers should know, sent as `event: error`.
    Notice(Arc<Notice>),
}

/// A problem worth telling live subscribers about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// A stable snake_case code, as in error bodies.
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
}

/// This process's subscribers, by user; cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    users: Mutex<HashMap<UserId, broadcast::Sender<Live>>>,
    all: broadcast::Sender<Live>,
    /// Subscriptions made so far; only changed with `users` locked, so a
    /// reader holding the lock sees registrations and this count agree.
    registrations: AtomicU64,
    /// Wakes an idle relay when a subscriber arrives.
    arrivals: Notify,
    user_capacity: usize,
    metrics: Metrics,
}

/// Most events a user's channel buffers. A user's events are few (one per
/// simulation interval, plus what clients post), and a channel allocates its
/// whole capacity up front, once per watched user: thousands of watched
/// users at the all-users capacity would cost hundreds of megabytes. A
/// subscriber that overflows it catches up from Redis.
const USER_CHANNEL_CAPACITY: usize = 64;

/// A receiver of one user's events; unregisters the user's channel when the
/// last one is dropped.
pub struct UserSubscription {
    receiver: Option<broadcast::Receiver<Live>>,
    hub: EventHub,
    user_id: UserId,
}

impl EventHub {
    /// A hub whose all-users channel holds up to `capacity` events (at
    /// least one) per subscriber before it counts as fallen behind; a user's
    /// channel holds up to 64 of them, or `capacity` if that is smaller.
    /// What the hub and its subscribers do is recorded in `metrics`.
    pub fn new(capacity: usize, metrics: Metrics) -> EventHub {
        let capacity = capacity.max(1);
        let (all, _) = broadcast::channel(capacity);
        EventHub {
            inner: Arc::new(HubInner {
                users: Mutex::new(HashMap::new()),
                all,
                registrations: AtomicU64::new(0),
                arrivals: Notify::new(),
                user_capacity: capacity.min(USER_CHANNEL_CAPACITY),
                metrics,
            }),
        }
    }

    /// Where the hub and its subscribers record what they do.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Subscribes to one user's events.
    pub fn subscribe_user(&self, user_id: UserId) -> UserSubscription {
        let mut users = self.users();
        let receiver = users
            .entry(user_id)
            .or_insert_with(|| broadcast::channel(self.inner.user_capacity).0)
            .subscribe();
        self.registered(users);
        UserSubscription {
            receiver: Some(receiver),
            hub: self.clone(),
            user_id,
        }
    }

    /// Subscribes to every user's events.
    pub fn subscribe_all(&self) -> broadcast::Receiver<Live> {
        let users = self.users();
        let receiver = self.inner.all.subscribe();
        self.registered(users);
        receiver
    }

    /// Counts a registration made under `users`, then wakes the relay.
    fn registered(&self, users: MutexGuard<'_, HashMap<UserId, broadcast::Sender<Live>>>) {
        self.inner.registrations.fetch_add(1, Ordering::Relaxed);
        drop(users);
        self.inner.arrivals.notify_one();
    }

    /// When nobody here subscribes to anything: the registrations counted
    /// so far, for [`unchanged_since`](Self::unchanged_since).
    fn idle_since(&self) -> Option<u64> {
        let users = self.users();
        (users.is_empty() && self.inner.all.receiver_count() == 0)
            .then(|| self.inner.registrations.load(Ordering::Relaxed))
    }

    /// Whether no subscriber registered since [`idle_since`](Self::idle_since)
    /// answered `registrations`.
    fn unchanged_since(&self, registrations: u64) -> bool {
        let _users = self.users();
        self.inner.registrations.load(Ordering::Relaxed) == registrations
    }

    /// Delivers events (in stream order) to their subscribers.
    pub fn dispatch(&self, events: Vec<Event>) {
        let users = self.users();
        let anyone_on_all = self.inner.all.receiver_count() > 0;
        for event in events {
            let sender = users.get(&event.user_id);
            if sender.is_none() && !anyone_on_all {
                continue;
            }
            let live = Live::Event(Arc::new(event));
            if let Some(sender) = sender {
                // An error only means every receiver left meanwhile.
                let _ = sender.send(live.clone());
            }
            if anyone_on_all {
                let _ = self.inner.all.send(live);
            }
        }
    }

    /// Tells every subscriber.
    pub fn notify_all(&self, notice: Notice) {
        let live = Live::Notice(Arc::new(notice));
        for sender in self.users().values() {
            let _ = sender.send(live.clone());
        }
        let _ = self.inner.all.send(live);
    }

    /// Tells the subscribers of these users.
    pub fn notify_users(&self, user_ids: &[UserId], notice: Notice) {
        let live = Live::Notice(Arc::new(notice));
        let users = self.users();
        for user_id in user_ids {
            if let Some(sender) = users.get(user_id) {
                let _ = sender.send(live.clone());
            }
        }
    }

    /// How many users have at least one subscriber here.
    pub fn watched_users(&self) -> usize {
        self.users().len()
    }

    fn users(&self) -> MutexGuard<'_, HashMap<UserId, broadcast::Sender<Live>>> {
        // The map stays consistent whatever a panicking holder was doing:
        // every change is a single insert or remove.
        self.inner
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl UserSubscription {
    /// The receiving end.
    pub fn receiver(&mut self) -> &mut broadcast::Receiver<Live> {
        self.receiver
            .as_mut()
            .expect("the receiver is only taken when the subscription is dropped")
    }
}

impl Drop for UserSubscription {
    fn drop(&mut self) {
        let mut users = self.hub.users();
        drop(self.receiver.take());
        if users
            .get(&self.user_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            users.remove(&self.user_id);
        }
    }
}

/// Relays the shared event stream into `hub`, forever: the one long-lived
/// reader of each process. When Redis is unreachable it tells every
/// subscriber once and keeps trying; when Redis comes back it continues
/// after the last event it relayed.
pub async fn run_relay(hub: EventHub, log: EventLog) {
    let mut after: Option<EventId> = None;
    let mut down = false;
    let mut pause = Duration::from_millis(100);
    loop {
        let idle = hub.idle_since();
        let result = match (after, idle) {
            // Start at the stream's end: a fresh process owes no one history.
            (None, _) => log
                .last_id()
                .await
                .map(|last| after = Some(last.unwrap_or(EventId::ZERO))),
            // Nobody here to deliver to: follow the stream's end without
            // reading its events (see the module docs for why adopting the
            // position only when no one registered meanwhile loses nothing).
            (Some(_), Some(registrations)) => log.last_id().await.map(|last| {
                if hub.unchanged_since(registrations) {
                    after = Some(last.unwrap_or(EventId::ZERO));
                }
            }),
            (Some(position), None) => log
                .read_after(position, RELAY_BATCH, Some(RELAY_BLOCK))
                .await
                .map(|events| {
                    if let Some(last) = events.last() {
                        after = Some(last.id);
                    }
                    hub.dispatch(events);
                }),
        };
        match result {
            Ok(()) => {
                if down {
                    tracing::info!("event stream reachable again");
                    down = false;
                    pause = Duration::from_millis(100);
                }
            }
            Err(error) => {
                if !down {
                    hub.metrics().dependency_error("redis");
                    tracing::warn!(%error, "event stream unreachable; live events paused");
                    hub.notify_all(Notice {
                        code: "service_unavailable",
                        message: "live events are paused: redis is unreachable; \
                                  they resume by themselves when it is back"
                            .to_owned(),
                    });
                    down = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        }
        if idle.is_some() {
            // A permit left by an arrival since the check ends this at once.
            let _ = tokio::time::timeout(IDLE_REFRESH, hub.inner.arrivals.notified()).await;
        }
    }
}
