//! Fan-out of live events to this process's SSE subscribers.
//!
//! Every process relays the shared Redis event shards ([`run_relay`]) into
//! its hub, so a transaction ingested through any process reaches the
//! subscribers of all of them. The hub routes each event to the channel of
//! its user (only streams of that user wake up) and to the channel of the
//! all-users stream. Channels are bounded broadcast channels: a subscriber
//! that falls behind is told so by the channel and catches up from Redis
//! by event id (see `sse`), so it never silently skips events.
//!
//! The relay reads only the shards this process's subscribers need: a
//! user's subscriber needs the user's shard, an all-users subscriber every
//! shard. A shard nobody here needs is not read at all, not even its end:
//! a process with no subscribers sends Redis nothing. Reading every event
//! back only to drop it cost about a seventh of the server's CPU under a
//! heavy ingest load.
//!
//! Nothing between a stream's start and the live events is skipped. A
//! subscriber registers first ([`EventHub::subscribe_user`],
//! [`EventHub::subscribe_all`]), then reads its starting position in each
//! shard it needs, then reports it ([`Registered::started`]). A shard's
//! relay starts reading when it is first needed, from the lowest position
//! reported so far (or, when none was, from the end it reads itself), and
//! the hub remembers that start until nobody needs the shard again. Every
//! event after a start the relay reads after the subscriber registered
//! (its position was read after registering), so a subscriber whose
//! position is at or after the relay's start gets everything after it
//! live. One whose position lies before it (it read its position before
//! another subscriber's, and reported after the relay started) is told so
//! by `started` and catches up from Redis from its position first, as a
//! resumed stream does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use txwatch_cache::{Event, EventId, EventLog, shard_of};
use txwatch_domain::UserId;

use crate::ops::metrics::Metrics;

/// Most events one relay read takes at once (from each shard).
const RELAY_BATCH: usize = 1000;
/// How long one blocking read waits before it asks again.
const RELAY_BLOCK: Duration = Duration::from_secs(1);

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
    state: Mutex<HubState>,
    all: broadcast::Sender<Live>,
    /// Per shard: wakes its relay when it may need reading.
    wakes: Vec<Notify>,
    shards: usize,
    user_capacity: usize,
    metrics: Metrics,
}

/// What the hub's lock guards.
struct HubState {
    users: HashMap<UserId, broadcast::Sender<Live>>,
    shards: Vec<ShardState>,
}

/// Who needs one shard, and where its relay started.
#[derive(Debug, Default, Clone, Copy)]
struct ShardState {
    /// Subscriptions that need this shard.
    interest: usize,
    /// The lowest position reported since the relay last stopped reading
    /// the shard.
    offer: Option<EventId>,
    /// Where the relay started reading the shard, while it reads it.
    start: Option<EventId>,
    /// A subscriber could not read its position: the relay starts at the
    /// end it reads itself.
    needs_end: bool,
}

/// Most events a user's channel buffers. A user's events are few (one per
/// simulation interval, plus what clients post), and a channel allocates its
/// whole capacity up front, once per watched user: thousands of watched
/// users at the all-users capacity would cost hundreds of megabytes. A
/// subscriber that overflows it catches up from Redis.
const USER_CHANNEL_CAPACITY: usize = 64;

/// A subscription's place in the hub: the shards it needs; unregisters on
/// drop.
pub struct Registered {
    hub: EventHub,
    /// `None`: every shard.
    user_id: Option<UserId>,
}

/// A receiver of one user's events; unregisters the user's channel when the
/// last one is dropped.
pub struct UserSubscription {
    receiver: Option<broadcast::Receiver<Live>>,
    registered: Registered,
}

/// A receiver of every user's events.
pub struct AllSubscription {
    receiver: broadcast::Receiver<Live>,
    registered: Registered,
}

impl EventHub {
    /// A hub for an event log of `shards` shards (at least one) whose
    /// all-users channel holds up to `capacity` events (at least one) per
    /// subscriber before it counts as fallen behind; a user's channel holds
    /// up to 64 of them, or `capacity` if that is smaller. What the hub and
    /// its subscribers do is recorded in `metrics`.
    pub fn new(capacity: usize, shards: usize, metrics: Metrics) -> EventHub {
        let capacity = capacity.max(1);
        let shards = shards.max(1);
        let (all, _) = broadcast::channel(capacity);
        EventHub {
            inner: Arc::new(HubInner {
                state: Mutex::new(HubState {
                    users: HashMap::new(),
                    shards: vec![ShardState::default(); shards],
                }),
                all,
                wakes: (0..shards).map(|_| Notify::new()).collect(),
                shards,
                user_capacity: capacity.min(USER_CHANNEL_CAPACITY),
                metrics,
            }),
        }
    }

    /// Where the hub and its subscribers record what they do.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// How many event shards the hub relays.
    pub fn shards(&self) -> usize {
        self.inner.shards
    }

    /// Subscribes to one user's events. Report the starting position with
    /// [`Registered::started`].
    pub fn subscribe_user(&self, user_id: UserId) -> UserSubscription {
        let mut state = self.state();
        let receiver = state
            .users
            .entry(user_id)
            .or_insert_with(|| broadcast::channel(self.inner.user_capacity).0)
            .subscribe();
        let shard = shard_of(user_id, self.inner.shards);
        state.shards[shard].interest += 1;
        drop(state);
        UserSubscription {
            receiver: Some(receiver),
            registered: Registered {
                hub: self.clone(),
                user_id: Some(user_id),
            },
        }
    }

    /// Subscribes to every user's events. Report the starting positions
    /// with [`Registered::started`].
    pub fn subscribe_all(&self) -> AllSubscription {
        let mut state = self.state();
        let receiver = self.inner.all.subscribe();
        for shard in &mut state.shards {
            shard.interest += 1;
        }
        drop(state);
        AllSubscription {
            receiver,
            registered: Registered {
                hub: self.clone(),
                user_id: None,
            },
        }
    }

    /// Delivers events (in stream order within each shard) to their
    /// subscribers.
    pub fn dispatch(&self, events: Vec<Event>) {
        let state = self.state();
        let anyone_on_all = self.inner.all.receiver_count() > 0;
        for event in events {
            let sender = state.users.get(&event.user_id);
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
        for sender in self.state().users.values() {
            let _ = sender.send(live.clone());
        }
        let _ = self.inner.all.send(live);
    }

    /// Tells the subscribers of these users.
    pub fn notify_users(&self, user_ids: &[UserId], notice: Notice) {
        let live = Live::Notice(Arc::new(notice));
        let state = self.state();
        for user_id in user_ids {
            if let Some(sender) = state.users.get(user_id) {
                let _ = sender.send(live.clone());
            }
        }
    }

    /// How many users have at least one subscriber here.
    pub fn watched_users(&self) -> usize {
        self.state().users.len()
    }

    /// The relay's next reads: for each shard someone needs, where to read
    /// from (`None`: the relay must find the shard's end first); a shard
    /// whose subscribers have not reported a position yet is left out.
    /// Forgets the position of shards nobody needs any more.
    fn plan(
        &self,
        shards: &[usize],
        positions: &mut [Option<EventId>],
    ) -> Vec<(usize, Option<EventId>)> {
        let mut state = self.state();
        let mut plan = Vec::new();
        for &shard in shards {
            let (state, position) = (&mut state.shards[shard], &mut positions[shard]);
            if state.interest == 0 {
                *position = None;
                *state = ShardState::default();
                continue;
            }
            if position.is_none()
                && let Some(offer) = state.offer.take()
            {
                *position = Some(offer);
                state.start = Some(offer);
            }
            if position.is_some() || state.needs_end {
                plan.push((shard, *position));
            }
        }
        plan
    }

    /// Starts the relay of `shard` at its end, `end`, unless a subscriber
    /// reported a position meanwhile (then that is used at the next plan).
    fn start_at_end(&self, shard: usize, end: EventId, position: &mut Option<EventId>) {
        let mut state = self.state();
        let state = &mut state.shards[shard];
        if state.interest > 0 && state.offer.is_none() && state.start.is_none() {
            *position = Some(end);
            state.start = Some(end);
            state.needs_end = false;
        }
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        // The state stays consistent whatever a panicking holder was doing:
        // every change is a few counters and a map entry under one lock.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registered {
    /// Reports where the subscriber starts in each shard it needs (the
    /// user's shard; every shard, in order, for an all-users subscriber),
    /// read after subscribing; `None` when it could not be read (Redis
    /// down: the subscriber takes whatever comes). Answers the shards whose
    /// relay started after the subscriber's position there: the subscriber
    /// must catch up from Redis from its position in those before it takes
    /// their live events.
    pub fn started(&self, positions: &[(usize, Option<EventId>)]) -> Vec<usize> {
        let mut behind = Vec::new();
        // Only a shard the relay does not read yet is worth waking it for:
        // a wake cuts its blocking read short.
        let mut wake = Vec::new();
        let mut state = self.hub.state();
        for &(shard, position) in positions {
            let shard_state = &mut state.shards[shard];
            match (shard_state.start, position) {
                (Some(start), Some(position)) if position < start => behind.push(shard),
                (Some(_), _) => {}
                (None, None) => {
                    shard_state.needs_end = true;
                    wake.push(shard);
                }
                (None, Some(position)) => {
                    shard_state.offer = Some(
                        shard_state
                            .offer
                            .map_or(position, |offer| offer.min(position)),
                    );
                    wake.push(shard);
                }
            }
        }
        drop(state);
        for shard in wake {
            self.hub.inner.wakes[shard].notify_one();
        }
        behind
    }

    /// The shards this subscription needs.
    pub fn shards(&self) -> Vec<usize> {
        match self.user_id {
            Some(user_id) => vec![shard_of(user_id, self.hub.inner.shards)],
            None => (0..self.hub.inner.shards).collect(),
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let shards = self.shards();
        let mut state = self.hub.state();
        for shard in shards {
            state.shards[shard].interest -= 1;
        }
    }
}

impl AllSubscription {
    /// The receiving end.
    pub fn receiver(&mut self) -> &mut broadcast::Receiver<Live> {
        &mut self.receiver
    }

    /// Its place in the hub.
    pub fn registered(&self) -> &Registered {
        &self.registered
    }
}

impl UserSubscription {
    /// The receiving end.
    pub fn receiver(&mut self) -> &mut broadcast::Receiver<Live> {
        self.receiver
            .as_mut()
            .expect("the receiver is only taken when the subscription is dropped")
    }

    /// Its place in the hub.
    pub fn registered(&self) -> &Registered {
        &self.registered
    }
}

impl Drop for UserSubscription {
    fn drop(&mut self) {
        let Some(user_id) = self.registered.user_id else {
            return;
        };
        let mut state = self.registered.hub.state();
        drop(self.receiver.take());
        if state
            .users
            .get(&user_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            state.users.remove(&user_id);
        }
    }
}

/// Relays the event shards this process's subscribers need into `hub`,
/// forever: the one long-lived reader of each process (see the module
/// docs). On one Redis one loop reads every shard needed with one blocking
/// read; on a cluster, where a command reaches one slot, one loop per
/// shard. When Redis is unreachable it tells every subscriber and keeps
/// trying; when Redis comes back it continues after the last event it
/// relayed.
pub async fn run_relay(hub: EventHub, log: EventLog) {
    let groups: Vec<Vec<usize>> = if log.is_cluster() {
        (0..hub.shards()).map(|shard| vec![shard]).collect()
    } else {
        vec![(0..hub.shards()).collect()]
    };
    let relays = groups
        .into_iter()
        .map(|shards| relay_shards(hub.clone(), log.clone(), shards));
    futures_util::future::join_all(relays).await;
}

/// Waits until one of `shards` may need reading.
async fn woken(hub: &EventHub, shards: &[usize]) {
    let wakes = shards
        .iter()
        .map(|&shard| Box::pin(hub.inner.wakes[shard].notified()));
    futures_util::future::select_all(wakes).await;
}

/// The relay of some shards; see [`run_relay`].
async fn relay_shards(hub: EventHub, log: EventLog, shards: Vec<usize>) {
    let mut positions: Vec<Option<EventId>> = vec![None; hub.shards()];
    let mut down = false;
    let mut pause = Duration::from_millis(100);
    loop {
        let plan = hub.plan(&shards, &mut positions);
        if plan.is_empty() {
            // Nobody here to deliver to: read nothing until someone comes.
            woken(&hub, &shards).await;
            continue;
        }
        let unknown: Vec<usize> = plan
            .iter()
            .filter(|(_, position)| position.is_none())
            .map(|&(shard, _)| shard)
            .collect();
        let result = if unknown.is_empty() {
            let reads: Vec<(usize, EventId)> = plan
                .iter()
                .filter_map(|&(shard, position)| Some((shard, position?)))
                .collect();
            // A subscriber reporting a start for a shard not read yet cuts
            // the wait short (nothing is lost: the read consumes nothing).
            tokio::select! {
                read = log.read_shards(&reads, RELAY_BATCH, Some(RELAY_BLOCK)) => read.map(|events| {
                    for event in &events {
                        positions[event.shard] = Some(event.id);
                    }
                    hub.dispatch(events);
                }),
                () = woken(&hub, &shards) => Ok(()),
            }
        } else {
            // Subscribers that could not read their start: begin at the end.
            log.last_ids(&unknown).await.map(|ends| {
                for (shard, end) in unknown.iter().zip(ends) {
                    hub.start_at_end(*shard, end.unwrap_or(EventId::ZERO), &mut positions[*shard]);
                }
            })
        };
        match result {
            Ok(()) => {
                if down {
                    tracing::info!(?shards, "event stream reachable again");
                    down = false;
                    pause = Duration::from_millis(100);
                }
            }
            Err(error) => {
                if !down {
                    hub.metrics().dependency_error("redis");
                    tracing::warn!(%error, ?shards, "event stream unreachable; live events paused");
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
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn id(ms: u64) -> Option<EventId> {
        Some(EventId { ms, seq: 0 })
    }

    fn hub() -> EventHub {
        EventHub::new(16, 8, Metrics::new())
    }

    #[test]
    fn the_relay_reads_only_the_shards_subscribers_need_and_none_when_idle() {
        let hub = hub();
        let mut positions = vec![None; 8];
        let all_shards: Vec<usize> = (0..8).collect();
        assert!(hub.plan(&all_shards, &mut positions).is_empty());

        let user = UserId(Uuid::from_u128(42));
        let shard = shard_of(user, 8);
        let subscription = hub.subscribe_user(user);
        // Registered but no position reported yet: nothing to read from.
        assert!(hub.plan(&all_shards, &mut positions).is_empty());
        assert!(
            subscription
                .registered()
                .started(&[(shard, id(10))])
                .is_empty()
        );
        assert_eq!(hub.plan(&all_shards, &mut positions), [(shard, id(10))]);

        let all = hub.subscribe_all();
        let offers: Vec<_> = (0..8).map(|shard| (shard, id(20))).collect();
        // Its position in the shard read already lies after the relay's start.
        assert!(all.registered().started(&offers).is_empty());
        let plan = hub.plan(&all_shards, &mut positions);
        assert_eq!(plan.len(), 8);
        assert_eq!(plan[shard], (shard, id(10)));

        drop(all);
        assert_eq!(hub.plan(&all_shards, &mut positions), [(shard, id(10))]);
        drop(subscription);
        assert!(hub.plan(&all_shards, &mut positions).is_empty());
        assert!(positions.iter().all(Option::is_none));
    }

    #[test]
    fn a_subscriber_behind_the_relay_s_start_is_told_to_catch_up() {
        let hub = hub();
        let mut positions = vec![None; 8];
        let user = UserId(Uuid::from_u128(7));
        let shard = shard_of(user, 8);
        let first = hub.subscribe_user(user);
        let second = hub.subscribe_user(user);
        assert!(first.registered().started(&[(shard, id(50))]).is_empty());
        assert_eq!(hub.plan(&[shard], &mut positions), [(shard, id(50))]);
        // It read its position before the first one did, and reports after
        // the relay started: it must read 40..50 itself.
        assert_eq!(second.registered().started(&[(shard, id(40))]), [shard]);
        assert!(second.registered().started(&[(shard, id(60))]).is_empty());
    }

    #[test]
    fn subscribers_without_a_position_let_the_relay_start_at_the_end() {
        let hub = hub();
        let mut positions = vec![None; 8];
        let user = UserId(Uuid::from_u128(9));
        let shard = shard_of(user, 8);
        let subscription = hub.subscribe_user(user);
        assert!(
            subscription
                .registered()
                .started(&[(shard, None)])
                .is_empty()
        );
        assert_eq!(hub.plan(&[shard], &mut positions), [(shard, None)]);
        hub.start_at_end(shard, EventId { ms: 5, seq: 1 }, &mut positions[shard]);
        assert_eq!(
            hub.plan(&[shard], &mut positions),
            [(shard, Some(EventId { ms: 5, seq: 1 }))]
        );
    }
}
