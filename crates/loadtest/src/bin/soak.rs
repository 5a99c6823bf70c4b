//! Soak load: a steady mix of history queries, ingest and long-lived SSE
//! streams against one server, for minutes. Used by `bench/soak.sh`, which
//! watches the server's memory meanwhile.
//!
//! Every request it sends is valid, so every answer must be 2xx (and the
//! expected one of them): anything else, a transport error, a batch item
//! rejected, an `event: error` notice or a held stream that ends counts as
//! a failure, and the exit status is non-zero when there was one.
//!
//! The load, paced rather than flat out:
//! - `--streams` connections over `--stream-users` new users, held for the
//!   whole run: per user one `GET /sse/transactions/{user}` (its connection
//!   drives the user's simulated feed) and the rest
//!   `GET /sse/transactions?user_id={user}` (the shared view of the user),
//!   and `--all-streams` to `GET /sse/transactions`;
//! - `--churn-streams` more that each drive a feed of a user from a small
//!   pool for 10-30 s and move on, so feeds and channels start and stop;
//! - `--query-rate` reads per second: a page of a seeded user's history
//!   with random filters (following the cursor a page or two), `/users`,
//!   `/ready`, `/metrics`;
//! - `--ingest-rate` single posts per second, some with client ids, some of
//!   them repeated (answered 200), and `--batch-rate` batches of
//!   `--batch-size` per second.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:18184")]
    url: String,
    /// Length of the run, streams opening included.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Per-user SSE connections held for the whole run.
    #[arg(long, default_value_t = 1_000)]
    streams: usize,
    /// New users those streams watch (each one simulated).
    #[arg(long, default_value_t = 250)]
    stream_users: usize,
    /// All-users SSE connections held for the whole run.
    #[arg(long, default_value_t = 4)]
    all_streams: usize,
    /// Per-user SSE connections that move to another user every 10-30 s.
    #[arg(long, default_value_t = 20)]
    churn_streams: usize,
    /// Users the moving streams pick from.
    #[arg(long, default_value_t = 100)]
    churn_users: usize,
    /// Read requests per second (history pages, /users, /ready, /metrics).
    #[arg(long, default_value_t = 200.0)]
    query_rate: f64,
    /// Concurrent readers sharing that rate.
    #[arg(long, default_value_t = 8)]
    query_workers: usize,
    /// Single posts per second.
    #[arg(long, default_value_t = 200.0)]
    ingest_rate: f64,
    /// Concurrent posters sharing that rate.
    #[arg(long, default_value_t = 8)]
    ingest_workers: usize,
    /// Batches per second.
    #[arg(long, default_value_t = 1.0)]
    batch_rate: f64,
    /// Transactions per batch.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
}

/// What a request was, for the tallies.
#[derive(Clone, Copy)]
enum Kind {
    History,
    Users,
    Ready,
    Metrics,
    Post,
    Batch,
}

const KINDS: [Kind; 6] = [
    Kind::History,
    Kind::Users,
    Kind::Ready,
    Kind::Metrics,
    Kind::Post,
    Kind::Batch,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::History => "history",
            Kind::Users => "users",
            Kind::Ready => "ready",
            Kind::Metrics => "metrics",
            Kind::Post => "post",
            Kind::Batch => "batch",
        }
    }
}

/// Latencies: 10 µs buckets to 10 ms, 1 ms to 1 s, 100 ms to 31 s.
#[derive(Clone)]
struct Histogram {
    buckets: Vec<u64>,
}

impl Histogram {
    const LEN: usize = 1_000 + 990 + 301;

    fn new() -> Histogram {
        Histogram {
            buckets: vec![0; Histogram::LEN],
        }
    }

    fn bucket(micros: u64) -> usize {
        let index = if micros < 10_000 {
            micros / 10
        } else if micros < 1_000_000 {
            1_000 + (micros - 10_000) / 1_000
        } else {
            1_990 + ((micros - 1_000_000) / 100_000).min(300)
        };
        index as usize
    }

    /// The upper edge of a bucket, in ms.
    fn upper_ms(index: usize) -> f64 {
        let index = index as f64;
        if index < 1_000.0 {
            (index + 1.0) / 100.0
        } else if index < 1_990.0 {
            10.0 + (index - 999.0)
        } else {
            1_000.0 + (index - 1_989.0) * 100.0
        }
    }

    fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Histogram::bucket(micros)] += 1;
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        let target = ((self.count() as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= target {
                return Histogram::upper_ms(index);
            }
        }
        0.0
    }
}

/// Requests of one kind over some span.
#[derive(Clone)]
struct Tally {
    failures: u64,
    latency: Histogram,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            failures: 0,
            latency: Histogram::new(),
        }
    }

    fn line(&self, kind: Kind) -> String {
        format!(
            "{} {} (p50 {:.1} ms, p99 {:.1} ms{})",
            kind.name(),
            self.latency.count(),
            self.latency.quantile_ms(0.5),
            self.latency.quantile_ms(0.99),
            if self.failures > 0 {
                format!(", {} FAILED", self.failures)
            } else {
                String::new()
            }
        )
    }
}

/// Everything the run counts; shared by every task.
struct Stats {
    minute: Mutex<Vec<Tally>>,
    total: Mutex<Vec<Tally>>,
    /// Failures by what went wrong, e.g. `post: 503 service_unavailable`.
    failures: Mutex<BTreeMap<String, u64>>,
    notices: Mutex<BTreeMap<String, u64>>,
    user_events: AtomicU64,
    all_events: AtomicU64,
    churn_events: AtomicU64,
    streams_open: AtomicUsize,
    stream_failures: AtomicU64,
    churn_moves: AtomicU64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            minute: Mutex::new(vec![Tally::new(); KINDS.len()]),
            total: Mutex::new(vec![Tally::new(); KINDS.len()]),
            failures: Mutex::new(BTreeMap::new()),
            notices: Mutex::new(BTreeMap::new()),
            user_events: AtomicU64::new(0),
            all_events: AtomicU64::new(0),
            churn_events: AtomicU64::new(0),
            streams_open: AtomicUsize::new(0),
            stream_failures: AtomicU64::new(0),
            churn_moves: AtomicU64::new(0),
        }
    }

    fn record(&self, kind: Kind, latency: Duration, outcome: Result<(), String>) {
        let failed = outcome.is_err();
        for tallies in [&self.minute, &self.total] {
            let mut tallies = tallies.lock().unwrap_or_else(PoisonError::into_inner);
            let tally = &mut tallies[kind as usize];
            tally.latency.record(latency);
            tally.failures += u64::from(failed);
        }
        if let Err(why) = outcome {
            self.failure(format!("{}: {why}", kind.name()));
        }
    }

    fn failure(&self, what: String) {
        *self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(what)
            .or_default() += 1;
    }

    fn failure_count(&self) -> u64 {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum()
    }

    fn take_minute(&self) -> Vec<Tally> {
        std::mem::replace(
            &mut *self.minute.lock().unwrap_or_else(PoisonError::into_inner),
            vec![Tally::new(); KINDS.len()],
        )
    }

    fn events(&self) -> u64 {
        self.user_events.load(Ordering::Relaxed)
            + self.all_events.load(Ordering::Relaxed)
            + self.churn_events.load(Ordering::Relaxed)
    }
}

/// The client's random choices: a seeded ChaCha8 stream per task, so a run
/// can be repeated.
struct Rng(ChaCha8Rng);

impl Rng {
    fn seeded(stream: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(stream))
    }

    /// Uniform in `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n.max(1))
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.0.random_bool(p.clamp(0.0, 1.0))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An amount as the API takes it: mostly 10-500, sometimes large.
    fn amount(&mut self) -> String {
        let cents = if self.chance(0.03) {
            500_000 + self.below(4_500_000)
        } else {
            1_000 + self.below(49_000)
        };
        format!("{}.{:02}", cents / 100, cents % 100)
    }
}

/// The part of a history page the client follows.
#[derive(Deserialize)]
struct Page {
    cursor: String,
    has_more: bool,
}

#[derive(Deserialize)]
struct Users {
    users: Vec<String>,
}

#[derive(Deserialize)]
struct BatchAnswer {
    created: u64,
    existing: u64,
    rejected: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// Sends a request and reads the whole answer, timed; `Err` says what was
/// wrong when the status is not one of `expected`.
async fn exchange(
    request: reqwest::RequestBuilder,
    expected: &[u16],
) -> (Duration, Result<Answer, String>) {
    let started = Instant::now();
    let outcome = fetch(request, expected).await;
    (started.elapsed(), outcome)
}

async fn fetch(request: reqwest::RequestBuilder, expected: &[u16]) -> Result<Answer, String> {
    let response = request.send().await.map_err(|e| transport(&e))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| transport(&e))?;
    if !expected.contains(&status) {
        let code = serde_json::from_slice::<ErrorBody>(&body)
            .map(|e| e.error)
            .unwrap_or_default();
        return Err(format!("status {status} {code}").trim_end().to_owned());
    }
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}

/// A whole answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

fn transport(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connect error"
    } else {
        "transport error"
    };
    format!("{what}: {error}")
}

/// Everything the workers share.
struct Load {
    url: String,
    client: reqwest::Client,
    stats: Arc<Stats>,
    /// Users with seeded history, for queries.
    seeded: Vec<String>,
    /// Users the posts and batches go to.
    ingest_users: Vec<String>,
}

/// A ticker at `rate` per second, the first tick offset by `phase` of a
/// period so workers do not fire together.
fn ticker(rate: f64, phase: f64) -> tokio::time::Interval {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let start = tokio::time::Instant::now() + period.mul_f64(phase);
    let mut ticker = tokio::time::interval_at(start, period);
    // Behind (a slow answer)? Carry on from now rather than burst.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

async fn query_worker(load: Arc<Load>, rate: f64, phase: f64, seed: u64, stop: CancellationToken) {
    let mut rng = Rng::seeded(seed);
    let mut ticker = ticker(rate, phase);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let roll = rng.below(100);
        if roll < 85 {
            history(&load, &mut rng).await;
        } else {
            let (kind, path) = match roll {
                85..90 => (Kind::Users, "/users"),
                90..95 => (Kind::Ready, "/ready"),
                _ => (Kind::Metrics, "/metrics"),
            };
            let request = load.client.get(format!("{}{path}", load.url));
            let (latency, outcome) = exchange(request, &[200]).await;
            load.stats.record(kind, latency, outcome.map(drop));
        }
    }
}

/// A page of a seeded user's history with random filters, then maybe the
/// next page or two. Each page is one request.
async fn history(load: &Load, rng: &mut Rng) {
    let user = rng.pick(&load.seeded).clone();
    let today = OffsetDateTime::now_utc().date();
    let mut query: Vec<(&str, String)> = vec![("user_id", user), ("limit", "100".to_owned())];
    match rng.below(4) {
        // The default: the last 30 days.
        0 => {}
        // A span of days within the last year, dates alone.
        1 | 2 => {
            let from = today - time::Duration::days(rng.below(365) as i64 + 1);
            let to = (from + time::Duration::days(rng.below(90) as i64 + 1)).min(today);
            query.push(("from_date", from.to_string()));
            query.push(("to_date", to.to_string()));
        }
        // The whole year, as RFC 3339 instants.
        _ => {
            let now = OffsetDateTime::now_utc();
            let from = now - time::Duration::days(366);
            query.push(("from_date", from.format(&Rfc3339).unwrap_or_default()));
            query.push(("to_date", now.format(&Rfc3339).unwrap_or_default()));
        }
    }
    if rng.chance(0.3) {
        query.push(("min_amount", format!("{}.00", rng.below(300))));
    }
    if rng.chance(0.3) {
        query.push(("max_amount", format!("{}.50", 400 + rng.below(100_000))));
    }
    let pages = match rng.below(10) {
        0..6 => 1,
        6..9 => 2,
        _ => 3,
    };
    let mut cursor: Option<String> = None;
    for _ in 0..pages {
        let mut request = load
            .client
            .get(format!("{}/transactions", load.url))
            .query(&query);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let (latency, outcome) = exchange(request, &[200]).await;
        let page = outcome.and_then(|answer| {
            serde_json::from_slice::<Page>(&answer.body)
                .map_err(|e| format!("unreadable page: {e}"))
        });
        let next = match &page {
            Ok(page) if page.has_more => Some(page.cursor.clone()),
            _ => None,
        };
        load.stats.record(Kind::History, latency, page.map(drop));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
}

async fn post_worker(load: Arc<Load>, rate: f64, phase: f64, seed: u64, stop: CancellationToken) {
    let mut rng = Rng::seeded(seed);
    let mut ticker = ticker(rate, phase);
    // Client ids this worker has had acknowledged, to post again. Only this
    // worker posts them, never two at once, so the answer is always 200.
    let mut sent: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let user = rng.pick(&load.ingest_users);
        let amount = rng.amount();
        let roll = rng.below(100);
        let (body, id, expected) = if roll < 5 && !sent.is_empty() {
            let id = rng.pick(&sent).clone();
            // Other values, the same id: still the stored transaction.
            let body = format!(r#"{{"id":"{id}","user_id":"{user}","amount":"{amount}"}}"#);
            (body, None, 200)
        } else if roll < 15 {
            let id = uuid::Uuid::now_v7().to_string();
            let body = format!(r#"{{"id":"{id}","user_id":"{user}","amount":"{amount}"}}"#);
            (body, Some(id), 201)
        } else {
            let body = format!(r#"{{"user_id":"{user}","amount":"{amount}"}}"#);
            (body, None, 201)
        };
        let request = load
            .client
            .post(format!("{}/transactions", load.url))
            .header("content-type", "application/json")
            .body(body);
        let (latency, outcome) = exchange(request, &[200, 201]).await;
        let outcome = outcome.and_then(|answer| {
            if answer.status == expected {
                Ok(())
            } else {
                Err(format!("status {} where {expected} was due", answer.status))
            }
        });
        if outcome.is_ok()
            && let Some(id) = id
        {
            if sent.len() < 256 {
                sent.push(id);
            } else {
                let slot = rng.below(256) as usize;
                sent[slot] = id;
            }
        }
        load.stats.record(Kind::Post, latency, outcome);
    }
}

async fn batch_worker(load: Arc<Load>, rate: f64, size: usize, stop: CancellationToken) {
    let mut rng = Rng::seeded(1_000_003);
    let mut ticker = ticker(rate, 0.5);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let mut body = String::with_capacity(size * 80 + 32);
        body.push_str(r#"{"transactions":["#);
        for i in 0..size {
            if i > 0 {
                body.push(',');
            }
            let user = rng.pick(&load.ingest_users);
            let amount = rng.amount();
            body.push_str(&format!(r#"{{"user_id":"{user}","amount":"{amount}"}}"#));
        }
        body.push_str("]}");
        let request = load
            .client
            .post(format!("{}/transactions/batch", load.url))
            .header("content-type", "application/json")
            .body(body);
        let (latency, outcome) = exchange(request, &[200]).await;
        let outcome = outcome.and_then(|answer| {
            let counts: BatchAnswer = serde_json::from_slice(&answer.body)
                .map_err(|e| format!("unreadable answer: {e}"))?;
            if counts.created == size as u64 && counts.existing == 0 && counts.rejected == 0 {
                Ok(())
            } else {
                Err(format!(
                    "created {}, existing {}, rejected {} of {size}",
                    counts.created, counts.existing, counts.rejected
                ))
            }
        });
        load.stats.record(Kind::Batch, latency, outcome);
    }
}

/// Which tally a stream's events go to.
#[derive(Clone, Copy)]
enum Watch {
    User,
    All,
    Churn,
}

/// Reads one SSE stream until `until` fires; `Err` says why it stopped
/// before that.
async fn read_stream(
    client: &reqwest::Client,
    url: &str,
    watch: Watch,
    stats: &Stats,
    until: impl Future<Output = ()>,
) -> Result<(), String> {
    let mut response = client.get(url).send().await.map_err(|e| transport(&e))?;
    if !response.status().is_success() {
        return Err(format!("stream answered {}", response.status().as_u16()));
    }
    stats.streams_open.fetch_add(1, Ordering::Relaxed);
    let counter = match watch {
        Watch::User => &stats.user_events,
        Watch::All => &stats.all_events,
        Watch::Churn => &stats.churn_events,
    };
    let mut buffer: Vec<u8> = Vec::new();
    tokio::pin!(until);
    let outcome = loop {
        let chunk = tokio::select! {
            () = &mut until => break Ok(()),
            chunk = response.chunk() => chunk,
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break Err("stream ended".to_owned()),
            Err(error) => break Err(format!("stream broke: {}", transport(&error))),
        };
        buffer.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = find_blank_line(&buffer[start..]) {
            let block = &buffer[start..start + end];
            start += end + 2;
            match classify(block) {
                Block::Event => {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Block::Notice(code) => {
                    *stats
                        .notices
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(code.clone())
                        .or_default() += 1;
                    stats.failure(format!("sse: event: error {code}"));
                }
                Block::Other => {}
            }
        }
        buffer.drain(..start);
    };
    stats.streams_open.fetch_sub(1, Ordering::Relaxed);
    outcome
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|pair| pair == b"\n\n")
}

enum Block {
    Event,
    Notice(String),
    Other,
}

/// An SSE block: a transaction, an `event: error` notice, or a comment.
fn classify(block: &[u8]) -> Block {
    let text = String::from_utf8_lossy(block);
    let mut named = false;
    let mut data = None;
    for line in text.lines() {
        if line.starts_with("event:") {
            named = true;
        } else if let Some(rest) = line.strip_prefix("data:") {
            data = Some(rest.trim_start().to_owned());
        }
    }
    match (named, data) {
        (false, Some(_)) => Block::Event,
        (true, data) => Block::Notice(
            data.and_then(|d| serde_json::from_str::<ErrorBody>(&d).ok())
                .map(|e| e.error)
                .unwrap_or_else(|| "unreadable".to_owned()),
        ),
        (false, None) => Block::Other,
    }
}

/// A stream held for the whole run; should it end or fail, that counts,
/// and it reconnects after a second.
async fn held_stream(
    client: reqwest::Client,
    url: String,
    watch: Watch,
    stats: Arc<Stats>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        if let Err(why) = read_stream(&client, &url, watch, &stats, stop.cancelled()).await {
            stats.stream_failures.fetch_add(1, Ordering::Relaxed);
            stats.failure(format!("sse: {why}"));
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// A stream that watches a user from `pool` for 10-30 s, then another.
async fn churn_stream(
    client: reqwest::Client,
    base: String,
    pool: Arc<Vec<String>>,
    seed: u64,
    stats: Arc<Stats>,
    stop: CancellationToken,
) {
    let mut rng = Rng::seeded(seed);
    while !stop.is_cancelled() {
        let url = format!("{base}/sse/transactions/{}", rng.pick(&pool));
        let stay = Duration::from_secs(10 + rng.below(21));
        let leave = async {
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(stay) => {}
            }
        };
        match read_stream(&client, &url, Watch::Churn, &stats, leave).await {
            Ok(()) => {
                stats.churn_moves.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                stats.stream_failures.fetch_add(1, Ordering::Relaxed);
                stats.failure(format!("sse churn: {why}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(64)
        .build()?;
    let stream_client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()?;
    let seeded = client
        .get(format!("{}/users", args.url))
        .send()
        .await?
        .error_for_status()?
        .json::<Users>()
        .await?
        .users;
    anyhow::ensure!(!seeded.is_empty(), "no users with history: seed first");
    let new_users =
        |n: usize| -> Vec<String> { (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect() };
    let stream_users = new_users(args.stream_users.max(1));
    let churn_users = Arc::new(new_users(args.churn_users.max(1)));
    let mut ingest_users: Vec<String> = seeded.clone();
    ingest_users.extend(stream_users.iter().cloned());
    let distinct: HashSet<&String> = ingest_users.iter().collect();
    anyhow::ensure!(distinct.len() == ingest_users.len(), "user ids repeat");

    let stats = Arc::new(Stats::new());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);

    let mut streams = Vec::new();
    for i in 0..args.streams {
        let user = &stream_users[i % stream_users.len()];
        let url = if i < stream_users.len() {
            format!("{}/sse/transactions/{user}", args.url)
        } else {
            format!("{}/sse/transactions?user_id={user}", args.url)
        };
        streams.push(tokio::spawn(held_stream(
            stream_client.clone(),
            url,
            Watch::User,
            stats.clone(),
            stop.clone(),
        )));
        // Open in waves so the accept queue keeps up.
        if i % 250 == 249 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for _ in 0..args.all_streams {
        let url = format!("{}/sse/transactions", args.url);
        streams.push(tokio::spawn(held_stream(
            stream_client.clone(),
            url,
            Watch::All,
            stats.clone(),
            stop.clone(),
        )));
    }
    let held = args.streams + args.all_streams;
    while stats.streams_open.load(Ordering::Relaxed) < held {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "only {} of {held} streams opened in 60 s",
            stats.streams_open.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{held} streams open ({} per-user over {} users, {} all-users) in {:.1} s; {} seeded users",
        args.streams,
        stream_users.len(),
        args.all_streams,
        started.elapsed().as_secs_f64(),
        seeded.len()
    );

    let load = Arc::new(Load {
        url: args.url.clone(),
        client,
        stats: stats.clone(),
        seeded,
        ingest_users,
    });
    let mut workers = Vec::new();
    for i in 0..args.churn_streams {
        streams.push(tokio::spawn(churn_stream(
            stream_client.clone(),
            args.url.clone(),
            churn_users.clone(),
            2_000_000 + i as u64,
            stats.clone(),
            stop.clone(),
        )));
    }
    let query_workers = args.query_workers.max(1);
    for i in 0..query_workers {
        workers.push(tokio::spawn(query_worker(
            load.clone(),
            args.query_rate / query_workers as f64,
            i as f64 / query_workers as f64,
            i as u64,
            stop.clone(),
        )));
    }
    let ingest_workers = args.ingest_workers.max(1);
    for i in 0..ingest_workers {
        workers.push(tokio::spawn(post_worker(
            load.clone(),
            args.ingest_rate / ingest_workers as f64,
            i as f64 / ingest_workers as f64,
            1_000 + i as u64,
            stop.clone(),
        )));
    }
    if args.batch_rate > 0.0 && args.batch_size > 0 {
        workers.push(tokio::spawn(batch_worker(
            load.clone(),
            args.batch_rate,
            args.batch_size,
            stop.clone(),
        )));
    }

    // A line a minute until the deadline.
    let mut minute = 0;
    let mut events_before = 0;
    let mut next = tokio::time::Instant::now() + Duration::from_secs(60);
    let deadline = tokio::time::Instant::from_std(deadline);
    while next <= deadline {
        tokio::time::sleep_until(next).await;
        minute += 1;
        let tallies = stats.take_minute();
        let events = stats.events();
        let failed: u64 = tallies.iter().map(|t| t.failures).sum();
        let lines: Vec<String> = KINDS
            .iter()
            .map(|&kind| tallies[kind as usize].line(kind))
            .collect();
        println!(
            "minute {minute:>2}: {}; failed {failed}; SSE events {} ({} streams open, {} failures so far)",
            lines.join(", "),
            events - events_before,
            stats.streams_open.load(Ordering::Relaxed),
            stats.stream_failures.load(Ordering::Relaxed),
        );
        events_before = events;
        next += Duration::from_secs(60);
    }
    tokio::time::sleep_until(deadline).await;
    let still_open = stats.streams_open.load(Ordering::Relaxed);
    stop.cancel();
    for worker in workers {
        let _ = worker.await;
    }
    for stream in streams {
        let _ = stream.await;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let total = stats
        .total
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let requests: u64 = total.iter().map(|t| t.latency.count()).sum();
    println!("== soak summary: {elapsed:.0} s ==");
    for kind in KINDS {
        let tally = &total[kind as usize];
        println!(
            "{}, {:.1}/s",
            tally.line(kind),
            tally.latency.count() as f64 / elapsed
        );
    }
    let user = stats.user_events.load(Ordering::Relaxed);
    let all = stats.all_events.load(Ordering::Relaxed);
    let churn = stats.churn_events.load(Ordering::Relaxed);
    println!(
        "requests {requests}, non-2xx or failed {}",
        stats.failure_count()
    );
    println!(
        "SSE: {held} held streams, {still_open} open at the end (with moving ones); \
         {} stream failures; {} moves of {} moving streams",
        stats.stream_failures.load(Ordering::Relaxed),
        stats.churn_moves.load(Ordering::Relaxed),
        args.churn_streams
    );
    println!(
        "SSE events received {}: per-user {user}, all-users {all}, moving {churn}",
        user + all + churn
    );
    let notices = stats.notices.lock().unwrap_or_else(PoisonError::into_inner);
    if notices.is_empty() {
        println!("event: error notices: none");
    } else {
        println!("event: error notices: {notices:?}");
    }
    let failures = stats
        .failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for (what, count) in failures.iter() {
        println!("  FAILED {count} x {what}");
    }
    anyhow::ensure!(failures.is_empty(), "{} failures", stats.failure_count());
    println!("result: every request answered 2xx as expected; no stream failed");
    Ok(())
}
