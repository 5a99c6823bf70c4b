//! Dashboard under load: does the page at `/` stay responsive while
//! transactions arrive at `--rate` per second? Used by `bench/dashboard.sh`.
//!
//! Opens the dashboard in a headless Chromium (through a chromedriver of its
//! own, window 1400x900), installs probes in the page (a `longtask`
//! observer, a `requestAnimationFrame` frame recorder, and a
//! `MutationObserver` noting each live row as it is added), then posts
//! `--rate` transactions a second, evenly paced, for `--seconds`, over
//! `--users` users (each user's every 20th amount a spike, so some are
//! flagged). While the load runs it clicks two controls from inside the page
//! and times how long each takes to take effect and reach the next frame:
//! "Log scale" (re-renders the chart in place) and "Refresh users" (a
//! `GET /users` round trip, then the picker is rebuilt). Neither changes the
//! live stream's scope, so every posted transaction should reach the table.
//!
//! Exits non-zero when fewer than 99% of the posted transactions were shown
//! as rows, when a 1-second window had fewer than 20 frames, or when a long
//! task took more than 200 ms.
//!
//! Needs Debian's `chromium` and `chromium-driver`, or `CHROMIUM` and
//! `CHROMEDRIVER` naming the two executables.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

#[derive(Parser)]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:18185")]
    url: String,
    /// Transactions posted per second.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Distinct users the transactions belong to.
    #[arg(long, default_value_t = 20)]
    users: usize,
}

/// Share of the posted transactions that must be shown as rows.
const MIN_SHOWN: f64 = 0.99;
/// Fewest frames any 1-second window of the load may have.
const MIN_FRAMES_PER_SECOND: usize = 20;
/// Longest task allowed on the page's main thread.
const MAX_LONG_TASK_MS: f64 = 200.0;
/// Clicks of each control while the load runs.
const PROBES_PER_CONTROL: usize = 5;
/// How long the page may take to show the last events once posting stops.
const DRAIN: Duration = Duration::from_secs(5);

/// Installed once the stream is live; `window.__bench` keeps what it saw.
const PROBES: &str = r#"
const bench = window.__bench = { frames: [], longTasks: [], shownAt: new Map(), anomalies: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) bench.longTasks.push([e.startTime, e.duration]);
}).observe({ type: 'longtask', buffered: true });
const frame = (t) => { bench.frames.push(t); requestAnimationFrame(frame); };
requestAnimationFrame(frame);
new MutationObserver((records) => {
  const now = performance.timeOrigin + performance.now();
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (!node.dataset || !node.dataset.id || bench.shownAt.has(node.dataset.id)) continue;
      bench.shownAt.set(node.dataset.id, now);
      if (node.dataset.anomaly === 'true') bench.anomalies += 1;
    }
  }
}).observe(document.getElementById('live-rows'), { childList: true });
return performance.now();
"#;

/// The JS heap in use after a full collection (`--js-flags=--expose-gc`).
const HEAP: &str = "window.gc(); return performance.memory.usedJSHeapSize;";

/// Clicks "Log scale": its handler re-renders `#chart` synchronously.
const CLICK_LOG_SCALE: &str = r#"
const done = arguments[arguments.length - 1];
const chart = document.getElementById('chart');
const before = chart.firstChild;
const t0 = performance.now();
document.getElementById('chart-log').click();
const handled = performance.now() - t0;
const effect = chart.firstChild !== before;
requestAnimationFrame(() => setTimeout(() =>
  done({ effect, handled, painted: performance.now() - t0 })));
"#;

/// Clicks "Refresh users": the picker is rebuilt once `GET /users` answers.
const CLICK_REFRESH_USERS: &str = r#"
const done = arguments[arguments.length - 1];
const picker = document.getElementById('user');
const t0 = performance.now();
let handled = 0;
const timer = setTimeout(() => { observer.disconnect(); done({ effect: false, handled, painted: 0 }); }, 5000);
const observer = new MutationObserver(() => {
  observer.disconnect();
  clearTimeout(timer);
  handled = performance.now() - t0;
  requestAnimationFrame(() => setTimeout(() =>
    done({ effect: true, handled, painted: performance.now() - t0 })));
});
observer.observe(picker, { childList: true });
document.getElementById('refresh-users').click();
"#;

/// One timed click.
struct Probe {
    /// Click to the effect in the DOM, ms.
    handled: f64,
    /// Click to the frame after the effect, ms.
    painted: f64,
    /// The whole WebDriver round trip, as seen from here, ms.
    round_trip: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.rate <= 0.0 || args.users == 0 || args.seconds == 0 {
        bail!("--rate, --users and --seconds must be positive");
    }
    let browser = Browser::start().await?;
    let outcome = measure(&args, &browser.client).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), browser.client.clone().close()).await;
    drop(browser);
    let failures = outcome?;
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    println!("ok: every threshold met");
    Ok(())
}

/// Runs the load against the open page, prints the figures, and returns
/// the thresholds missed.
async fn measure(args: &Args, page: &Client) -> anyhow::Result<Vec<String>> {
    page.goto(&format!("{}/", args.url))
        .await
        .context("the dashboard opens")?;
    wait_for(
        page,
        "the live stream to connect",
        "return document.getElementById('stream-state').dataset.state === 'live'",
    )
    .await?;
    // The page settles (users, health) before the probes start.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = page.execute(PROBES, vec![]).await?;
    let start = start.as_f64().context("a start time")?;
    let heap_start = page.execute(HEAP, vec![]).await?.as_f64().unwrap_or(0.0);

    let users: Vec<String> = (0..args.users)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let total = (args.rate * args.seconds as f64).round() as usize;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let poster = tokio::spawn(post_all(
        client,
        format!("{}/transactions", args.url),
        users,
        total,
        Duration::from_secs_f64(1.0 / args.rate),
    ));

    // Clicks spread over the load, alternating the two controls.
    let probes = 2 * PROBES_PER_CONTROL;
    let gap = Duration::from_secs(args.seconds) / (probes as u32 + 1);
    let mut log_scale = Vec::new();
    let mut refresh_users = Vec::new();
    for i in 0..probes {
        tokio::time::sleep(gap).await;
        let (script, into) = if i % 2 == 0 {
            (CLICK_LOG_SCALE, &mut log_scale)
        } else {
            (CLICK_REFRESH_USERS, &mut refresh_users)
        };
        into.push(click(page, script).await?);
    }
    let posted = poster.await.context("the poster")??;
    let posted_ok = posted.len();
    let end = page.execute("return performance.now()", vec![]).await?;
    let end = end.as_f64().context("an end time")?;

    // The last events are still on their way.
    let deadline = Instant::now() + DRAIN;
    let ids: Vec<Value> = posted.keys().map(|id| json!(id)).collect();
    let count_shown = "const ids = arguments[0]; \
                       return ids.filter((id) => window.__bench.shownAt.has(id)).length";
    while Instant::now() < deadline {
        let shown = page.execute(count_shown, vec![json!(ids)]).await?;
        if shown.as_u64() == Some(posted_ok as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = page
        .execute(
            "const b = window.__bench; return { \
               frames: b.frames, longTasks: b.longTasks, anomalies: b.anomalies, \
               shownAt: Object.fromEntries(b.shownAt), \
               received: document.getElementById('stat-received').textContent, \
               rows: document.querySelectorAll('#live-rows tr[data-id]').length }",
            vec![],
        )
        .await?;
    let heap_end = page.execute(HEAP, vec![]).await?.as_f64().unwrap_or(0.0);

    // Delivery, and the time from each post to its row.
    let shown_at = seen["shownAt"].as_object().context("shownAt")?;
    let mut latencies: Vec<f64> = posted
        .iter()
        .filter_map(|(id, sent)| shown_at.get(id)?.as_f64().map(|at| at - sent))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let shown = latencies.len();
    let received: u64 = seen["received"]
        .as_str()
        .unwrap_or_default()
        .replace(',', "")
        .parse()
        .unwrap_or(0);

    // Frames inside the load.
    let frames: Vec<f64> = numbers(&seen["frames"])
        .into_iter()
        .filter(|t| (start..=end).contains(t))
        .collect();
    let span_s = (end - start) / 1000.0;
    let mean_fps = frames.len() as f64 / span_s;
    let worst_window = worst_second(&frames, start, end);
    let longest_gap = frames.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);

    // Long tasks inside the load (the drain and the read-out are excluded).
    let long_tasks: Vec<f64> = seen["longTasks"]
        .as_array()
        .context("longTasks")?
        .iter()
        .filter_map(|entry| {
            let started = entry[0].as_f64()?;
            (start..=end)
                .contains(&started)
                .then_some(entry[1].as_f64()?)
        })
        .collect();
    let long_total = long_tasks.iter().fold(0.0, |sum, ms| sum + ms);
    let long_max = long_tasks.iter().copied().fold(0.0, f64::max);

    let mb = |bytes: f64| bytes / 1_048_576.0;
    println!(
        "== dashboard, {} transactions/s for {} s over {} users ==",
        args.rate, args.seconds, args.users
    );
    println!(
        "posted {posted_ok} of {total} (201); rows shown {shown} ({:.2}%), header counter {received}, \
         {} flagged shown, {} rows in the table",
        100.0 * shown as f64 / posted_ok.max(1) as f64,
        seen["anomalies"],
        seen["rows"],
    );
    println!(
        "post to row: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "frames: {mean_fps:.1}/s mean, worst 1-s window {worst_window}, longest gap {longest_gap:.0} ms"
    );
    println!(
        "long tasks: {} totalling {long_total:.0} ms, longest {long_max:.0} ms",
        long_tasks.len()
    );
    for (name, probes) in [
        ("'Log scale' click", &log_scale),
        ("'Refresh users' click (GET /users)", &refresh_users),
    ] {
        let max = |f: fn(&Probe) -> f64| probes.iter().map(f).fold(0.0, f64::max);
        println!(
            "{name}, max of {}: effect {:.1} ms, next frame {:.1} ms, WebDriver round trip {:.1} ms",
            probes.len(),
            max(|p| p.handled),
            max(|p| p.painted),
            max(|p| p.round_trip),
        );
    }
    println!(
        "JS heap after GC: start {:.1} MB, end {:.1} MB",
        mb(heap_start),
        mb(heap_end)
    );

    let mut failures = Vec::new();
    if (shown as f64) < MIN_SHOWN * posted_ok as f64 || posted_ok < total {
        failures.push(format!(
            "{shown} of {total} transactions shown (posted {posted_ok}), below {:.0}%",
            100.0 * MIN_SHOWN
        ));
    }
    if worst_window < MIN_FRAMES_PER_SECOND {
        failures.push(format!(
            "a 1-second window had {worst_window} frames, below {MIN_FRAMES_PER_SECOND}"
        ));
    }
    if long_max > MAX_LONG_TASK_MS {
        failures.push(format!(
            "a long task took {long_max:.0} ms, above {MAX_LONG_TASK_MS:.0} ms"
        ));
    }
    Ok(failures)
}

/// Posts `total` transactions evenly paced, each on its own task so a slow
/// answer does not delay the next; the ids of those created, with when each
/// was sent (ms since the epoch, the page's clock).
async fn post_all(
    client: reqwest::Client,
    url: String,
    users: Vec<String>,
    total: usize,
    every: Duration,
) -> anyhow::Result<HashMap<String, f64>> {
    let mut ticks = tokio::time::interval(every);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        ticks.tick().await;
        // Each user's every 20th amount is a spike, users staggered, so a
        // window of 20 holds one spike and every spike after the first
        // ten amounts is flagged.
        let (round, user) = (i / users.len(), i % users.len());
        let amount = if (round + user) % 20 == 19 {
            "50000.00".to_owned()
        } else {
            format!("{}.{:02}", 100 + (i * 37) % 100, i % 100)
        };
        let body = json!({"user_id": users[user], "amount": amount});
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let sent = epoch_ms();
            let response = client.post(&url).json(&body).send().await.ok()?;
            if response.status() != reqwest::StatusCode::CREATED {
                return None;
            }
            let reply: Value = response.json().await.ok()?;
            Some((reply["id"].as_str()?.to_owned(), sent))
        }));
    }
    let mut posted = HashMap::with_capacity(total);
    for task in tasks {
        if let Some((id, sent)) = task.await? {
            posted.insert(id, sent);
        }
    }
    Ok(posted)
}

/// Runs one click script and times it from here as well.
async fn click(page: &Client, script: &str) -> anyhow::Result<Probe> {
    let started = Instant::now();
    let result = page.execute_async(script, vec![]).await?;
    let round_trip = started.elapsed().as_secs_f64() * 1000.0;
    if result["effect"] != true {
        bail!("a click had no effect in 5 s: {result}");
    }
    Ok(Probe {
        handled: result["handled"].as_f64().unwrap_or(f64::NAN),
        painted: result["painted"].as_f64().unwrap_or(f64::NAN),
        round_trip,
    })
}

/// The fewest frames in any 1-second window inside `[start, end]`; the
/// count only changes as a window's start passes a frame, so those starts
/// (and `start` itself) are the only ones to try.
fn worst_second(frames: &[f64], start: f64, end: f64) -> usize {
    let in_window = |from: f64, inclusive: bool| {
        let first = frames.partition_point(|&t| if inclusive { t < from } else { t <= from });
        let last = frames.partition_point(|&t| t < from + 1000.0);
        last.saturating_sub(first)
    };
    std::iter::once(in_window(start, true))
        .chain(
            frames
                .iter()
                .filter(|&&t| t + 1000.0 <= end)
                .map(|&t| in_window(t, false)),
        )
        .min()
        .unwrap_or(0)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Polls `script` until it returns `true`, for at most 15 s.
async fn wait_for(page: &Client, what: &str, script: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while page.execute(script, vec![]).await? != true {
        if Instant::now() > deadline {
            bail!("waited 15 s for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A headless Chromium session through a chromedriver of our own.
struct Browser {
    client: Client,
    /// Killed when dropped.
    _driver: Child,
}

impl Browser {
    async fn start() -> anyhow::Result<Browser> {
        let driver = executable("CHROMEDRIVER", &["chromedriver"])?;
        let chromium = executable("CHROMIUM", &["chromium", "chromium-browser"])?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("{} does not start", driver.display()))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = child.try_wait()? {
                bail!("{} exited with {status}", driver.display());
            }
            if Instant::now() > deadline {
                bail!("{} did not listen in 15 s", driver.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1400,900",
                    // Exact heap figures, and a collection before reading them.
                    "--enable-precise-memory-info",
                    "--js-flags=--expose-gc",
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("chromium starts under chromedriver")?;
        Ok(Browser {
            client,
            _driver: child,
        })
    }
}

/// The executable named by `variable`, else the first of `names` on the
/// `PATH` or in /usr/bin.
fn executable(variable: &str, names: &[&str]) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "{} not found: apt-get install -y chromium chromium-driver, or set {variable}",
                names.join(" or ")
            )
        })
}
