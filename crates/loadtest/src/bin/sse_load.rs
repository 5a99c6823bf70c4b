//! SSE load: many concurrent viewers of per-user live streams, the latency
//! from a transaction's creation to its arrival, and whether every event
//! reached every viewer. Used by `bench/sse.sh`.
//!
//! Opens `--connections` streams spread over `--users` users (and over the
//! servers given to `--url`, round-robin): for each
//! user one `GET /sse/transactions/{user}`, whose connection drives that
//! user's simulated feed (one transaction per interval), and the rest
//! `GET /sse/transactions?user_id={user}`, the shared view of the user.
//! Measures for `--seconds`, then checks each stream against the user's
//! stored history for the measured span: the feed is the user's only
//! source of transactions, so both kinds must have received all of it.
//!
//! The latency is split where the event id allows: a Redis Stream entry id
//! starts with the millisecond Redis appended it, so creation to that
//! moment is the pipeline (the simulation tick's batch scored, stored and
//! published) and that moment to receipt is delivery (the relay's read, the
//! fan-out, the socket and this client). A ticker measures this client's
//! own scheduling lag, which delivery includes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// Server base URL; several, comma-separated, spread the connections
    /// over them (server processes sharing one database and Redis), so
    /// events cross processes.
    #[arg(long, default_value = "http://127.0.0.1:18183", value_delimiter = ',')]
    url: Vec<String>,
    /// Concurrent SSE connections.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Distinct users they watch.
    #[arg(long, default_value_t = 4_000)]
    users: usize,
    /// Measured seconds, after every connection is open.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
}

/// Latency histogram in 100 µs buckets up to 10 s.
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: (0..100_001).map(|_| AtomicU64::new(0)).collect(),
        }
    }
    fn record(&self, latency: Duration) {
        let bucket = (latency.as_micros() / 100).min(100_000) as usize;
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }
    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
    fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        let target = ((total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target.max(1) {
                return (i as f64 + 1.0) / 10.0;
            }
        }
        f64::NAN
    }
}

/// How often the lag ticker wakes.
const TICK: Duration = Duration::from_millis(10);

/// When Redis appended an event: the milliseconds that start its stream
/// entry id (`<ms>-<seq>`, possibly followed by `.<feed>`); `None` for an
/// id of another form.
fn appended_at(id: &str) -> Option<OffsetDateTime> {
    let (millis, rest) = id.split_once('-')?;
    rest.split('.').next()?.parse::<u64>().ok()?;
    let millis: i128 = millis.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok()
}

/// What one connection saw inside the measured span.
struct Seen {
    user: String,
    ids: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let users: Vec<String> = (0..args.users)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let histogram = Arc::new(Histogram::new());
    let pipeline = Arc::new(Histogram::new());
    let delivery = Arc::new(Histogram::new());
    let client_lag = Arc::new(Histogram::new());
    let span: Arc<Mutex<Option<(OffsetDateTime, OffsetDateTime)>>> = Arc::new(Mutex::new(None));
    let open = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let results: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(tokio::sync::Notify::new());

    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let user = users[i % users.len()].clone();
        // The n-th connection of a user goes to the server after the one
        // of its (n-1)-th, so a user's viewers sit on other processes than
        // its feed.
        let server = &args.url[(i + i / users.len()) % args.url.len()];
        let url = if i < users.len() {
            format!("{server}/sse/transactions/{user}")
        } else {
            format!("{server}/sse/transactions?user_id={user}")
        };
        let (client, histogram, pipeline, delivery, span, open, failed, results, stop) = (
            client.clone(),
            histogram.clone(),
            pipeline.clone(),
            delivery.clone(),
            span.clone(),
            open.clone(),
            failed.clone(),
            results.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut response = match client.get(&url).send().await {
                Ok(response) if response.status().is_success() => response,
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            open.fetch_add(1, Ordering::Relaxed);
            let mut buffer = String::new();
            let mut ids = Vec::new();
            let stopped = stop.notified();
            tokio::pin!(stopped);
            loop {
                let chunk = tokio::select! {
                    () = &mut stopped => break,
                    chunk = response.chunk() => chunk,
                };
                let Ok(Some(chunk)) = chunk else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    break;
                };
                let now = OffsetDateTime::now_utc();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                        continue;
                    };
                    if block.lines().any(|l| l.starts_with("event:")) {
                        continue;
                    }
                    let Ok(json) = serde_json::from_str::<serde_json::Value>(data) else {
                        continue;
                    };
                    let Some(date) = json["txn_date"]
                        .as_str()
                        .and_then(|d| OffsetDateTime::parse(d, &Rfc3339).ok())
                    else {
                        continue;
                    };
                    let Some(id) = json["id"].as_str() else {
                        continue;
                    };
                    let window = *span.lock().await;
                    if let Some((from, to)) = window
                        && date >= from
                        && date <= to
                    {
                        ids.push(id.to_owned());
                        histogram.record((now - date).try_into().unwrap_or_default());
                        if let Some(appended) = block
                            .lines()
                            .find_map(|l| l.strip_prefix("id: "))
                            .and_then(appended_at)
                        {
                            pipeline.record((appended - date).try_into().unwrap_or_default());
                            delivery.record((now - appended).try_into().unwrap_or_default());
                        }
                    }
                }
            }
            results.lock().await.push(Seen { user, ids });
        }));
        // Open in waves so the accept queue keeps up.
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while open.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < args.connections {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("connections did not open in 2 minutes");
        }
    }
    println!(
        "{} connections open over {} users in {:.1} s ({} failed)",
        open.load(Ordering::Relaxed),
        users.len(),
        started.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
    // Let every simulation start before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ticker = {
        let (client_lag, stop) = (client_lag.clone(), stop.clone());
        tokio::spawn(async move {
            let stopped = stop.notified();
            tokio::pin!(stopped);
            loop {
                let asked = std::time::Instant::now();
                tokio::select! {
                    () = &mut stopped => break,
                    () = tokio::time::sleep(TICK) => {}
                }
                client_lag.record(asked.elapsed().saturating_sub(TICK));
            }
        })
    };
    let from = OffsetDateTime::now_utc();
    let to = from + Duration::from_secs(args.seconds);
    *span.lock().await = Some((from, to));
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    // Events of the span's last moments are still on their way.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.notify_waiters();
    for task in tasks {
        let _ = task.await;
    }
    let _ = ticker.await;

    // Expected: each user's stored transactions in the span.
    let format = |t: OffsetDateTime| t.format(&Rfc3339).expect("a date");
    let mut stored = std::collections::HashMap::new();
    for user in &users {
        let page: serde_json::Value = client
            .get(format!("{}/transactions", args.url[0]))
            .query(&[
                ("user_id", user.as_str()),
                ("from_date", &format(from)),
                ("to_date", &format(to)),
                ("limit", "1000"),
            ])
            .send()
            .await?
            .json()
            .await?;
        let ids: HashSet<String> = page["transactions"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        stored.insert(user.clone(), ids);
    }
    let results = results.lock().await;
    let (mut expected, mut delivered, mut missing, mut duplicates, mut unknown) = (0, 0, 0, 0, 0);
    for seen in results.iter() {
        let want = &stored[&seen.user];
        let got: HashSet<&String> = seen.ids.iter().collect();
        expected += want.len();
        delivered += seen.ids.len();
        duplicates += seen.ids.len() - got.len();
        missing += want.iter().filter(|id| !got.contains(id)).count();
        unknown += got.iter().filter(|id| !want.contains(**id)).count();
    }
    let transactions: usize = stored.values().map(HashSet::len).sum();
    println!(
        "{transactions} transactions in {} s: {:.0}/s; {delivered} events delivered, {:.0}/s",
        args.seconds,
        transactions as f64 / args.seconds as f64,
        delivered as f64 / args.seconds as f64
    );
    println!(
        "expected deliveries {expected}, missing {missing} ({:.3}%), duplicates {duplicates}, not stored {unknown}",
        100.0 * missing as f64 / expected.max(1) as f64
    );
    println!(
        "creation-to-receipt latency: p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms",
        histogram.quantile(0.5),
        histogram.quantile(0.99),
        histogram.quantile(0.999)
    );
    if pipeline.count() > 0 {
        println!(
            "  of which creation to publish (pipeline): p50 {:.1} ms, p99 {:.1} ms; publish to receipt (delivery): p50 {:.1} ms, p99 {:.1} ms",
            pipeline.quantile(0.5),
            pipeline.quantile(0.99),
            delivery.quantile(0.5),
            delivery.quantile(0.99)
        );
    }
    println!(
        "  this client's scheduling lag (a {} ms ticker): p50 {:.1} ms, p99 {:.1} ms",
        TICK.as_millis(),
        client_lag.quantile(0.5),
        client_lag.quantile(0.99)
    );
    if missing > 0 || duplicates > 0 || unknown > 0 {
        anyhow::bail!("not every event reached every subscriber exactly once");
    }
    Ok(())
}
