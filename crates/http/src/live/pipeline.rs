//! The ingest pipeline: the one path every transaction takes, whether the
//! simulator made it or a client posted it.
//!
//! 1. Ids: every transaction comes with one, given at the edge (the route
//!    generates a UUIDv7 for one sent without, so that every answer can
//!    name it, failures included). A client's id is its idempotency key:
//!    rows stored under it already are answered as they are. A generated
//!    one cannot have been stored, so it is not looked up.
//! 2. Window step: one Redis round trip for the whole batch, executed in
//!    order, takes each user's previous window and adds the new transaction
//!    atomically (see `txwatch_cache::WindowStore`). A window Redis lost is
//!    rebuilt from the user's latest rows in Postgres first.
//! 3. Verdict: the configured detector judges the amount against the
//!    previous window.
//! 4. Persist: one statement stores the batch, all or nothing. If it fails,
//!    or its outcome is unknown (see `txwatch_storage`, which first tries
//!    to find out), the touched windows are dropped so they are rebuilt
//!    from what Postgres really holds, and the caller gets the error. A
//!    caller waiting with a deadline can hold a [`Claim`] that storing must
//!    take first: withdrawn, nothing is stored.
//! 5. Publish: stored transactions go onto the Redis event stream, which
//!    every server process relays to its SSE subscribers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use time::OffsetDateTime;
use txwatch_cache::{EventLog, FeedId, NewEvent, Step, StepRequest, WindowStore};
use txwatch_domain::{
    Amount, AnyDetector, Currency, Detector, Origin, Status, Transaction, TransactionId, UserId,
    WindowEntry,
};
use txwatch_storage::{Key, TransactionRepository, key_of};

use crate::api::dto::TransactionJson;
use crate::api::error::ApiError;
use crate::live::claim::Claim;
use crate::ops::metrics::{Metrics, Stage};

/// How often, and how long, to look for the stored row of an id that another
/// request is storing at this moment.
const IN_FLIGHT_CHECKS: u32 = 8;
const IN_FLIGHT_PAUSE: Duration = Duration::from_millis(25);

/// Rounds of "window missing, rebuild it" before giving up; a second round
/// is only needed when Redis loses a key between two of our calls.
const REBUILD_ROUNDS: usize = 3;

/// Bytes of one transaction's JSON, roughly; sizes its buffer.
const JSON_BYTES: usize = 360;

/// A validated transaction, not yet scored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTransaction {
    /// Its id: the client's, which makes posting it again harmless, or one
    /// generated at the edge ([`NewTransaction::generated_id`]).
    pub id: TransactionId,
    /// Who chose the id.
    pub id_origin: IdOrigin,
    /// Whose transaction.
    pub user_id: UserId,
    /// How much; never negative.
    pub amount: Amount,
    /// In which currency.
    pub currency: Currency,
    /// When it happened (stored to the microsecond).
    pub txn_date: OffsetDateTime,
    /// `paid`, `failed`, ...
    pub status: Status,
    /// The simulated feed that made it up; `None` for a real transaction.
    /// A simulated transaction is judged against the user's earlier
    /// simulated ones only, and a real one against real ones only.
    pub feed: Option<FeedId>,
}

impl NewTransaction {
    /// Real, or simulated by a feed.
    pub fn origin(&self) -> Origin {
        match self.feed {
            Some(_) => Origin::Simulated,
            None => Origin::Real,
        }
    }
}

/// Who chose a transaction's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdOrigin {
    /// The client sent it: its idempotency key, looked up in Postgres
    /// before anything else.
    Client,
    /// This server generated it: nobody can have stored it yet, so it is
    /// not looked up.
    Generated,
}

impl NewTransaction {
    /// A fresh id for a transaction sent without one: a UUIDv7, so ids
    /// sort by time.
    pub fn generated_id() -> TransactionId {
        TransactionId(uuid::Uuid::now_v7())
    }
}

/// What became of one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Scored, stored and published now.
    Created {
        /// The transaction with its verdict, as stored.
        transaction: Transaction,
        /// Its Transaction JSON, as the live streams send it, made once for
        /// the event and for whoever answers with it.
        json: Bytes,
    },
    /// Its id was stored before: this is the stored transaction, unchanged.
    Existing(Transaction),
    /// Another request is storing the same id right now; retry shortly.
    InProgress(TransactionId),
}

/// Stored transactions still to be put on the event stream; see
/// [`Pipeline::ingest_unpublished`].
#[derive(Debug, Default)]
#[must_use = "stored transactions reach live streams only when published"]
pub struct Publication {
    /// Each created transaction, its JSON and the feed that made it.
    created: Vec<(Transaction, Bytes, Option<FeedId>)>,
}

/// The pipeline's handles; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    transactions: TransactionRepository,
    /// Users' windows of real transactions.
    windows: WindowStore,
    /// Users' windows of simulated transactions.
    simulated_windows: WindowStore,
    events: EventLog,
    detector: Arc<AnyDetector>,
    metrics: Metrics,
}

/// One transaction on its way through.
struct Pending {
    /// Where it sits in the caller's list.
    index: usize,
    transaction: NewTransaction,
    id: TransactionId,
}

impl Pipeline {
    /// A pipeline scoring with `detector` against windows of
    /// `windows.capacity()` transactions (real ones in `windows`, simulated
    /// ones in the same store's simulated windows), recording what it does
    /// in `metrics`.
    pub fn new(
        transactions: TransactionRepository,
        windows: WindowStore,
        events: EventLog,
        detector: AnyDetector,
        metrics: Metrics,
    ) -> Pipeline {
        // Time-aware detectors get the previous transactions' dates too.
        let windows = windows
            .with_origin(Origin::Real)
            .with_dates(detector.uses_time());
        Pipeline {
            transactions,
            simulated_windows: windows.clone().with_origin(Origin::Simulated),
            windows,
            events,
            detector: Arc::new(detector),
            metrics,
        }
    }

    /// Where this pipeline records what it does.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The event stream this pipeline publishes to.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// The detector judging every transaction.
    pub fn detector(&self) -> &AnyDetector {
        &self.detector
    }

    /// Judges `transaction` against the user's previous amounts (and their
    /// dates, for a detector that learns daily and weekly rhythm).
    fn verdict(
        &self,
        previous: &[Amount],
        dates: &[OffsetDateTime],
        transaction: &NewTransaction,
    ) -> txwatch_domain::Verdict {
        let amount = transaction.amount.to_f64();
        if self.detector.uses_time() && dates.len() == previous.len() {
            let history = dates
                .iter()
                .copied()
                .zip(previous.iter().map(Amount::to_f64));
            let state = self.detector.state_from_timed_history(history);
            self.detector.score_at(&state, transaction.txn_date, amount)
        } else {
            let state = self
                .detector
                .state_from_history(previous.iter().map(Amount::to_f64));
            self.detector.score(&state, amount)
        }
    }

    /// Scores, stores and publishes `items`, in order: items of one user are
    /// judged one after the other, each against a window holding the ones
    /// before it. Answers one [`Outcome`] per item, in the same order.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when Redis or Postgres cannot be reached:
    /// then nothing of this call is stored; [`ApiError::OutcomeUnknown`]
    /// when the store was sent and what became of it could not be found
    /// out: then each new transaction is stored once or not at all.
    pub async fn ingest(&self, items: Vec<NewTransaction>) -> Result<Vec<Outcome>, ApiError> {
        let (outcomes, publication) = self.ingest_unpublished(items).await?;
        self.publish(publication).await;
        Ok(outcomes)
    }

    /// Like [`ingest`](Self::ingest), for a caller that may give up waiting:
    /// storing begins only once it has taken `gate`. If the caller withdrew
    /// it first, nothing is stored and the windows touched are dropped.
    ///
    /// # Errors
    /// As [`ingest`](Self::ingest), and [`ApiError::NotStoredInTime`] when
    /// the gate was withdrawn.
    pub async fn ingest_gated(
        &self,
        items: Vec<NewTransaction>,
        gate: &Claim,
    ) -> Result<Vec<Outcome>, ApiError> {
        let (outcomes, publication) = self.run(items, Some(gate)).await?;
        self.publish(publication).await;
        Ok(outcomes)
    }

    /// Like [`ingest`](Self::ingest) up to the last step: the stored
    /// transactions are handed back as a [`Publication`] for the caller to
    /// [`publish`](Self::publish) once it has answered, so a client's answer
    /// does not wait for the event stream. Everything in it is stored
    /// already.
    ///
    /// # Errors
    /// As [`ingest`](Self::ingest).
    pub async fn ingest_unpublished(
        &self,
        items: Vec<NewTransaction>,
    ) -> Result<(Vec<Outcome>, Publication), ApiError> {
        self.run(items, None).await
    }

    /// Every step but publishing; storing waits for `gate` when given.
    async fn run(
        &self,
        items: Vec<NewTransaction>,
        gate: Option<&Claim>,
    ) -> Result<(Vec<Outcome>, Publication), ApiError> {
        let count = items.len();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
        // An id repeated for the same user within the call is answered like
        // its first use. Ids are unique per user (see `storage::Key`): the
        // same id under another user is another transaction.
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        let mut first_use: HashMap<Key, usize> = HashMap::with_capacity(count);
        let mut given: Vec<Key> = Vec::new();
        let mut pending: Vec<Pending> = Vec::with_capacity(count);
        for (index, mut transaction) in items.into_iter().enumerate() {
            transaction.txn_date = truncate_to_micros(transaction.txn_date);
            let id = transaction.id;
            let key = (transaction.user_id, id);
            if transaction.id_origin == IdOrigin::Client {
                given.push(key);
            }
            if let Some(&first) = first_use.get(&key) {
                repeats.push((index, first));
                continue;
            }
            first_use.insert(key, index);
            pending.push(Pending {
                index,
                transaction,
                id,
            });
        }

        if !given.is_empty() {
            let started = Instant::now();
            let stored = self.transactions.find_many(&given).await?;
            self.metrics.observe_stage(Stage::Lookup, started.elapsed());
            let stored: HashMap<Key, Transaction> =
                stored.into_iter().map(|t| (key_of(&t), t)).collect();
            pending.retain(|p| match stored.get(&(p.transaction.user_id, p.id)) {
                Some(found) => {
                    outcomes[p.index] = Some(Outcome::Existing(found.clone()));
                    false
                }
                None => true,
            });
        }

        let started = Instant::now();
        let steps = match self.step_all(&pending).await {
            Ok(steps) => steps,
            Err(error) => {
                // Some steps may have run (a later round failed, or Redis
                // ran them and its answer was lost): none of them will be
                // stored, so their windows go.
                self.forget_windows(
                    pending
                        .iter()
                        .map(|p| (p.transaction.origin(), p.transaction.user_id)),
                )
                .await;
                return Err(error);
            }
        };
        self.metrics.observe_stage(Stage::Window, started.elapsed());
        let started = Instant::now();
        // Scored transactions, and where each sits in the caller's list.
        let mut rows: Vec<Transaction> = Vec::with_capacity(pending.len());
        let mut row_index: Vec<usize> = Vec::with_capacity(pending.len());
        let mut row_feed: Vec<Option<FeedId>> = Vec::with_capacity(pending.len());
        let mut in_window: Vec<(usize, Key)> = Vec::new();
        let touched: Vec<(Origin, UserId)> = pending
            .iter()
            .map(|p| (p.transaction.origin(), p.transaction.user_id))
            .collect();
        for (p, step) in pending.into_iter().zip(steps) {
            match step {
                Step::Pushed { previous, dates } => {
                    let verdict = self.verdict(&previous, &dates, &p.transaction);
                    let t = p.transaction;
                    row_index.push(p.index);
                    row_feed.push(t.feed);
                    rows.push(Transaction {
                        id: p.id,
                        user_id: t.user_id,
                        origin: t.origin(),
                        amount: t.amount,
                        currency: t.currency,
                        txn_date: t.txn_date,
                        status: t.status,
                        verdict,
                    });
                }
                // The id is in the window: stored already, or being stored by
                // a request running now.
                Step::Duplicate => in_window.push((p.index, (p.transaction.user_id, p.id))),
                Step::Missing => {
                    self.forget_windows(touched.into_iter()).await;
                    return Err(ApiError::Internal(
                        "window step reported a missing window after a rebuild".into(),
                    ));
                }
            }
        }

        self.metrics.observe_stage(Stage::Score, started.elapsed());
        if !rows.is_empty() && gate.is_some_and(|gate| !gate.take()) {
            // The caller gave up before storing began and answered that
            // nothing is stored: keep it so.
            self.forget_windows(rows.iter().map(|t| (t.origin, t.user_id)))
                .await;
            return Err(ApiError::NotStoredInTime);
        }
        let started = Instant::now();
        let stored = match self.transactions.insert_many(&rows).await {
            Ok(stored) => {
                self.metrics.observe_stage(Stage::Store, started.elapsed());
                stored
            }
            Err(error) => {
                // Not stored, or perhaps stored: either way the windows may
                // hold what Postgres does not, so they are rebuilt from what
                // it holds.
                self.forget_windows(rows.iter().map(|t| (t.origin, t.user_id)))
                    .await;
                return Err(error.into());
            }
        };
        let stored: HashSet<Key> = stored.into_iter().collect();
        let mut created: Vec<(Transaction, Bytes, Option<FeedId>)> =
            Vec::with_capacity(stored.len());
        let mut not_stored: Vec<(Origin, UserId, WindowEntry)> = Vec::new();
        let anomalies = rows
            .iter()
            .filter(|t| stored.contains(&key_of(t)) && t.verdict.is_anomaly())
            .count();
        self.metrics.scored(stored.len(), anomalies);
        for ((index, feed), transaction) in row_index.into_iter().zip(row_feed).zip(rows) {
            if stored.contains(&key_of(&transaction)) {
                let json = json_of(&transaction);
                outcomes[index] = Some(Outcome::Created {
                    transaction: transaction.clone(),
                    json: json.clone(),
                });
                created.push((transaction, json, feed));
            } else {
                // Its id was stored meanwhile (by a concurrent request) and
                // had left the window, so the step could not tell: take the
                // push back, and answer with the stored row.
                not_stored.push((
                    transaction.origin,
                    transaction.user_id,
                    WindowEntry {
                        id: transaction.id,
                        txn_date: transaction.txn_date,
                        amount: transaction.amount,
                    },
                ));
                in_window.push((index, key_of(&transaction)));
            }
        }
        for origin in [Origin::Real, Origin::Simulated] {
            let pushes: Vec<(UserId, WindowEntry)> = not_stored
                .iter()
                .filter(|(of, _, _)| *of == origin)
                .map(|&(_, user_id, entry)| (user_id, entry))
                .collect();
            if let Err(error) = self.windows_of(origin).withdraw(&pushes).await {
                tracing::warn!(%error, "could not take back pushes of already stored ids");
                self.forget_windows(pushes.iter().map(|(user_id, _)| (origin, *user_id)))
                    .await;
            }
        }
        for (index, outcome) in self.resolve_in_flight(&in_window).await {
            outcomes[index] = Some(outcome);
        }
        for (index, first) in repeats {
            outcomes[index] = outcomes[first].clone().map(|outcome| match outcome {
                Outcome::Created { transaction: t, .. } | Outcome::Existing(t) => {
                    Outcome::Existing(t)
                }
                in_progress @ Outcome::InProgress(_) => in_progress,
            });
        }
        let outcomes = outcomes
            .into_iter()
            .map(|outcome| {
                outcome.ok_or_else(|| ApiError::Internal("an item was left without outcome".into()))
            })
            .collect::<Result<_, _>>()?;
        Ok((outcomes, Publication { created }))
    }

    /// The store of users' windows of `origin`'s transactions.
    fn windows_of(&self, origin: Origin) -> &WindowStore {
        match origin {
            Origin::Real => &self.windows,
            Origin::Simulated => &self.simulated_windows,
        }
    }

    /// Runs every window step, each against the window of its origin,
    /// rebuilding from Postgres the windows Redis does not have.
    async fn step_all(&self, pending: &[Pending]) -> Result<Vec<Step>, ApiError> {
        let Some(first) = pending.first() else {
            return Ok(Vec::new());
        };
        let origin = first.transaction.origin();
        // Nearly always one origin: a client's batch, or a simulation tick.
        if pending.iter().all(|p| p.transaction.origin() == origin) {
            let all: Vec<&Pending> = pending.iter().collect();
            return self.step_origin(origin, &all).await;
        }
        let mut results: Vec<Option<Step>> = vec![None; pending.len()];
        for origin in [Origin::Real, Origin::Simulated] {
            let (indices, of_origin): (Vec<usize>, Vec<&Pending>) = pending
                .iter()
                .enumerate()
                .filter(|(_, p)| p.transaction.origin() == origin)
                .unzip();
            if indices.is_empty() {
                continue;
            }
            let steps = self.step_origin(origin, &of_origin).await?;
            for (i, step) in indices.into_iter().zip(steps) {
                results[i] = Some(step);
            }
        }
        results
            .into_iter()
            .map(|step| {
                step.ok_or_else(|| ApiError::Internal("a window step went unanswered".into()))
            })
            .collect()
    }

    /// The steps of `pending`, all of `origin`, in order.
    async fn step_origin(
        &self,
        origin: Origin,
        pending: &[&Pending],
    ) -> Result<Vec<Step>, ApiError> {
        let windows = self.windows_of(origin);
        let mut results: Vec<Option<Step>> = vec![None; pending.len()];
        let mut todo: Vec<usize> = (0..pending.len()).collect();
        let mut rebuilds: HashMap<UserId, Vec<WindowEntry>> = HashMap::new();
        for _ in 0..REBUILD_ROUNDS {
            if todo.is_empty() {
                break;
            }
            let steps = {
                let mut attached: HashSet<UserId> = HashSet::new();
                let requests: Vec<StepRequest<'_>> = todo
                    .iter()
                    .map(|&i| {
                        let p = pending[i];
                        let user_id = p.transaction.user_id;
                        // The history goes with a user's first step only.
                        let rebuild = if rebuilds.is_empty() || !attached.insert(user_id) {
                            None
                        } else {
                            rebuilds.get(&user_id).map(Vec::as_slice)
                        };
                        StepRequest {
                            user_id,
                            entry: WindowEntry {
                                id: p.id,
                                txn_date: p.transaction.txn_date,
                                amount: p.transaction.amount,
                            },
                            rebuild,
                        }
                    })
                    .collect();
                windows.step_many(&requests).await?
            };
            let mut missing: Vec<usize> = Vec::new();
            let mut missing_users: Vec<UserId> = Vec::new();
            for (&i, step) in todo.iter().zip(steps) {
                if matches!(step, Step::Missing) {
                    missing.push(i);
                    let user_id = pending[i].transaction.user_id;
                    if !missing_users.contains(&user_id) && !rebuilds.contains_key(&user_id) {
                        missing_users.push(user_id);
                    }
                } else {
                    results[i] = Some(step);
                }
            }
            if !missing_users.is_empty() {
                let history = self
                    .transactions
                    .latest_entries(&missing_users, windows.capacity(), origin)
                    .await?;
                rebuilds.extend(history);
            }
            todo = missing;
        }
        results
            .into_iter()
            .map(|step| {
                step.ok_or_else(|| {
                    ApiError::Internal("a window could not be rebuilt after several tries".into())
                })
            })
            .collect()
    }

    /// Answers for ids the window already holds: the stored row, once the
    /// request storing it has finished. Runs after this call stored its own
    /// rows, so it cannot fail the call: an id it cannot look up (Postgres
    /// gone meanwhile) is answered as in progress, to be retried.
    async fn resolve_in_flight(&self, items: &[(usize, Key)]) -> Vec<(usize, Outcome)> {
        let mut resolved = Vec::with_capacity(items.len());
        let mut waiting: Vec<(usize, Key)> = items.to_vec();
        for check in 0..IN_FLIGHT_CHECKS {
            if waiting.is_empty() {
                break;
            }
            if check > 0 {
                tokio::time::sleep(IN_FLIGHT_PAUSE).await;
            }
            let ids: Vec<Key> = waiting.iter().map(|(_, key)| *key).collect();
            let found: HashMap<Key, Transaction> = match self.transactions.find_many(&ids).await {
                Ok(found) => found.into_iter().map(|t| (key_of(&t), t)).collect(),
                Err(error) => {
                    tracing::warn!(%error, ids = ids.len(), "could not look up ids being stored by other requests");
                    break;
                }
            };
            waiting.retain(|(index, key)| match found.get(key) {
                Some(t) => {
                    resolved.push((*index, Outcome::Existing(t.clone())));
                    false
                }
                None => true,
            });
        }
        resolved.extend(
            waiting
                .into_iter()
                .map(|(index, (_, id))| (index, Outcome::InProgress(id))),
        );
        resolved
    }

    /// Drops windows (of the given origin and user) so the next transaction
    /// rebuilds them from Postgres.
    async fn forget_windows(&self, windows: impl Iterator<Item = (Origin, UserId)>) {
        let mut windows: Vec<(Origin, UserId)> = windows.collect();
        windows.sort_unstable();
        windows.dedup();
        for origin in [Origin::Real, Origin::Simulated] {
            let users: Vec<UserId> = windows
                .iter()
                .filter(|(of, _)| *of == origin)
                .map(|(_, user_id)| *user_id)
                .collect();
            if let Err(error) = self.windows_of(origin).forget(&users).await {
                // Nothing more to do: an unreachable Redis loses the keys'
                // worth anyway when it comes back empty, and a live one
                // expires them.
                tracing::warn!(%error, users = users.len(), "could not drop windows of transactions not known to be stored");
            }
        }
    }

    /// Puts stored transactions on the event stream. A failure here loses
    /// live events, never data: the rows are stored and acknowledged.
    pub async fn publish(&self, publication: Publication) {
        let created = publication.created;
        if created.is_empty() {
            return;
        }
        let events: Vec<NewEvent<'_>> = created
            .iter()
            .map(|(t, data, feed)| NewEvent {
                user_id: t.user_id,
                is_anomaly: t.verdict.is_anomaly(),
                feed: *feed,
                data,
            })
            .collect();
        let started = Instant::now();
        match self.events.append(&events).await {
            Ok(_) => {
                self.metrics
                    .observe_stage(Stage::Publish, started.elapsed());
                self.metrics.published(events.len(), true);
            }
            Err(error) => {
                tracing::warn!(%error, events = events.len(), "stored transactions could not be published");
                self.metrics.published(events.len(), false);
                self.metrics.dependency_error("redis");
            }
        }
    }
}

/// A transaction's JSON, as answered and as streamed.
fn json_of(transaction: &Transaction) -> Bytes {
    let mut json = Vec::with_capacity(JSON_BYTES);
    TransactionJson(transaction).write_to(&mut json);
    Bytes::from(json)
}

/// Postgres keeps microseconds; the window and the answer must hold what is
/// stored.
fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = at.unix_timestamp_nanos();
    OffsetDateTime::from_unix_timestamp_nanos(nanos - nanos.rem_euclid(1000)).unwrap_or(at)
}
