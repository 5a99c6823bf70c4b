//! Prometheus metrics of one server process, served by `GET /metrics`.
//!
//! Each process has its own [`Metrics`] (its own registry, so two servers in
//! one test process do not mix their counts). Every family is prefixed
//! `txwatch_`:
//!
//! | family | type | labels |
//! | --- | --- | --- |
//! | `http_requests_total` | counter | `method`, `route`, `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `transactions_scored_total` | counter | |
//! | `anomalies_flagged_total` | counter | |
//! | `pipeline_stage_duration_seconds` | histogram | `stage` |
//! | `events_published_total`, `events_unpublished_total` | counter | |
//! | `sse_connections` | gauge | `stream` |
//! | `sse_connections_rejected_total` | counter | |
//! | `sse_lagged_events_total` | counter | |
//! | `sse_notices_total` | counter | `code` |
//! | `dependency_errors_total` | counter | `dependency` |
//! | `pool_connections` | gauge | `pool`, `state` |
//! | `pool_max_connections`, `pool_waiting` | gauge | `pool` |
//! | `db_reads_total` | counter | `backend` (`primary` or a replica's `host:port/database`) |
//! | `db_replica_state` | gauge (1 for the current state) | `replica`, `state` |
//! | `db_replica_lag_milliseconds` | gauge (-1 before any check) | `replica` |
//! | `db_replica_fallbacks_total` | counter | `replica` |
//!
//! The `db_` families count the reads that may go to a replica (history and
//! users) and show each replica as its last check found it; without
//! replicas they are absent.
//!
//! `route` is the matched route pattern (`/sse/transactions/{user_id}`), or
//! `unmatched`, so label values stay few whatever clients send.

use std::sync::Arc;
use std::time::Duration;

use txwatch_storage::ReplicaState;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Request latency buckets, in seconds: 0.5 ms to 10 s.
const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Pipeline stage buckets, in seconds: 50 µs to 2.5 s.
const STAGE_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// A step of the ingest pipeline, timed per call (a call may carry a whole
/// batch).
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Looking up client-given ids that may be stored already.
    Lookup,
    /// The Redis window step, rebuilds included.
    Window,
    /// The detector's verdicts.
    Score,
    /// Storing in Postgres.
    Store,
    /// Appending to the Redis event stream.
    Publish,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Lookup => "lookup",
            Stage::Window => "window",
            Stage::Score => "score",
            Stage::Store => "store",
            Stage::Publish => "publish",
        }
    }
}

/// How full a connection pool is, read when metrics are rendered.
#[derive(Debug, Clone, Copy)]
pub struct PoolUsage {
    /// `postgres` or `redis`.
    pub pool: &'static str,
    /// Connections open now.
    pub open: usize,
    /// Open connections not handed out.
    pub idle: usize,
    /// The most the pool opens.
    pub max: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// The process's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Families>,
}

struct Families {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    scored: IntCounter,
    anomalies: IntCounter,
    stage_seconds: HistogramVec,
    published: IntCounter,
    unpublished: IntCounter,
    sse_open: IntGaugeVec,
    sse_rejected: IntCounter,
    sse_lagged: IntCounter,
    sse_notices: IntCounterVec,
    dependency_errors: IntCounterVec,
    pool_connections: IntGaugeVec,
    pool_max: IntGaugeVec,
    pool_waiting: IntGaugeVec,
    db_reads: IntCounterVec,
    db_replica_state: IntGaugeVec,
    db_replica_lag: IntGaugeVec,
    db_replica_fallbacks: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered at zero.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("txwatch".to_owned()), None)
            .expect("the prefix is a valid metric name");
        let families = Families {
            requests: counter_vec(
                &registry,
                "http_requests_total",
                "HTTP requests answered, by method, matched route and status.",
                &["method", "route", "status"],
            ),
            request_seconds: histogram_vec(
                &registry,
                "http_request_duration_seconds",
                "Time to answer an HTTP request (for streams: until the response starts).",
                &["method", "route", "status"],
                REQUEST_BUCKETS,
            ),
            scored: counter(
                &registry,
                "transactions_scored_total",
                "Transactions scored and stored by the pipeline.",
            ),
            anomalies: counter(
                &registry,
                "anomalies_flagged_total",
                "Stored transactions the detector flagged as anomalies.",
            ),
            stage_seconds: histogram_vec(
                &registry,
                "pipeline_stage_duration_seconds",
                "Time each pipeline stage took per pipeline call (one call may carry a batch).",
                &["stage"],
                STAGE_BUCKETS,
            ),
            published: counter(
                &registry,
                "events_published_total",
                "Stored transactions put on the shared event stream.",
            ),
            unpublished: counter(
                &registry,
                "events_unpublished_total",
                "Stored transactions whose event could not be published (Redis down); \
                 they are stored, but live streams never see them.",
            ),
            sse_open: gauge_vec(
                &registry,
                "sse_connections",
                "Open SSE streams, by kind (`user`: a user's live simulation; `all`: \
                 the all-transactions stream).",
                &["stream"],
            ),
            sse_rejected: counter(
                &registry,
                "sse_connections_rejected_total",
                "SSE connections refused because the configured maximum was open.",
            ),
            sse_lagged: counter(
                &registry,
                "sse_lagged_events_total",
                "Live events a slow subscriber missed from its channel; it reads them \
                 back from the Redis stream, so none is lost unless it expired.",
            ),
            sse_notices: counter_vec(
                &registry,
                "sse_notices_total",
                "`event: error` notices sent to SSE subscribers, by code.",
                &["code"],
            ),
            dependency_errors: counter_vec(
                &registry,
                "dependency_errors_total",
                "Failures to reach Postgres or Redis, by dependency.",
                &["dependency"],
            ),
            pool_connections: gauge_vec(
                &registry,
                "pool_connections",
                "Connections of each pool, by state (`in_use` or `idle`).",
                &["pool", "state"],
            ),
            pool_max: gauge_vec(
                &registry,
                "pool_max_connections",
                "The most connections each pool opens.",
                &["pool"],
            ),
            pool_waiting: gauge_vec(
                &registry,
                "pool_waiting",
                "Callers waiting for a connection from each pool.",
                &["pool"],
            ),
            db_reads: counter_vec(
                &registry,
                "db_reads_total",
                "History and users reads, by the database that answered them.",
                &["backend"],
            ),
            db_replica_state: gauge_vec(
                &registry,
                "db_replica_state",
                "1 for each read replica's current state (up, lagging, down, starting).",
                &["replica", "state"],
            ),
            db_replica_lag: gauge_vec(
                &registry,
                "db_replica_lag_milliseconds",
                "How far each read replica was behind the primary at its last check (-1: never reached).",
                &["replica"],
            ),
            db_replica_fallbacks: counter_vec(
                &registry,
                "db_replica_fallbacks_total",
                "Reads that failed on a replica and were answered by the primary.",
                &["replica"],
            ),
            registry,
        };
        Metrics {
            inner: Arc::new(families),
        }
    }

    /// Counts one answered request and its latency; `status` is the
    /// three-digit code.
    pub fn observe_request(&self, method: &str, route: &str, status: &str, elapsed: Duration) {
        let labels = [method, route, status];
        self.inner.requests.with_label_values(&labels).inc();
        self.inner
            .request_seconds
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records how long a pipeline stage took.
    pub fn observe_stage(&self, stage: Stage, elapsed: Duration) {
        self.inner
            .stage_seconds
            .with_label_values(&[stage.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts stored transactions, of which `anomalies` were flagged.
    pub fn scored(&self, transactions: usize, anomalies: usize) {
        self.inner.scored.inc_by(transactions as u64);
        self.inner.anomalies.inc_by(anomalies as u64);
    }

    /// Counts events put on the event stream, or lost to a failed publish.
    pub fn published(&self, events: usize, ok: bool) {
        if ok {
            self.inner.published.inc_by(events as u64);
        } else {
            self.inner.unpublished.inc_by(events as u64);
        }
    }

    /// Counts a failure to reach `dependency` (`postgres` or `redis`).
    pub fn dependency_error(&self, dependency: &'static str) {
        self.inner
            .dependency_errors
            .with_label_values(&[dependency])
            .inc();
    }

    /// One more (or one fewer, with `-1`) open SSE stream of `kind`.
    pub(crate) fn sse_open(&self, kind: &'static str, delta: i64) {
        self.inner.sse_open.with_label_values(&[kind]).add(delta);
    }

    /// Counts a refused SSE connection.
    pub(crate) fn sse_rejected(&self) {
        self.inner.sse_rejected.inc();
    }

    /// Counts live events a subscriber missed from its channel.
    pub(crate) fn sse_lagged(&self, missed: u64) {
        self.inner.sse_lagged.inc_by(missed);
    }

    /// Counts a notice sent on an SSE stream.
    pub(crate) fn sse_notice(&self, code: &str) {
        self.inner.sse_notices.with_label_values(&[code]).inc();
    }

    /// Records the read replicas as they are now, for the next
    /// [`render`](Self::render): counts reach the counters as increments.
    pub fn replicas(&self, replicas: &txwatch_storage::Replicas) {
        let f = &self.inner;
        let raise = |counter: &IntCounter, to: u64| {
            counter.inc_by(to.saturating_sub(counter.get()));
        };
        raise(
            &f.db_reads.with_label_values(&["primary"]),
            replicas.primary_reads(),
        );
        for replica in replicas.status() {
            let name = replica.name.as_str();
            raise(&f.db_reads.with_label_values(&[name]), replica.reads);
            raise(
                &f.db_replica_fallbacks.with_label_values(&[name]),
                replica.fallbacks,
            );
            for state in [
                ReplicaState::Starting,
                ReplicaState::Up,
                ReplicaState::Lagging,
                ReplicaState::Down,
            ] {
                f.db_replica_state
                    .with_label_values(&[name, state.as_str()])
                    .set(i64::from(state == replica.state));
            }
            f.db_replica_lag.with_label_values(&[name]).set(
                replica
                    .lag_ms
                    .map_or(-1, |lag| i64::try_from(lag).unwrap_or(i64::MAX)),
            );
        }
    }

    /// The Prometheus text exposition of every family, with the pools'
    /// usage as it is now.
    pub fn render(&self, pools: &[PoolUsage]) -> String {
        for usage in pools {
            let in_use = usage.open.saturating_sub(usage.idle);
            self.inner
                .pool_connections
                .with_label_values(&[usage.pool, "in_use"])
                .set(to_i64(in_use));
            self.inner
                .pool_connections
                .with_label_values(&[usage.pool, "idle"])
                .set(to_i64(usage.idle));
            self.inner
                .pool_max
                .with_label_values(&[usage.pool])
                .set(to_i64(usage.max));
            self.inner
                .pool_waiting
                .with_label_values(&[usage.pool])
                .set(to_i64(usage.waiting));
        }
        let mut text = Vec::with_capacity(16 * 1024);
        // Encoding into memory fails only for families the registry itself
        // rejected at registration, which `new` does not produce.
        if let Err(error) = TextEncoder::new().encode(&self.inner.registry.gather(), &mut text) {
            tracing::warn!(%error, "metrics could not be encoded");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

fn to_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("a valid counter");
    registry
        .register(Box::new(counter.clone()))
        .expect("registered once");
    counter
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
    registry
        .register(Box::new(counter.clone()))
        .expect("registered once");
    counter
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let gauge = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge");
    registry
        .register(Box::new(gauge.clone()))
        .expect("registered once");
    gauge
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let histogram = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("a valid histogram");
    registry
        .register(Box::new(histogram.clone()))
        .expect("registered once");
    histogram
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_with_the_prefix_and_counts_add_up() {
        let metrics = Metrics::new();
        metrics.observe_request("GET", "/users", "200", Duration::from_millis(3));
        metrics.observe_request("GET", "/users", "200", Duration::from_millis(30));
        metrics.scored(5, 2);
        metrics.observe_stage(Stage::Store, Duration::from_micros(700));
        metrics.sse_open("all", 1);
        metrics.dependency_error("redis");
        let text = metrics.render(&[PoolUsage {
            pool: "postgres",
            open: 5,
            idle: 2,
            max: 16,
            waiting: 1,
        }]);
        for line in [
            r#"txwatch_http_requests_total{method="GET",route="/users",status="200"} 2"#,
            r#"txwatch_http_request_duration_seconds_bucket{method="GET",route="/users",status="200",le="0.005"} 1"#,
            "txwatch_transactions_scored_total 5",
            "txwatch_anomalies_flagged_total 2",
            r#"txwatch_pipeline_stage_duration_seconds_count{stage="store"} 1"#,
            r#"txwatch_sse_connections{stream="all"} 1"#,
            r#"txwatch_dependency_errors_total{dependency="redis"} 1"#,
            r#"txwatch_pool_connections{pool="postgres",state="in_use"} 3"#,
            r#"txwatch_pool_max_connections{pool="postgres"} 16"#,
            r#"txwatch_pool_waiting{pool="postgres"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
    }
}
