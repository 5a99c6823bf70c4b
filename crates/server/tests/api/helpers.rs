use std::future::Future;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use txwatch_cache::testing::TestRedis;
use txwatch_domain::Transaction;
use txwatch_server::{Application, Settings};
use txwatch_storage::TransactionRepository;
use txwatch_storage::testing::TestDatabase;

const LIMIT: Duration = Duration::from_secs(30);

/// Awaits `future`, failing the test if it takes longer than 30 s.
pub(crate) async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("timed out")
}

/// A running server on a free port with its own database and its own Redis
/// key prefix.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    pub(crate) repository: TransactionRepository,
    pub(crate) redis: TestRedis,
    pub(crate) db: TestDatabase,
    /// The server's `redis.event_shards`.
    pub(crate) event_shards: usize,
}

/// Every event kept in the event log of `redis`'s prefix with `shards`
/// shards, shard by shard, each shard's in order.
pub(crate) async fn every_event(redis: &TestRedis, shards: usize) -> Vec<txwatch_cache::Event> {
    let log = txwatch_cache::EventLog::new(redis.pool().clone(), redis.keys(), 1_000_000, shards);
    let mut events = Vec::new();
    for shard in 0..shards {
        let mut after = txwatch_cache::EventId::ZERO;
        loop {
            let chunk = within(log.read_after(shard, after, 1000, None))
                .await
                .expect("events read");
            let Some(last) = chunk.last() else { break };
            after = last.id;
            events.extend(chunk);
        }
    }
    events
}

/// A JSON response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], adjusting the settings first (the database and Redis
/// settings already point at the test's own database and key prefix).
pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDatabase::create().await, adjust).await
}

/// Like [`spawn_app_with`], on a database the test prepared (for example
/// one not migrated yet).
pub(crate) async fn spawn_app_on(db: TestDatabase, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on_redis(db, TestRedis::create().await, adjust).await
}

/// Like [`spawn_app_on`], with a Redis key prefix the test prepared (for
/// example on a cluster of its own).
pub(crate) async fn spawn_app_on_redis(
    db: TestDatabase,
    redis: TestRedis,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    init_test_logging();
    let mut settings = Settings::load_from(Default::default()).expect("default settings");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.database = db.config().clone();
    settings.redis = redis.config().clone();
    adjust(&mut settings);
    let event_shards = settings.redis.event_shards;
    let application = within(Application::build(settings))
        .await
        .expect("server starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::builder()
        .timeout(LIMIT)
        .build()
        .expect("http client");
    let repository = TransactionRepository::new(db.pool().clone());
    TestApp {
        address,
        client,
        repository,
        redis,
        db,
        event_shards,
    }
}

fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
    }
}

impl TestApp {
    pub(crate) async fn request(&self, method: Method, path_and_query: &str) -> Reply {
        let response = within(
            self.client
                .request(method, format!("{}{path_and_query}", self.address))
                .send(),
        )
        .await
        .expect("request sent");
        let status = response.status();
        let text = within(response.text()).await.expect("body read");
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Reply { status, body }
    }

    pub(crate) async fn get(&self, path_and_query: &str) -> Reply {
        self.request(Method::GET, path_and_query).await
    }

    /// A response whose body is not JSON: status, headers and text.
    pub(crate) async fn get_text(
        &self,
        path: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = within(self.client.get(format!("{}{path}", self.address)).send())
            .await
            .expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = within(response.text()).await.expect("body read");
        (status, headers, text)
    }

    pub(crate) async fn health(&self) -> Reply {
        self.get("/health").await
    }

    pub(crate) async fn users(&self) -> Reply {
        self.get("/users").await
    }

    /// `GET /transactions` with the given parameters (URL-encoded here).
    pub(crate) async fn transactions(&self, params: &[(&str, &str)]) -> Reply {
        let query: String = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.get(&format!("/transactions?{query}")).await
    }

    /// Stores rows directly, bypassing the API.
    pub(crate) async fn store(&self, rows: &[Transaction]) {
        let mut bulk = within(self.repository.bulk_insert())
            .await
            .expect("copy starts");
        for row in rows {
            within(bulk.write(row)).await.expect("row written");
        }
        within(bulk.finish()).await.expect("copy finishes");
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The ids of a page's transactions.
pub(crate) fn ids(reply: &Reply) -> Vec<String> {
    reply.body["transactions"]
        .as_array()
        .expect("a transactions array")
        .iter()
        .map(|t| t["id"].as_str().expect("an id").to_owned())
        .collect()
}

impl TestApp {
    /// `POST` a JSON body.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_with(path, body, |request| request).await
    }

    /// `POST` a JSON body, letting `adjust` add headers.
    pub(crate) async fn post_with(
        &self,
        path: &str,
        body: &Value,
        adjust: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Reply {
        let request = self
            .client
            .post(format!("{}{path}", self.address))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        let response = within(adjust(request).send()).await.expect("request sent");
        let status = response.status();
        let text = within(response.text()).await.expect("body read");
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Reply { status, body }
    }

    /// How many transactions the database holds for `user`.
    pub(crate) async fn count_of(&self, user: &str) -> i64 {
        let client = within(self.db.pool().get()).await.expect("connection");
        let user: uuid::Uuid = user.parse().expect("a uuid");
        within(client.query_one(
            "select count(*) from transactions where user_id = $1",
            &[&user],
        ))
        .await
        .expect("count")
        .get(0)
    }
}
