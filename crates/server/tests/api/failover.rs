//! A Redis Cluster master killed (`kill -9`) during a steady ingest: after
//! its replica takes over, every acknowledged transaction is in Postgres
//! exactly once, ingest goes on, windows are rebuilt from Postgres where
//! Redis lost them, and an SSE stream resumes (or says what it lost).
//!
//! The test starts a cluster of its own (scripts/redis-cluster.sh, 3
//! masters with a replica each, on free ports, cluster-node-timeout 2 s), so
//! killing a node disturbs no other test. It fails if redis-server is not
//! installed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{Keys, WindowStore};
use txwatch_domain::UserId;
use txwatch_storage::testing::TestDatabase;

use crate::helpers::{spawn_app_on_redis, within};
use crate::sse_client;

/// A Redis Cluster of the test's own, stopped and removed when dropped.
struct OwnCluster {
    dir: PathBuf,
    nodes: Vec<String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/redis-cluster.sh")
}

impl OwnCluster {
    fn start() -> OwnCluster {
        let dir = std::env::temp_dir().join(format!(
            "txwatch-failover-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let output = Command::new("bash")
            .arg(script())
            .arg("up")
            .arg(&dir)
            // above the ports a shared test cluster takes first
            .env("REDIS_CLUSTER_BASE_PORT", "7140")
            .output()
            .expect("scripts/redis-cluster.sh runs");
        assert!(
            output.status.success(),
            "the cluster did not start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let nodes = stdout
            .trim()
            .strip_prefix("export APP_REDIS__CLUSTER_NODES=")
            .expect("the script prints the nodes")
            .split(',')
            .map(str::to_owned)
            .collect();
        OwnCluster { dir, nodes }
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .map(|url| {
                url.rsplit(':')
                    .next()
                    .and_then(|port| port.parse().ok())
                    .expect("a port")
            })
            .collect()
    }

    /// The port of the master serving `key`'s slot, asked of `via`; none
    /// while no reachable master serves it.
    fn master_of(&self, via: u16, key: &str) -> Option<u16> {
        let slot: u16 = self
            .cli(via, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("a slot");
        for line in self.cli(via, &["cluster", "nodes"]).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                match (low.parse::<u16>(), high.parse::<u16>()) {
                    (Ok(low), Ok(high)) => (low..=high).contains(&slot),
                    _ => false,
                }
            });
            if serves {
                let address = fields[1].split('@').next().expect("an address");
                return address
                    .rsplit(':')
                    .next()
                    .and_then(|port| port.parse().ok());
            }
        }
        None
    }

    /// Kills the node on `port` as a crash would (SIGKILL).
    fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.join(port.to_string()).join("redis.pid"))
            .expect("the node's pid file");
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Whether every node but `dead` says `cluster_state:ok`.
    fn ok_without(&self, dead: u16) -> bool {
        self.ports()
            .into_iter()
            .filter(|&port| port != dead)
            .all(|port| {
                self.cli(port, &["cluster", "info"])
                    .contains("cluster_state:ok")
            })
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}

/// What the ingest clients saw: the ids answered 201 or 200, and how many
/// requests failed (503 or no answer).
#[derive(Default)]
struct Tally {
    acknowledged: Vec<String>,
    failed: usize,
    acknowledged_after_failover: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_master_during_ingest_loses_no_acknowledged_transaction() {
    let cluster = OwnCluster::start();
    let redis = within(TestRedis::create_on(cluster.nodes.clone())).await;
    let keys = redis.keys().clone();
    let config = redis.config().clone();
    let app = spawn_app_on_redis(TestDatabase::create().await, redis, |settings| {
        // a rebuilt window must not wait for a long history
        settings.http.ingest_timeout_ms = settings.http.ingest_timeout_ms.max(8_000);
    })
    .await;
    let app = Arc::new(app);
    let users: Vec<String> = (0..40).map(|_| uuid::Uuid::new_v4().to_string()).collect();

    // A stream of every user's transactions, open before the crash.
    let mut stream = sse_client::open(&format!("{}/sse/transactions", app.address), None).await;
    assert_eq!(stream.status, 200);

    let tally = Arc::new(Mutex::new(Tally::default()));
    let failed_over = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..4 {
        let (app, users, tally, stop, failed_over) = (
            Arc::clone(&app),
            users.clone(),
            Arc::clone(&tally),
            Arc::clone(&stop),
            Arc::clone(&failed_over),
        );
        clients.push(tokio::spawn(async move {
            let mut round = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let user = &users[(client * 7 + round) % users.len()];
                let id = uuid::Uuid::new_v4().to_string();
                let body = json!({"id": id, "user_id": user, "amount": 10 + round % 50});
                let response = app
                    .client
                    .post(format!("{}/transactions", app.address))
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .timeout(Duration::from_secs(15))
                    .send()
                    .await;
                let acknowledged = matches!(&response, Ok(r) if r.status().is_success());
                {
                    let mut tally = tally.lock().expect("tally");
                    if acknowledged {
                        tally.acknowledged.push(id);
                        if failed_over.load(std::sync::atomic::Ordering::Relaxed) {
                            tally.acknowledged_after_failover += 1;
                        }
                    } else {
                        tally.failed += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    // Steady ingest, then the master holding the event stream dies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_crash = tally.lock().expect("tally").acknowledged.len();
    assert!(
        before_crash > 20,
        "only {before_crash} acknowledged before the crash"
    );
    let first = cluster.ports()[0];
    let victim = cluster
        .master_of(first, &keys.event_shard(0))
        .expect("a master serves the event stream");
    let survivor = cluster
        .ports()
        .into_iter()
        .find(|&port| port != victim)
        .expect("another node");
    cluster.kill(victim);
    let killed_at = Instant::now();
    // Until the others mark it failed (cluster-node-timeout), they still
    // say ok; the failover is over when a replica serves its slots.
    let new_master = loop {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "no failover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(master) = cluster.master_of(survivor, &keys.event_shard(0))
            && master != victim
            && cluster.ok_without(victim)
        {
            break master;
        }
    };
    failed_over.store(true, std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "failover after {:?}: master {victim} replaced by {new_master}",
        killed_at.elapsed()
    );

    // Ingest goes on after the failover.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        within(client).await.expect("client task");
    }
    let tally = std::mem::take(&mut *tally.lock().expect("tally"));
    assert!(
        tally.acknowledged_after_failover > 20,
        "ingest did not recover: {} acknowledged after the failover",
        tally.acknowledged_after_failover
    );

    // Every acknowledged transaction is stored, exactly once.
    let client = within(app.db.pool().get()).await.expect("connection");
    let rows = within(client.query("select id, count(*) from transactions group by id", &[]))
        .await
        .expect("count");
    let stored: HashMap<uuid::Uuid, i64> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let missing: Vec<&String> = tally
        .acknowledged
        .iter()
        .filter(|id| !stored.contains_key(&id.parse::<uuid::Uuid>().expect("uuid")))
        .collect();
    eprintln!(
        "acknowledged {}, failed {}, stored {} ({} acknowledged after the failover)",
        tally.acknowledged.len(),
        tally.failed,
        stored.len(),
        tally.acknowledged_after_failover
    );
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    assert!(
        stored.values().all(|&count| count == 1),
        "an id stored twice"
    );
    assert!(stored.len() >= tally.acknowledged.len());

    // Windows: one more transaction per user goes through (a window lost
    // with the master is rebuilt from Postgres), and every window then
    // holds only transactions Postgres has, ending with that one.
    let windows = WindowStore::new(
        within(async { txwatch_cache::connect(&config) })
            .await
            .expect("pool"),
        Keys::new(config.key_prefix.as_str()),
        20,
        Duration::from_secs(3_600),
    );
    for user in &users {
        let id = uuid::Uuid::new_v4();
        let reply = app
            .post(
                "/transactions",
                &json!({"id": id, "user_id": user, "amount": 7}),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        let user_id = UserId(user.parse().expect("uuid"));
        let window = within(windows.read(user_id)).await.expect("window");
        assert_eq!(
            window.last().map(|entry| entry.id.0),
            Some(id),
            "the window of {user} ends with its newest transaction"
        );
        let held: HashSet<uuid::Uuid> = within(client.query(
            "select id from transactions where user_id = $1",
            &[&user_id.0],
        ))
        .await
        .expect("history")
        .iter()
        .map(|row| row.get(0))
        .collect();
        assert!(
            window.iter().all(|entry| held.contains(&entry.id.0)),
            "the window of {user} holds a transaction Postgres does not have"
        );
    }

    // The stream opened before the crash: resume it from the last id it
    // got; it answers 200 and either replays or says what it lost, then
    // delivers new transactions.
    let mut last_id = None;
    while let Some(event) = stream.next(Duration::from_millis(200)).await {
        if event.is_transaction() {
            last_id = event.id.clone();
        }
    }
    let last_id = last_id.expect("the stream delivered transactions before the crash");
    let mut resumed =
        sse_client::open(&format!("{}/sse/transactions", app.address), Some(&last_id)).await;
    assert_eq!(resumed.status, 200);
    let probe = uuid::Uuid::new_v4();
    let reply = app
        .post(
            "/transactions",
            &json!({"id": probe, "user_id": users[0], "amount": 3}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut notices = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "the probe never arrived");
        let Some(event) = resumed.next(Duration::from_secs(5)).await else {
            continue;
        };
        if event.event.as_deref() == Some("error") {
            notices.push(event.json()["error"].as_str().unwrap_or("").to_owned());
        } else if event.is_transaction() && event.json()["id"] == probe.to_string() {
            break;
        }
    }
    assert!(
        notices
            .iter()
            .all(|code| code == "events_lost" || code == "events_expired"),
        "unexpected notices on the resumed stream: {notices:?}"
    );
}
