//! Server-Sent Event streams.
//!
//! Each transaction is a default (unnamed) event whose `data:` is one
//! Transaction JSON. On a stream of one user its `id:` is its entry id in
//! the user's event shard (`<ms>-<seq>`); on the all-users stream it is a
//! position in every shard (`position`). A comment goes out at once and every 15 s; problems go out as
//! `event: error` with `{"error": code, "message": ...}`.
//!
//! Resuming: a client that sends `Last-Event-ID` (browsers do when they
//! reconnect) first gets every matching event after that id still kept in
//! the stream, in order, then live ones; ids at or before the last one sent
//! are skipped, so nothing arrives twice. A subscriber that falls behind the
//! live channel catches up the same way. When the events after its position
//! are no longer kept, it is told with `event: error` (`events_expired`).
//! An id that no stream of ours can have issued (further in the future than
//! clocks drift) is refused with 422 `invalid_event_id`; one newer than every
//! event kept but not in the future (Redis lost its stream, say after a
//! restart) is answered with `event: error` (`events_lost`) and the stream goes
//! on from the newest event: a browser's `EventSource` never reconnects after a
//! refusal, so only ids that cannot be ours are refused.
//!
//! `GET /sse/transactions/{user_id}` with the simulation on is a feed
//! stream: the connection drives a simulated feed of its own (see
//! `simulation`) and receives exactly that feed's transactions, as each
//! connection to the old service did; its event ids carry the feed
//! (`<ms>-<seq>.<feed>`), so a reconnection with `Last-Event-ID` first
//! gets what the old feed published after that id (up to the moment the
//! server noticed the disconnect, when the old feed stopped), then its own
//! new feed's. Without the simulation (or without the API key when one is
//! set) the route streams the user's real transactions and writes
//! nothing.
//!
//! A process holds at most `http.max_streams` streams ([`StreamSlots`]); one
//! more answers 503 `too_many_streams`. A stream whose client closes the
//! connection ends at once, giving its place back (`crate::sse::hangup`). When the server shuts down, every
//! stream sends `event: error` (`shutting_down`) and ends, so clients
//! reconnect (to another process behind the load balancer) and resume by
//! id.

pub(crate) mod hangup;
mod position;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, Responder};
use actix_web_lab::sse::{self, Sse};
use futures_util::StreamExt;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use txwatch_cache::{Event, EventId, EventLog, FeedId};
use txwatch_domain::UserId;

use crate::api::error::{ApiError, echo};
use crate::live::hub::{AllSubscription, Live, Notice, Registered, UserSubscription};
use crate::live::simulation::FeedGuard;
use crate::ops::metrics::Metrics;
use crate::sse::hangup::Hangup;
use crate::state::AppState;

/// Comment period, as the old service.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);
/// Events read from each event shard per catch-up read.
const REPLAY_CHUNK: usize = 200;
/// How far past the newest event and this process's clock a `Last-Event-ID`
/// may lie and still be taken for ours: Redis stamps ids with its own clock,
/// which may run somewhat ahead of this process's.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// `GET /sse/transactions/{user_id}`: with the simulation on (and the API
/// key, when one is set), a simulated feed of this connection's own and
/// nothing else; otherwise the user's real transactions.
#[utoipa::path(
    get,
    path = "/sse/transactions/{user_id}",
    tag = "live",
    operation_id = "stream_user_transactions",
    summary = "Live transactions of one user: this connection's own simulated feed",
    description = crate::api::openapi::USER_STREAM_DESCRIPTION,
    params(
        ("user_id" = uuid::Uuid, Path, description = "Whose transactions."),
        crate::api::openapi::ResumeHeader,
    ),
    security((), ("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, response = crate::api::openapi::EventStream),
        (status = 422, description = "`user_id` is not a UUID (`invalid_parameter`) or \
                                      `Last-Event-ID` is not an id of ours, or lies in the \
                                      future (`invalid_event_id`).",
         body = crate::api::openapi::ErrorBody),
        (status = 503, response = crate::api::openapi::Unavailable),
    ),
)]
pub(crate) async fn user_stream(
    state: Data<AppState>,
    user_id: Path<String>,
    request: HttpRequest,
) -> Result<impl Responder, ApiError> {
    let user_id: UserId = user_id.parse().map_err(|e| {
        ApiError::invalid(
            "user_id",
            format!("`{}` is not a UUID: {e}", echo(&user_id)),
        )
    })?;
    let resume = last_event_id(&request)?;
    let simulate = state.simulation_enabled && state.may_write(request.headers());
    let slot = open_slot(&state, "user")?;
    // Subscribed before the position is read, and the position read before
    // the feed starts: its first event comes after both (`start_position`).
    let source = Source::User(state.hub.subscribe_user(user_id));
    let shard = state.events.shard_of(user_id);
    if !simulate {
        let start = start_user(&state.events, shard, resume.map(|r| r.at)).await?;
        let filter = Filter {
            user_id: Some(user_id),
            anomalies_only: false,
            origin: OriginFilter::Real,
        };
        return Ok(respond(
            Feed::new(source, filter, start, &state, slot, None),
            Hangup::watch(&request),
        ));
    }
    let mut start = start_user(&state.events, shard, resume.map(|r| r.at)).await?;
    // Only a feed's own id is worth resuming: the events after it that
    // this stream sends are that feed's. Another id (checked all the same)
    // starts afresh.
    let resumed = resume.and_then(|r| r.feed);
    if resumed.is_none() && start.resumed() {
        start = start_user(&state.events, shard, None).await?;
    }
    let guard = state.simulations.start(user_id);
    let filter = Filter {
        user_id: Some(user_id),
        anomalies_only: false,
        origin: OriginFilter::Feeds {
            own: guard.feed(),
            resumed,
        },
    };
    Ok(respond(
        Feed::new(source, filter, start, &state, slot, Some(guard)),
        Hangup::watch(&request),
    ))
}

/// Query of the all-users stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllStreamQuery {
    user_id: Option<String>,
    anomalies_only: Option<String>,
}

/// `GET /sse/transactions?user_id=&anomalies_only=`: every transaction
/// stored by any process, optionally of one user or flagged ones only. It
/// starts no simulation.
#[utoipa::path(
    get,
    path = "/sse/transactions",
    tag = "live",
    operation_id = "stream_transactions",
    summary = "Live transactions of every user, filterable",
    description = crate::api::openapi::ALL_STREAM_DESCRIPTION,
    params(crate::api::openapi::StreamParams, crate::api::openapi::ResumeHeader),
    responses(
        (status = 200, response = crate::api::openapi::EventStream),
        (status = 422, description = "A parameter is invalid (`invalid_parameter`) or unknown \
                                      (`malformed_query`), or `Last-Event-ID` is not an id of \
                                      ours, or lies in the future (`invalid_event_id`).",
         body = crate::api::openapi::ErrorBody),
        (status = 503, response = crate::api::openapi::Unavailable),
    ),
)]
pub(crate) async fn all_stream(
    state: Data<AppState>,
    Query(query): Query<AllStreamQuery>,
    request: HttpRequest,
) -> Result<impl Responder, ApiError> {
    let user_id = query
        .user_id
        .as_deref()
        .map(|text| {
            text.parse::<UserId>().map_err(|e| {
                ApiError::invalid("user_id", format!("`{}` is not a UUID: {e}", echo(text)))
            })
        })
        .transpose()?;
    let anomalies_only = match query.anomalies_only.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "anomalies_only",
                format!("`{}` is not a boolean: use true or false", echo(other)),
            ));
        }
    };
    let header = last_event_id_text(&request)?;
    // An id of one user's stream on a stream of one user, else a position
    // in every shard.
    let resume = match (user_id, header) {
        (_, None) => None,
        (Some(_), Some(text)) => Some(AllResume::User(parse_resume(text).ok_or_else(|| {
            ApiError::InvalidEventId(format!("`{}` is not an event id of ours", echo(text)))
        })?)),
        (None, Some(text)) => Some(parse_all_resume(text)?),
    };
    let slot = open_slot(&state, "all")?;
    // Subscribed before the position is read: see `start_position`.
    let (source, start) = match user_id {
        Some(user_id) => {
            let source = Source::User(state.hub.subscribe_user(user_id));
            let at = match resume {
                Some(AllResume::User(resume)) => Some(resume.at),
                _ => None,
            };
            let shard = state.events.shard_of(user_id);
            (source, start_user(&state.events, shard, at).await?)
        }
        None => {
            let source = Source::All(state.hub.subscribe_all());
            (source, start_all(&state.events, resume).await?)
        }
    };
    let filter = Filter {
        user_id,
        anomalies_only,
        origin: OriginFilter::Any,
    };
    Ok(respond(
        Feed::new(source, filter, start, &state, slot, None),
        Hangup::watch(&request),
    ))
}

/// The positions (one per event shard, index = shard; `None`: not known)
/// an all-users stream's event id carries, or `None` when `id` is not
/// such an id. For tests and tools: clients treat ids as opaque.
pub fn all_users_position(id: &str) -> Option<Vec<Option<EventId>>> {
    position::decode(id)
}

/// A place for one more stream, or 503 when the process holds its maximum.
fn open_slot(state: &AppState, kind: &'static str) -> Result<StreamSlot, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable {
            service: "this server",
            source: "it is shutting down".into(),
        });
    }
    state.streams.open(kind, state.metrics()).ok_or_else(|| {
        state.metrics().sse_rejected();
        ApiError::TooManyStreams {
            limit: state.streams.limit(),
        }
    })
}

/// Counts this process's open streams against a limit; cheap to clone.
#[derive(Clone)]
pub struct StreamSlots {
    open: Arc<AtomicUsize>,
    limit: usize,
}

impl StreamSlots {
    /// Room for `limit` streams.
    pub fn new(limit: usize) -> StreamSlots {
        StreamSlots {
            open: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// The most streams allowed.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Streams open now.
    pub fn open_now(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Takes a slot for a stream of `kind`, if one is free; it is given back
    /// (and the gauge lowered) when the returned value is dropped.
    fn open(&self, kind: &'static str, metrics: &Metrics) -> Option<StreamSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.limit).then_some(open + 1)
            })
            .ok()?;
        metrics.sse_open(kind, 1);
        Some(StreamSlot {
            slots: self.clone(),
            kind,
            metrics: metrics.clone(),
        })
    }
}

/// One open stream's place; see [`StreamSlots`].
struct StreamSlot {
    slots: StreamSlots,
    kind: &'static str,
    metrics: Metrics,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.slots.open.fetch_sub(1, Ordering::AcqRel);
        self.metrics.sse_open(self.kind, -1);
    }
}

/// The stream's response. It ends, dropping the feed and everything it
/// holds (its place, subscription and simulation), as soon as the client
/// closes the connection, not only at the next write (see `crate::sse::hangup`).
fn respond(feed: Feed, hangup: Hangup) -> impl Responder {
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, Infallible>(event), feed))
    })
    .take_until(hangup.closed());
    Sse::from_stream(stream)
        .with_keep_alive(KEEP_ALIVE)
        .with_retry_duration(RETRY)
        .customize()
        // Tells nginx-style proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", HeaderValue::from_static("no")))
}

/// Where a new stream starts in each shard it reads: after
/// `Last-Event-ID` when the client sent one, else after the newest event
/// now. Knowing it from the start lets a stream that falls behind before its
/// first event catch up from Redis like any other. Without Redis the stream
/// starts live and learns its position from the first event.
///
/// Read after the stream subscribed to the hub: every event after the
/// newest one now is then appended later, so the relay hands it to the
/// subscription, and a new stream needs no catch-up read of its own (with
/// thousands of streams opening at once, each reading everything published
/// since its position had saturated the server), unless the hub says its
/// shard's relay started later (see `live::hub`). Only a resumed stream
/// reads what it missed from Redis.
///
/// A `Last-Event-ID` newer than every event kept is checked against the
/// clocks: see the module docs.
///
/// # Errors
/// [`ApiError::InvalidEventId`] for an id further ahead than clocks drift.
async fn start_position(
    log: &EventLog,
    shards: &[usize],
    resume: Option<&[Option<EventId>]>,
) -> Result<Start, ApiError> {
    let newest = log.last_ids(shards).await;
    let mut start = Start {
        shards: Vec::with_capacity(shards.len()),
        notice: None,
    };
    let mut lost = Vec::new();
    for (index, &shard) in shards.iter().enumerate() {
        let asked = resume.and_then(|resume| resume[index]);
        let newest = newest
            .as_ref()
            .map(|newest| newest[index].unwrap_or(EventId::ZERO));
        let (position, replay) = match (asked, newest) {
            (None, Ok(newest)) => (Some(newest), false),
            (None, Err(_)) => (None, false),
            (Some(id), Ok(newest)) if id <= newest => (Some(id), true),
            (Some(id), Ok(newest)) if id.ms <= latest_plausible_ms(newest) => {
                lost.push((id, newest));
                (Some(newest), false)
            }
            // Without Redis only the clock can tell; the catch-up retries.
            (Some(id), Err(_)) if id.ms <= latest_plausible_ms(EventId::ZERO) => (Some(id), true),
            (Some(id), _) => {
                return Err(ApiError::InvalidEventId(format!(
                    "`{id}` lies in the future: no stream of ours sent it"
                )));
            }
        };
        start.shards.push(ShardStart {
            shard,
            position,
            // The relay need not start before the newest event: a resumed
            // stream reads up to it (and on) from Redis itself.
            offer: newest.ok(),
            replay,
        });
    }
    if !lost.is_empty() {
        let asked = lost
            .iter()
            .map(|(asked, _)| asked.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let newest = lost
            .iter()
            .map(|(_, newest)| newest.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        start.notice = Some(Notice {
            code: "events_lost",
            message: format!(
                "the event stream holds nothing after {asked} (it was reset or lost); \
                 events since then may be missing; continuing after {newest}"
            ),
        });
    }
    Ok(start)
}

/// [`start_position`] of a stream of one user (its shard). A resumed id
/// that is not an entry of the user's shard (the shard count changed, or
/// Redis lost the entry) gets an `events_lost` notice: events of the user
/// stored elsewhere, or lost, may be missing.
async fn start_user(
    log: &EventLog,
    shard: usize,
    resume: Option<EventId>,
) -> Result<Start, ApiError> {
    let mut start =
        start_position(log, &[shard], resume.map(|id| vec![Some(id)]).as_deref()).await?;
    if start.notice.is_none() {
        start.notice = missing_entries(log, &start).await;
    }
    Ok(start)
}

/// An `events_lost` notice when a resumed position is not an entry of its
/// shard although the shard keeps events from before it: the shard count
/// changed (a user's events moved to another shard), or Redis lost entries
/// (a failover). Events after it may then be missing; the stream goes on
/// after it. An id older than everything kept is `events_expired`'s case;
/// when Redis cannot say, nothing is claimed.
async fn missing_entries(log: &EventLog, start: &Start) -> Option<Notice> {
    let checks = start
        .shards
        .iter()
        .filter(|shard| shard.replay)
        .filter_map(|shard| Some((shard.shard, shard.position?)))
        .filter(|(_, id)| *id != EventId::ZERO)
        .map(|(shard, id)| async move {
            let first = log.first_id(shard).await.ok().flatten()?;
            // Older than everything kept: `events_expired` tells it.
            (id >= first && matches!(log.contains(shard, id).await, Ok(false))).then_some(id)
        });
    let missing: Vec<String> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .map(|id| id.to_string())
        .collect();
    (!missing.is_empty()).then(|| Notice {
        code: "events_lost",
        message: format!(
            "the event log holds no event {} where this stream's id says (the number of \
             event shards changed, or Redis lost events); events since then may be missing; \
             continuing after it",
            missing.join(", ")
        ),
    })
}

/// [`start_position`] of the all-users stream (every shard).
async fn start_all(log: &EventLog, resume: Option<AllResume>) -> Result<Start, ApiError> {
    let shards: Vec<usize> = (0..log.shards()).collect();
    let (positions, reason) = match resume {
        None => (None, None),
        Some(AllResume::Positions(positions)) if positions.len() == log.shards() => {
            (Some(positions), None)
        }
        Some(AllResume::Positions(positions)) => (
            None,
            Some(format!(
                "it was made for {} event shards, and there are {} now",
                positions.len(),
                log.shards()
            )),
        ),
        Some(AllResume::User(resume)) => {
            if resume.at.ms > latest_plausible_ms(EventId::ZERO) {
                return Err(ApiError::InvalidEventId(format!(
                    "`{}` lies in the future: no stream of ours sent it",
                    resume.at
                )));
            }
            (
                None,
                Some(
                    "it is an id of one user's stream, or from before events were sharded"
                        .to_owned(),
                ),
            )
        }
    };
    let mut start = start_position(log, &shards, positions.as_deref()).await?;
    if start.notice.is_none() {
        start.notice = missing_entries(log, &start).await;
    }
    if let Some(reason) = reason {
        start.notice = Some(Notice {
            code: "events_lost",
            message: format!(
                "this stream cannot resume from that Last-Event-ID ({reason}); \
                 events since then may be missing; continuing with new events"
            ),
        });
    }
    Ok(start)
}

/// The latest millisecond an id of ours can carry, given the newest event
/// kept: see [`CLOCK_TOLERANCE`].
fn latest_plausible_ms(newest: EventId) -> u64 {
    let now_ms =
        u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let tolerance_ms = u64::try_from(CLOCK_TOLERANCE.as_millis()).unwrap_or(u64::MAX);
    now_ms.max(newest.ms).saturating_add(tolerance_ms)
}

/// See [`start_position`].
#[derive(Debug, Clone)]
struct Start {
    shards: Vec<ShardStart>,
    /// Why the stream does not resume exactly where the client asked.
    notice: Option<Notice>,
}

/// Where a stream starts in one shard.
#[derive(Debug, Clone, Copy)]
struct ShardStart {
    shard: usize,
    /// `None`: Redis could not say; from the next live event.
    position: Option<EventId>,
    /// What to tell the hub (the newest event when the stream started).
    offer: Option<EventId>,
    /// Whether to catch up from Redis after `position` first.
    replay: bool,
}

impl Start {
    /// Whether the stream resumes after a client's id somewhere.
    fn resumed(&self) -> bool {
        self.shards.iter().any(|shard| shard.replay)
    }
}

/// What an all-users stream's `Last-Event-ID` says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllResume {
    /// A stream of one user's id.
    User(Resume),
    /// A position in each of this many shards.
    Positions(Vec<Option<EventId>>),
}

/// Where a client's `Last-Event-ID` says it stopped: a position in the
/// event stream and, for a feed stream's ids, the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resume {
    at: EventId,
    feed: Option<FeedId>,
}

/// The SSE id of `event` as `filter`'s stream sends it: on a stream of
/// one user its position, plus its feed on a feed stream; on the all-users
/// stream `sent`, the positions in every shard up to this event.
fn sse_id(event: &Event, filter: &Filter, sent: &[Option<EventId>]) -> String {
    match (event.feed, filter.origin) {
        _ if filter.user_id.is_none() => position::encode(sent),
        (Some(feed), OriginFilter::Feeds { .. }) => format!("{}.{feed}", event.id),
        _ => event.id.to_string(),
    }
}

fn last_event_id(request: &HttpRequest) -> Result<Option<Resume>, ApiError> {
    let Some(text) = last_event_id_text(request)? else {
        return Ok(None);
    };
    parse_resume(text).map(Some).ok_or_else(|| {
        ApiError::InvalidEventId(format!("`{}` is not an event id of ours", echo(text)))
    })
}

/// The `Last-Event-ID` header, trimmed; `None` when absent or empty.
fn last_event_id_text(request: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = request.headers().get("Last-Event-ID") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::InvalidEventId("it is not text".to_owned()))?
        .trim();
    Ok((!text.is_empty()).then_some(text))
}

/// An all-users stream's `Last-Event-ID`: positions as [`sse_id`] writes
/// them, or (from a client of one user's stream, or of a version before
/// sharding) a `<ms>-<seq>` id.
///
/// # Errors
/// [`ApiError::InvalidEventId`] when it is neither.
fn parse_all_resume(text: &str) -> Result<AllResume, ApiError> {
    if let Some(resume) = parse_resume(text) {
        return Ok(AllResume::User(resume));
    }
    position::decode(text)
        .map(AllResume::Positions)
        .ok_or_else(|| {
            ApiError::InvalidEventId(format!("`{}` is not an event id of ours", echo(text)))
        })
}

/// `<ms>-<seq>` or `<ms>-<seq>.<feed>`, as [`sse_id`] writes them.
fn parse_resume(text: &str) -> Option<Resume> {
    let (at, feed) = match text.split_once('.') {
        Some((at, feed)) => (at, Some(feed.parse().ok()?)),
        None => (text, None),
    };
    Some(Resume {
        at: at.parse().ok()?,
        feed,
    })
}

/// Which events a stream sends.
#[derive(Debug, Clone, Copy)]
struct Filter {
    user_id: Option<UserId>,
    anomalies_only: bool,
    origin: OriginFilter,
}

/// Which events a stream sends, by where their transactions came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginFilter {
    /// Real and simulated ones.
    Any,
    /// Real ones only.
    Real,
    /// This connection's own feed's, and those of the feed it resumed.
    Feeds {
        own: FeedId,
        resumed: Option<FeedId>,
    },
}

impl Filter {
    fn admits(&self, event: &Event) -> bool {
        self.user_id.is_none_or(|user_id| user_id == event.user_id)
            && (!self.anomalies_only || event.is_anomaly)
            && match self.origin {
                OriginFilter::Any => true,
                OriginFilter::Real => event.feed.is_none(),
                OriginFilter::Feeds { own, resumed } => event
                    .feed
                    .is_some_and(|feed| feed == own || Some(feed) == resumed),
            }
    }
}

/// Where live events come from.
enum Source {
    User(UserSubscription),
    All(AllSubscription),
}

impl Source {
    async fn recv(&mut self) -> Result<Live, RecvError> {
        match self {
            Source::User(subscription) => subscription.receiver().recv().await,
            Source::All(subscription) => subscription.receiver().recv().await,
        }
    }

    fn registered(&self) -> &Registered {
        match self {
            Source::User(subscription) => subscription.registered(),
            Source::All(subscription) => subscription.registered(),
        }
    }
}

/// One client's stream: the next event to send, from the catch-up backlog
/// or live.
struct Feed {
    source: Source,
    filter: Filter,
    log: EventLog,
    /// Per shard (index = shard; only the shards the stream reads are
    /// used): the last position this feed has dealt with (sent or filtered
    /// out); live events at or before it are skipped.
    position: Vec<Option<EventId>>,
    /// Per shard: the position up to which the client has been sent
    /// events, what the all-users stream's ids carry.
    sent: Vec<Option<EventId>>,
    /// The shards to catch up from Redis (after their `position`).
    replaying: Vec<usize>,
    backlog: VecDeque<Event>,
    /// Whether the next catch-up read starts a catch-up, which first checks
    /// that the shards still keep the events after their positions.
    check_expiry: bool,
    greeted: bool,
    /// Sent right after the greeting: why the stream does not resume where
    /// the client asked.
    opening_notice: Option<Notice>,
    /// Cancelled when the server shuts down.
    shutdown: CancellationToken,
    /// Set once the stream has said goodbye; the next poll ends it.
    finished: bool,
    metrics: Metrics,
    /// Holds this stream's place in the process's limit.
    _slot: StreamSlot,
    /// Keeps this connection's simulated feed running while the client is
    /// connected.
    _feed: Option<FeedGuard>,
}

impl Feed {
    fn new(
        source: Source,
        filter: Filter,
        start: Start,
        state: &AppState,
        slot: StreamSlot,
        feed: Option<FeedGuard>,
    ) -> Feed {
        let shards = state.events.shards();
        let mut position = vec![None; shards];
        let mut replaying = Vec::new();
        for shard in &start.shards {
            position[shard.shard] = shard.position;
            if shard.replay {
                replaying.push(shard.shard);
            }
        }
        let check_expiry = !replaying.is_empty();
        // A resumed stream reads what it missed from Redis first; live
        // events at or before its position are then skipped. A new one
        // subscribed before reading its position (`start_position`), so the
        // relay brings it everything after, unless the relay of a shard
        // started after that position: then it catches up there too.
        let offers: Vec<(usize, Option<EventId>)> = start
            .shards
            .iter()
            .map(|shard| (shard.shard, shard.offer))
            .collect();
        for shard in source.registered().started(&offers) {
            if !replaying.contains(&shard) && position[shard].is_some() {
                replaying.push(shard);
            }
        }
        Feed {
            source,
            filter,
            log: state.events.clone(),
            sent: position.clone(),
            position,
            replaying,
            backlog: VecDeque::new(),
            check_expiry,
            greeted: false,
            opening_notice: start.notice,
            shutdown: state.shutdown.clone(),
            finished: false,
            metrics: state.metrics().clone(),
            _slot: slot,
            _feed: feed,
        }
    }

    /// The next event to send, or `None` to end the stream.
    async fn next(&mut self) -> Option<sse::Event> {
        if self.finished {
            return None;
        }
        if !self.greeted {
            self.greeted = true;
            // Gets the response headers out and tells proxies and clients
            // the stream is open.
            return Some(sse::Event::Comment("connected".into()));
        }
        if let Some(notice) = self.opening_notice.take() {
            return Some(self.notice(&notice));
        }
        // Everything `next_event` awaits can be dropped half-way without
        // losing anything: the position only moves once an event is in hand.
        let shutdown = self.shutdown.clone();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                self.finished = true;
                Some(self.notice(&Notice {
                    code: "shutting_down",
                    message: "this server is shutting down; reconnect (with Last-Event-ID) \
                              to continue where this stream stopped"
                        .to_owned(),
                }))
            }
            event = self.next_event() => event,
        }
    }

    /// An `event: error` notice, counted.
    fn notice(&self, notice: &Notice) -> sse::Event {
        self.metrics.sse_notice(notice.code);
        error_event(notice)
    }

    /// `event` as sent, its shard's sent position moved to it.
    fn send(&mut self, event: &Event) -> sse::Event {
        self.sent[event.shard] = Some(event.id);
        data(event, &self.filter, &self.sent)
    }

    async fn next_event(&mut self) -> Option<sse::Event> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Some(self.send(&event));
            }
            if !self.replaying.is_empty() {
                match self.replay_chunk().await {
                    Ok(Some(notice)) => return Some(self.notice(&notice)),
                    Ok(None) => continue,
                    Err(notice) => {
                        // Keep the position and try again after a pause.
                        self.metrics.dependency_error("redis");
                        tokio::time::sleep(RETRY).await;
                        return Some(self.notice(&notice));
                    }
                }
            }
            match self.source.recv().await {
                Ok(Live::Event(event)) => {
                    let shard = event.shard;
                    if self.position[shard].is_some_and(|position| event.id <= position) {
                        continue;
                    }
                    self.position[shard] = Some(event.id);
                    if self.filter.admits(&event) {
                        return Some(self.send(&event));
                    }
                }
                Ok(Live::Notice(notice)) => return Some(self.notice(&notice)),
                Err(RecvError::Lagged(missed)) => {
                    self.metrics.sse_lagged(missed);
                    let known: Vec<usize> = (0..self.position.len())
                        .filter(|&shard| self.position[shard].is_some())
                        .collect();
                    if known.is_empty() {
                        return Some(self.notice(&Notice {
                            code: "lagged",
                            message: format!(
                                "{missed} events were missed before the first one arrived; \
                                 reconnect to start again"
                            ),
                        }));
                    }
                    self.replaying = known;
                    self.check_expiry = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the next chunk of missed events of the shards being caught up
    /// into the backlog, oldest first. `Ok(Some)` carries a notice to send
    /// first; `Err` one saying the catch-up failed.
    async fn replay_chunk(&mut self) -> Result<Option<Notice>, Notice> {
        let unavailable = |error: txwatch_cache::CacheError| Notice {
            code: "service_unavailable",
            message: format!("missed events cannot be read right now ({error}); retrying"),
        };
        let mut notice = None;
        if self.check_expiry {
            // The start of a catch-up: were events dropped from the shards?
            for &shard in &self.replaying {
                let after = self.position[shard].unwrap_or(EventId::ZERO);
                if let Some(first) = self.log.first_id(shard).await.map_err(unavailable)?
                    && after < first
                    && after != EventId::ZERO
                {
                    notice = Some(Notice {
                        code: "events_expired",
                        message: format!(
                            "events after {after} may be no longer kept (the event log keeps \
                             about {} events); continuing from {first}",
                            self.log.retention()
                        ),
                    });
                    break;
                }
            }
        }
        self.check_expiry = false;
        let from: Vec<(usize, EventId)> = self
            .replaying
            .iter()
            .map(|&shard| (shard, self.position[shard].unwrap_or(EventId::ZERO)))
            .collect();
        let mut events = self
            .log
            .read_shards(&from, REPLAY_CHUNK, None)
            .await
            .map_err(unavailable)?;
        let mut done = self.replaying.clone();
        for event in &events {
            self.position[event.shard] = Some(event.id);
            done.retain(|&shard| shard != event.shard);
        }
        self.replaying.retain(|shard| !done.contains(shard));
        // Each shard's events stay in order; across shards, by time.
        events.sort_by_key(|event| event.id);
        self.backlog
            .extend(events.into_iter().filter(|event| self.filter.admits(event)));
        Ok(notice)
    }
}

fn data(event: &Event, filter: &Filter, sent: &[Option<EventId>]) -> sse::Event {
    let json = String::from_utf8_lossy(&event.data).into_owned();
    sse::Data::new(json).id(sse_id(event, filter, sent)).into()
}

fn error_event(notice: &Notice) -> sse::Event {
    let body = serde_json::json!({"error": notice.code, "message": notice.message});
    sse::Data::new(body.to_string()).event("error").into()
}
