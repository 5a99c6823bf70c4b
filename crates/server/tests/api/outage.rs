use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use txwatch_cache::WindowStore;

use crate::helpers::{TestApp, spawn_app_with, within};
use crate::proxy::CuttableProxy;
use crate::sse_client::open;
use crate::steady::{Fate, SteadyIngest};

/// How long an ingest request may take, in the outage tests below.
const INGEST_DEADLINE: Duration = Duration::from_millis(2500);
/// What an answer may take beyond its deadline on a loaded machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// Short deadlines, so an outage shows within seconds; in the order the
/// settings require (statement < query < ingest < request).
fn short_deadlines(settings: &mut txwatch_server::Settings) {
    settings.database.connect_timeout_ms = 500;
    settings.database.acquire_timeout_ms = 1000;
    settings.database.statement_timeout_ms = 1000;
    settings.database.query_timeout_ms = 1500;
    settings.http.ingest_timeout_ms = INGEST_DEADLINE.as_millis() as u64;
    settings.http.request_timeout_ms = 5000;
}

/// The app's windows, to check against Postgres.
fn windows_of(app: &TestApp) -> WindowStore {
    WindowStore::new(
        app.redis.pool().clone(),
        app.redis.keys().clone(),
        20,
        Duration::from_secs(60),
    )
}

/// Waits until `/ready` answers `status`.
async fn ready_becomes(app: &TestApp, status: StatusCode) {
    within(async {
        while app.get("/ready").await.status != status {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// Defect 1 of issue 11: connections whose packets are dropped (no FIN, no
/// RST) wedged single posts for minutes while `/ready` said 200. Under
/// steady ingest, the database's packets now vanish: posts answer 503
/// within their deadline, `/ready` says the database is down, and once new
/// connections work the server recovers by itself, though the black-holed
/// sockets stay stuck for good. No answer was wrong about what it stored.
#[tokio::test]
async fn a_black_holed_database_answers_503_in_time_and_the_server_recovers_by_itself() {
    // Few connections, so that every one of them is open when the packets
    // start to vanish.
    let (app, proxy) = app_behind_a_cuttable_database(|settings| {
        short_deadlines(settings);
        settings.database.max_connections = 3;
    })
    .await;
    let ingest = SteadyIngest::start(&app.address, 4);
    ingest.acknowledged_by_everyone(3).await;
    assert_eq!(app.get("/ready").await.status, StatusCode::OK);

    proxy.black_hole();
    ingest.answered("503", 8).await;
    ready_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await;

    proxy.restore();
    ingest.acknowledged_by_everyone(5).await;
    ready_becomes(&app, StatusCode::OK).await;
    let ledger = ingest.stop().await;
    assert!(
        ledger.slowest() < INGEST_DEADLINE + MARGIN,
        "an answer took {:?}",
        ledger.slowest()
    );
    assert!(ledger.count(Fate::NotStored) + ledger.count(Fate::Unknown) > 0);
    ledger.verify(&app.db, Some(&windows_of(&app))).await;
}

/// Defect 3 of issue 11, under load: Postgres connections cut while
/// transactions are being stored. Every answer is true: acknowledged ones
/// are stored once, "nothing stored" ones are not stored, and unknown ones
/// are stored at most once.
#[tokio::test]
async fn a_database_cut_under_steady_ingest_answers_only_the_truth() {
    let (app, proxy) = app_behind_a_cuttable_database(short_deadlines).await;
    let ingest = SteadyIngest::start(&app.address, 4);
    ingest.acknowledged_by_everyone(3).await;

    proxy.cut();
    ingest.answered("503", 8).await;

    proxy.restore();
    ingest.acknowledged_by_everyone(5).await;
    let ledger = ingest.stop().await;
    assert!(ledger.count(Fate::NotStored) + ledger.count(Fate::Unknown) > 0);
    assert!(
        ledger.slowest() < INGEST_DEADLINE + MARGIN,
        "an answer took {:?}",
        ledger.slowest()
    );
    ledger.verify(&app.db, Some(&windows_of(&app))).await;
}

/// Redis killed and restarted empty under steady ingest: 503s that store
/// nothing meanwhile, and the windows are rebuilt from what Postgres holds.
#[tokio::test]
async fn a_redis_killed_under_steady_ingest_answers_only_the_truth() {
    let mut redis = OwnRedis::start().await;
    let redis_url = redis.url();
    let app = spawn_app_with(|settings| {
        short_deadlines(settings);
        settings.redis.url = redis_url;
        settings.redis.connect_timeout_ms = 500;
    })
    .await;
    let ingest = SteadyIngest::start(&app.address, 4);
    ingest.acknowledged_by_everyone(3).await;

    redis.stop().await;
    ingest.answered("503", 8).await;

    redis.start_again().await;
    ingest.acknowledged_by_everyone(5).await;
    let ledger = ingest.stop().await;
    assert!(ledger.count(Fate::NotStored) > 0);
    assert!(
        ledger.slowest() < INGEST_DEADLINE + MARGIN,
        "an answer took {:?}",
        ledger.slowest()
    );
    let mut config = app.redis.config().clone();
    config.url = redis.url();
    let pool = txwatch_cache::connect(&config).expect("a pool on the test's redis");
    let windows = WindowStore::new(pool, app.redis.keys().clone(), 20, Duration::from_secs(60));
    ledger.verify(&app.db, Some(&windows)).await;
}

/// An app whose Postgres is reached through a proxy the test can cut, with
/// short timeouts so an outage shows at once; `adjust` changes the rest.
async fn app_behind_a_cuttable_database(
    adjust: impl FnOnce(&mut txwatch_server::Settings),
) -> (TestApp, CuttableProxy) {
    let proxy = CuttableProxy::start("127.0.0.1:5432".into()).await;
    let proxy_port = proxy.port();
    let app = spawn_app_with(|settings| {
        settings.database.url = settings
            .database
            .url
            .replace(":5432/", &format!(":{proxy_port}/"));
        settings.database.connect_timeout_ms = 500;
        settings.database.acquire_timeout_ms = 500;
        adjust(settings);
    })
    .await;
    (app, proxy)
}

#[tokio::test]
async fn an_unreachable_database_answers_503_and_the_server_recovers_by_itself() {
    let (app, proxy) = app_behind_a_cuttable_database(|_| {}).await;
    assert_eq!(app.users().await.status, StatusCode::OK);

    proxy.cut();
    let reply = app.users().await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        reply.body
    );
    assert_eq!(reply.body["error"], "service_unavailable");
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("database"))
    );
    let history = app
        .transactions(&[("user_id", &uuid::Uuid::new_v4().to_string())])
        .await;
    assert_eq!(history.status, StatusCode::SERVICE_UNAVAILABLE);
    // Liveness does not depend on the database.
    assert_eq!(app.health().await.status, StatusCode::OK);

    proxy.restore();
    let recovered = within(async {
        loop {
            if app.users().await.status == StatusCode::OK {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(recovered);
}

/// Ingest and live streams while Postgres is cut off: 503 and nothing
/// stored, `event: error` on the stream, and both carry on by themselves.
#[tokio::test]
async fn without_postgres_ingest_answers_503_streams_say_so_and_both_recover() {
    let (app, proxy) =
        app_behind_a_cuttable_database(|settings| settings.simulator.interval_ms = 300).await;
    let user = uuid::Uuid::new_v4().to_string();
    let mut stream = open(&format!("{}/sse/transactions/{user}", app.address), None).await;
    stream
        .next_transaction(Duration::from_secs(10))
        .await
        .expect("a simulated event while all is well");

    proxy.cut();
    let posted_user = uuid::Uuid::new_v4().to_string();
    let reply = app
        .post(
            "/transactions",
            &json!({"user_id": posted_user, "amount": "10"}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"], "service_unavailable");
    let batch = app
        .post(
            "/transactions/batch",
            &json!({"transactions": [{"user_id": posted_user, "amount": "1"}]}),
        )
        .await;
    assert_eq!(batch.status, StatusCode::SERVICE_UNAVAILABLE);
    let error = stream
        .next_where(|event| event.event.as_deref() == Some("error"))
        .await;
    assert_eq!(
        error.json()["error"],
        "service_unavailable",
        "{}",
        error.data
    );

    proxy.restore();
    // The stream continues with new transactions, without a reconnect.
    let resumed = stream.next_where(|event| event.is_transaction()).await;
    assert_eq!(resumed.json()["user_id"], user.as_str());
    let reply = within(async {
        loop {
            let reply = app
                .post(
                    "/transactions",
                    &json!({"user_id": posted_user, "amount": "10"}),
                )
                .await;
            if reply.status != StatusCode::SERVICE_UNAVAILABLE {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    // Nothing of the refused posts was stored, and the window counts only
    // what was: the first stored transaction saw an empty history.
    assert_eq!(app.count_of(&posted_user).await, 1);
    assert_eq!(reply.body["meta_data"]["window_len"], 0);
}

/// A Redis of the test's own, restarted empty mid-stream.
#[tokio::test]
async fn a_restarted_empty_redis_costs_nothing_but_a_pause() {
    let mut redis = OwnRedis::start().await;
    let redis_url = redis.url();
    let app = spawn_app_with(|settings| {
        settings.redis.url = redis_url;
        settings.redis.connect_timeout_ms = 500;
    })
    .await;
    let user = uuid::Uuid::new_v4().to_string();
    let mut stream = open(
        &format!("{}/sse/transactions?user_id={user}", app.address),
        None,
    )
    .await;
    for i in 1..=20 {
        let reply = app
            .post(
                "/transactions",
                &json!({"user_id": user, "amount": format!("{}", i * 10)}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        stream
            .next_transaction(Duration::from_secs(10))
            .await
            .expect("its event");
    }

    redis.stop().await;
    let reply = app
        .post("/transactions", &json!({"user_id": user, "amount": "5"}))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("redis"))
    );
    assert_eq!(app.count_of(&user).await, 20);
    let notice = stream
        .next_where(|event| event.event.as_deref() == Some("error"))
        .await;
    assert_eq!(notice.json()["error"], "service_unavailable");

    redis.start_again().await;
    let reply = within(async {
        loop {
            let reply = app
                .post("/transactions", &json!({"user_id": user, "amount": "1500"}))
                .await;
            if reply.status != StatusCode::SERVICE_UNAVAILABLE {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // The window was rebuilt from Postgres: amounts 10..200, mean 105, so
    // the verdict is the one nothing lost would give.
    assert_eq!(reply.body["meta_data"]["window_len"], 20);
    assert_eq!(reply.body["meta_data"]["baseline"], 105.0);
    assert_eq!(reply.body["meta_data"]["is_anomaly"], true);
    // The same stream, never reconnected, carries on.
    let event = stream.next_where(|event| event.is_transaction()).await;
    assert_eq!(event.json(), reply.body);
}

/// A `redis-server` on a free port, without persistence, that a test can
/// stop and start again (empty).
pub(crate) struct OwnRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    pub(crate) async fn start() -> OwnRedis {
        let mut redis = OwnRedis::reserve();
        redis.start_again().await;
        redis
    }

    /// A free port for a Redis that is not started yet.
    pub(crate) fn reserve() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        OwnRedis { port, child: None }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, empty).
    pub(crate) async fn start_again(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (see docs/testing.md)");
        self.child = Some(child);
        within(async {
            while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("redis stops");
        }
    }
}
