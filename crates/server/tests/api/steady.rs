//! Steady ingest for outage tests: several posters send single
//! transactions and batches, with client ids and without, and record what
//! each answer said became of each transaction; the [`Ledger`] then checks
//! the answers against what Postgres holds.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use txwatch_cache::WindowStore;
use txwatch_domain::{Origin, UserId};
use txwatch_storage::TransactionRepository;
use txwatch_storage::testing::TestDatabase;
use uuid::Uuid;

use crate::helpers::within;

/// Items per batch.
const BATCH: usize = 3;
/// The routes.
const SINGLE: &str = "/transactions";
const BATCH_PATH: &str = "/transactions/batch";
/// A poster's pause between two posts, so that a 2-core machine keeps up.
const PAUSE: Duration = Duration::from_millis(20);

/// What an answer said about one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Fate {
    /// 201 or 200: stored.
    Acknowledged,
    /// 503 `service_unavailable`: nothing stored.
    NotStored,
    /// 503 `outcome_unknown`: maybe stored.
    Unknown,
}

#[derive(Default)]
struct Record {
    /// Every transaction answered, by id.
    fates: HashMap<Uuid, Fate>,
    /// Answers by status and code, such as `503 service_unavailable`.
    answers: HashMap<String, usize>,
    /// Acknowledged requests per user and route.
    acknowledged: HashMap<(Uuid, &'static str), usize>,
    /// Anything an ingest route must not answer.
    unexpected: Vec<String>,
    /// The longest time any answer took.
    slowest: Duration,
}

/// Posters running until [`stop`](SteadyIngest::stop).
pub(crate) struct SteadyIngest {
    users: Vec<Uuid>,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SteadyIngest {
    /// `posters` posters against the server at `address`, one user each.
    pub(crate) fn start(address: &str, posters: usize) -> SteadyIngest {
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let users: Vec<Uuid> = (0..posters).map(|_| Uuid::new_v4()).collect();
        let tasks = users
            .iter()
            .map(|&user| {
                let poster = Poster {
                    client: client.clone(),
                    address: address.to_owned(),
                    user,
                    record: Arc::clone(&record),
                };
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut round = 0usize;
                    while !stop.load(Ordering::SeqCst) {
                        poster.post(round).await;
                        round += 1;
                        tokio::time::sleep(PAUSE).await;
                    }
                })
            })
            .collect();
        SteadyIngest {
            users,
            record,
            stop,
            tasks,
        }
    }

    /// Waits until every poster has had `n` more single posts and `n` more
    /// batches acknowledged.
    pub(crate) async fn acknowledged_by_everyone(&self, n: usize) {
        let target: HashMap<(Uuid, &'static str), usize> = {
            let record = self.record.lock().expect("record");
            self.users
                .iter()
                .flat_map(|user| [(*user, SINGLE), (*user, BATCH_PATH)])
                .map(|key| (key, record.acknowledged.get(&key).copied().unwrap_or(0) + n))
                .collect()
        };
        within(async {
            loop {
                let done = {
                    let record = self.record.lock().expect("record");
                    target
                        .iter()
                        .all(|(key, n)| record.acknowledged.get(key).copied().unwrap_or(0) >= *n)
                };
                if done {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Waits until `n` more answers with `status` and `code` (such as
    /// `503 outcome_unknown`, or `503` for any 503) have come in.
    pub(crate) async fn answered(&self, prefix: &str, n: usize) {
        let count = |record: &Record| -> usize {
            record
                .answers
                .iter()
                .filter(|(answer, _)| answer.starts_with(prefix))
                .map(|(_, n)| n)
                .sum()
        };
        let target = count(&self.record.lock().expect("record")) + n;
        within(async {
            while count(&self.record.lock().expect("record")) < target {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Stops posting, waits for the answers still due, and hands over what
    /// they said.
    pub(crate) async fn stop(self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            within(task).await.expect("a poster");
        }
        let record = std::mem::take(&mut *self.record.lock().expect("record"));
        Ledger {
            users: self.users,
            record,
        }
    }
}

/// One poster: one user, single posts and batches in turn.
struct Poster {
    client: reqwest::Client,
    address: String,
    user: Uuid,
    record: Arc<Mutex<Record>>,
}

impl Poster {
    /// Round `round`: a single post or a batch, with a client id or without
    /// (a batch mixes both).
    async fn post(&self, round: usize) {
        let with_id = round.is_multiple_of(2);
        let item = |n: usize| {
            let amount = format!("{}.{:02}", 10 + round % 90, n);
            if with_id ^ (n % 2 == 1) {
                (
                    Some(Uuid::now_v7()),
                    json!({"user_id": self.user, "amount": amount}),
                )
            } else {
                (None, json!({"user_id": self.user, "amount": amount}))
            }
        };
        let (path, sent, body) = if round % 4 < 2 {
            let (id, mut body) = item(0);
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            (SINGLE, vec![id], body)
        } else {
            let (ids, items): (Vec<Option<Uuid>>, Vec<Value>) = (0..BATCH)
                .map(|n| {
                    let (id, mut body) = item(n);
                    if let Some(id) = id {
                        body["id"] = json!(id);
                    }
                    (id, body)
                })
                .unzip();
            (BATCH_PATH, ids, json!({"transactions": items}))
        };
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .json(&body)
            .send()
            .await;
        let (status, answer) = match response {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(json!(text)))
            }
            Err(error) => {
                self.unexpected(format!("{path}: no answer: {error}"));
                return;
            }
        };
        let elapsed = started.elapsed();
        let fates = self.read(path, &sent, status, &answer);
        let mut record = self.record.lock().expect("record");
        record.slowest = record.slowest.max(elapsed);
        let code = answer["error"].as_str().unwrap_or_default();
        *record
            .answers
            .entry(format!("{} {code}", status.as_u16()))
            .or_default() += 1;
        match fates {
            Ok(fates) => {
                if status.is_success() {
                    *record.acknowledged.entry((self.user, path)).or_default() += 1;
                }
                for (id, fate) in fates {
                    if record.fates.insert(id, fate).is_some() {
                        record.unexpected.push(format!("{id} answered twice"));
                    }
                }
            }
            Err(why) => record
                .unexpected
                .push(format!("{path} -> {status}: {why}: {answer}")),
        }
    }

    /// The fate of each posted transaction, by id, as the answer tells it.
    fn read(
        &self,
        path: &str,
        sent: &[Option<Uuid>],
        status: StatusCode,
        answer: &Value,
    ) -> Result<Vec<(Uuid, Fate)>, String> {
        let id_of = |value: &Value, sent: Option<Uuid>| -> Result<Uuid, String> {
            let id: Uuid = value
                .as_str()
                .and_then(|id| id.parse().ok())
                .ok_or("an answer without the id")?;
            match sent {
                Some(sent) if sent != id => Err(format!("{id} answered for {sent}")),
                _ => Ok(id),
            }
        };
        let failure = match (status, answer["error"].as_str()) {
            (StatusCode::SERVICE_UNAVAILABLE, Some("service_unavailable")) => Some(Fate::NotStored),
            (StatusCode::SERVICE_UNAVAILABLE, Some("outcome_unknown")) => Some(Fate::Unknown),
            (StatusCode::OK | StatusCode::CREATED, _) => None,
            _ => return Err("not an answer an outage may give".into()),
        };
        let single = path == SINGLE;
        match (failure, single) {
            (None, true) => Ok(vec![(id_of(&answer["id"], sent[0])?, Fate::Acknowledged)]),
            (None, false) => {
                let results = answer["results"].as_array().ok_or("no results")?;
                if results.len() != sent.len() {
                    return Err("another number of results than items".into());
                }
                results
                    .iter()
                    .zip(sent)
                    .map(|(result, sent)| match result["status"].as_u64() {
                        Some(200 | 201) => Ok((
                            id_of(&result["transaction"]["id"], *sent)?,
                            Fate::Acknowledged,
                        )),
                        _ => Err(format!("an item answered {result}")),
                    })
                    .collect()
            }
            (Some(fate), true) => Ok(vec![(id_of(&answer["id"], sent[0])?, fate)]),
            (Some(fate), false) => {
                let ids = answer["ids"].as_array().ok_or("a 503 without ids")?;
                if ids.len() != sent.len() {
                    return Err("another number of ids than items".into());
                }
                ids.iter()
                    .zip(sent)
                    .map(|(id, sent)| Ok((id_of(id, *sent)?, fate)))
                    .collect()
            }
        }
    }

    fn unexpected(&self, what: String) {
        self.record.lock().expect("record").unexpected.push(what);
    }
}

/// What the answers said, to check against Postgres.
pub(crate) struct Ledger {
    users: Vec<Uuid>,
    record: Record,
}

impl Ledger {
    /// How many transactions were answered with `fate`.
    pub(crate) fn count(&self, fate: Fate) -> usize {
        self.record.fates.values().filter(|f| **f == fate).count()
    }

    /// The longest any answer took.
    pub(crate) fn slowest(&self) -> Duration {
        self.record.slowest
    }

    /// Checks the answers against what `db` holds: every acknowledged
    /// transaction is stored, no transaction answered "nothing stored" is,
    /// and every stored one was answered as acknowledged or unknown (so
    /// none is stored twice under two ids, and a generated id in an answer
    /// is the id stored). With `windows`, each user's window is either
    /// gone (to be rebuilt) or exactly the user's latest stored rows.
    pub(crate) async fn verify(&self, db: &TestDatabase, windows: Option<&WindowStore>) {
        let summary = format!(
            "answers {:?}, acknowledged {}, not stored {}, unknown {}",
            self.record.answers,
            self.count(Fate::Acknowledged),
            self.count(Fate::NotStored),
            self.count(Fate::Unknown),
        );
        assert!(
            self.record.unexpected.is_empty(),
            "unexpected answers: {:#?}\n{summary}",
            self.record.unexpected
        );
        let client = within(db.pool().get()).await.expect("connection");
        let stored: HashSet<Uuid> = within(client.query(
            "select id from transactions where user_id = any($1)",
            &[&self.users],
        ))
        .await
        .expect("stored ids")
        .iter()
        .map(|row| row.get(0))
        .collect();
        let mut lost = Vec::new();
        let mut stored_anyway = Vec::new();
        for (id, fate) in &self.record.fates {
            match fate {
                Fate::Acknowledged if !stored.contains(id) => lost.push(*id),
                Fate::NotStored if stored.contains(id) => stored_anyway.push(*id),
                _ => {}
            }
        }
        let unaccounted: Vec<&Uuid> = stored
            .iter()
            .filter(|id| {
                !matches!(
                    self.record.fates.get(id),
                    Some(Fate::Acknowledged | Fate::Unknown)
                )
            })
            .collect();
        assert!(
            lost.is_empty(),
            "acknowledged, not stored: {lost:?}\n{summary}"
        );
        assert!(
            stored_anyway.is_empty(),
            "answered 'nothing stored', stored: {stored_anyway:?}\n{summary}"
        );
        assert!(
            unaccounted.is_empty(),
            "stored under ids no answer gave: {unaccounted:?}\n{summary}"
        );

        if let Some(windows) = windows {
            let repository = TransactionRepository::new(db.pool().clone());
            let users: Vec<UserId> = self.users.iter().map(|&user| UserId(user)).collect();
            let latest =
                within(repository.latest_entries(&users, windows.capacity(), Origin::Real))
                    .await
                    .expect("latest rows");
            for user in users {
                let window = within(windows.read(user)).await.expect("window read");
                if !window.is_empty() {
                    assert_eq!(
                        window, latest[&user],
                        "the window of {user:?} is not its latest stored rows"
                    );
                }
            }
        }
    }
}
