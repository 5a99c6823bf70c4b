//! Every setting, gathered from the library crates' config structs.

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;
use txwatch_cache::CacheConfig;
use txwatch_domain::{AnyDetector, DetectorParams, DetectorParamsError};
use txwatch_http::HttpConfig;
use txwatch_simulator::SimulatorConfig;
use txwatch_storage::StorageConfig;

const DEFAULTS: &str = include_str!("defaults.toml");

/// All settings of the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Listening and worker settings.
    pub server: ServerSettings,
    /// PostgreSQL.
    pub database: StorageConfig,
    /// Redis.
    pub redis: CacheConfig,
    /// HTTP layer.
    pub http: HttpConfig,
    /// The anomaly detector: its kind and optional parameters.
    pub detector: DetectorParams,
    /// The live simulation behind `GET /sse/transactions/{user_id}`.
    pub simulator: SimulatorSettings,
    /// Logging.
    pub log: LogSettings,
}

/// Where and how the HTTP server listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Interface to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Concurrent pipeline calls that gather single posted transactions
    /// into groups (one Redis round trip and one commit per group); 0 means
    /// one per CPU core.
    pub ingest_workers: usize,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_secs: u64,
}

/// The live simulation behind `GET /sse/transactions/{user_id}`, and how it
/// draws transactions (design section 7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSettings {
    /// Whether connections to `GET /sse/transactions/{user_id}` drive
    /// simulated feeds (the old service's behaviour); off, that route only
    /// streams the user's real transactions and nothing creates any.
    pub enabled: bool,
    /// Milliseconds between two transactions of one feed.
    pub interval_ms: u64,
    /// Chance that a transaction is large.
    pub large_probability: f64,
    /// Smallest ordinary amount.
    pub normal_min: f64,
    /// Largest ordinary amount.
    pub normal_max: f64,
    /// A large amount is uniform in [m, 2m], m = max(this x the typical
    /// mean, `large_floor`).
    pub large_mean_multiple: f64,
    /// The least `m` of a large amount.
    pub large_floor: f64,
    /// Chance that a transaction is `paid` rather than `failed`.
    pub paid_probability: f64,
    /// Currency of simulated transactions.
    pub currency: String,
}

impl SimulatorSettings {
    /// The simulator's own config.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] for an unusable value.
    pub fn to_config(&self) -> Result<SimulatorConfig, SettingsError> {
        let currency = self.currency.parse().map_err(|_| SettingsError::Invalid {
            key: "simulator.currency",
            reason: "must be three uppercase letters such as INR",
        })?;
        let config = SimulatorConfig {
            normal_min: self.normal_min,
            normal_max: self.normal_max,
            large_probability: self.large_probability,
            large_mean_multiple: self.large_mean_multiple,
            large_floor: self.large_floor,
            paid_probability: self.paid_probability,
            currency,
            ..SimulatorConfig::default()
        };
        config.validate().map_err(SettingsError::Simulator)?;
        Ok(config)
    }
}

/// How many recent transactions a user's Redis window keeps for
/// `detector`: its window, or, for the detectors whose state is not a
/// window, enough for the state rebuilt from them each step to have learned
/// what it needs (docs/detectors.md gives the cost per step).
///
/// - `ewma`: 20 (its weights after 20 values are 12% of the first).
/// - `seasonal`: 200 (its level and spread settle within 60; its day and
///   week profiles keep learning from every one).
/// - `relative_entropy`: 5 windows (the first sets the bins, each quarter
///   window after it is compared and learned: 16 comparisons at 32).
/// - `knn`: its lagged vectors and as many calibration scores, `2 window +
///   5`.
/// - `auto`: 200, the most of its members.
pub fn window_len(detector: &AnyDetector) -> usize {
    match detector {
        AnyDetector::RollingMean(d) => d.window(),
        AnyDetector::ZScore(d) => d.window(),
        AnyDetector::Robust(d) => d.window(),
        AnyDetector::Ewma(d) => d.min_history().max(20),
        AnyDetector::Seasonal(d) => d.min_history().max(200),
        AnyDetector::RelativeEntropy(d) => d.min_history().max(5 * d.window()),
        AnyDetector::Knn(d) => d.min_history().max(2 * d.window() + 5),
        AnyDetector::Auto(_) => 200,
    }
}

/// How logs are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Human-readable text or JSON lines.
    pub format: LogFormat,
    /// `tracing` filter directives such as `info,txwatch_http=debug`.
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A source could not be read or a value has the wrong type.
    #[error("cannot load settings")]
    Load(#[from] config::ConfigError),
    /// Detector parameters are impossible or do not apply.
    #[error("invalid detector settings")]
    Detector(#[from] DetectorParamsError),
    /// Simulator values are impossible.
    #[error("invalid simulator settings")]
    Simulator(#[source] txwatch_simulator::SimulatorConfigError),
    /// A trusted proxy is neither an address nor a range.
    #[error("invalid setting `http.trusted_proxies`")]
    TrustedProxy(#[from] txwatch_http::InvalidProxy),
    /// Some other value is out of range.
    #[error("invalid setting `{key}`: {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Two time limits that only work one shorter than the other are not.
    #[error(
        "`{shorter}` ({shorter_ms} ms) must be shorter than `{longer}` ({longer_ms} ms): {why}"
    )]
    TimeoutOrder {
        /// The setting that must be shorter.
        shorter: &'static str,
        /// Its value.
        shorter_ms: u64,
        /// The setting that must be longer.
        longer: &'static str,
        /// Its value.
        longer_ms: u64,
        /// What goes wrong otherwise.
        why: &'static str,
    },
}

impl Settings {
    /// Loads settings from the process environment: built-in defaults, then
    /// the TOML file named by `APP_CONFIG_FILE` (if set), then
    /// `APP_<SECTION>__<KEY>` variables, then `DATABASE_URL`, `REDIS_URL`
    /// and `PORT`.
    ///
    /// # Errors
    /// [`SettingsError`] when a source is unreadable or a value invalid.
    pub fn load() -> Result<Settings, SettingsError> {
        Settings::load_from(std::env::vars().collect())
    }

    /// Like [`load`](Settings::load), with the given environment variables.
    ///
    /// # Errors
    /// [`SettingsError`] when a source is unreadable or a value invalid.
    pub fn load_from(vars: config::Map<String, String>) -> Result<Settings, SettingsError> {
        let var = |key: &str| vars.get(key).cloned();
        // Only APP_<SECTION>__<KEY> names are settings; other APP_ variables
        // (APP_CONFIG_FILE, or ones meant for other programs) are not.
        let environment: config::Map<String, String> = vars
            .iter()
            .filter(|(key, _)| {
                key.strip_prefix("APP_")
                    .is_some_and(|rest| rest.contains("__"))
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = var("APP_CONFIG_FILE").filter(|p| !p.is_empty()) {
            builder = builder.add_source(File::with_name(&path).format(FileFormat::Toml));
        }
        builder = builder
            .add_source(
                Environment::with_prefix("APP")
                    .prefix_separator("_")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("http.cors_allowed_origins")
                    .with_list_parse_key("http.cors_write_origins")
                    .with_list_parse_key("http.trusted_proxies")
                    .with_list_parse_key("http.allowed_hosts")
                    .with_list_parse_key("database.read_urls")
                    .with_list_parse_key("redis.cluster_nodes")
                    .try_parsing(true)
                    .source(Some(environment)),
            )
            .set_override_option(
                "database.url",
                var("DATABASE_URL").filter(|v| !v.is_empty()),
            )?
            .set_override_option("redis.url", var("REDIS_URL").filter(|v| !v.is_empty()))?
            .set_override_option("server.port", var("PORT").filter(|v| !v.is_empty()))?;
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        // `APP_DATABASE__READ_URLS=` (empty) means no replicas.
        settings
            .database
            .read_urls
            .retain(|url| !url.trim().is_empty());
        // `APP_REDIS__CLUSTER_NODES=` (empty) means no cluster.
        settings
            .redis
            .cluster_nodes
            .retain(|node| !node.trim().is_empty());
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        self.detector.build()?;
        self.http.validate()?;
        self.simulator.to_config()?;
        if self.simulator.interval_ms < 10 {
            return Err(SettingsError::Invalid {
                key: "simulator.interval_ms",
                reason: "must be at least 10",
            });
        }
        if self.redis.event_retention < 100 {
            return Err(SettingsError::Invalid {
                key: "redis.event_retention",
                reason: "must be at least 100",
            });
        }
        if !(1..=64).contains(&self.redis.event_shards) {
            return Err(SettingsError::Invalid {
                key: "redis.event_shards",
                reason: "must be between 1 and 64",
            });
        }
        if !self.redis.cluster_nodes.is_empty()
            && self.redis.max_connections < self.redis.event_shards + 4
        {
            // On a cluster the relay holds one connection per shard it reads.
            return Err(SettingsError::Invalid {
                key: "redis.max_connections",
                reason: "on a Redis Cluster must be at least redis.event_shards + 4",
            });
        }
        if self.redis.window_idle_ttl_secs == 0 {
            return Err(SettingsError::Invalid {
                key: "redis.window_idle_ttl_secs",
                reason: "must be at least 1",
            });
        }
        if self.database.max_connections == 0 {
            return Err(SettingsError::Invalid {
                key: "database.max_connections",
                reason: "must be at least 1",
            });
        }
        if self.database.query_timeout_ms == 0 {
            return Err(SettingsError::Invalid {
                key: "database.query_timeout_ms",
                reason: "must be at least 1: every database call needs a deadline",
            });
        }
        if self.database.statement_timeout_ms > 0
            && self.database.query_timeout_ms <= self.database.statement_timeout_ms
        {
            return Err(SettingsError::TimeoutOrder {
                shorter: "database.statement_timeout_ms",
                shorter_ms: self.database.statement_timeout_ms,
                longer: "database.query_timeout_ms",
                longer_ms: self.database.query_timeout_ms,
                why: "a slow statement must be cancelled by Postgres, which leaves no doubt \
                      that it stored nothing, before the client gives up on it",
            });
        }
        if self.http.ingest_timeout_ms == 0 {
            return Err(SettingsError::Invalid {
                key: "http.ingest_timeout_ms",
                reason: "must be at least 1: an ingest request needs a deadline",
            });
        }
        if self.database.query_timeout_ms >= self.http.ingest_timeout_ms {
            return Err(SettingsError::TimeoutOrder {
                shorter: "database.query_timeout_ms",
                shorter_ms: self.database.query_timeout_ms,
                longer: "http.ingest_timeout_ms",
                longer_ms: self.http.ingest_timeout_ms,
                why: "a database call that gets no answer must give up before the answer to \
                      its request is due, so that the answer can say what became of it",
            });
        }
        if self.http.request_timeout_ms > 0
            && self.http.ingest_timeout_ms >= self.http.request_timeout_ms
        {
            return Err(SettingsError::TimeoutOrder {
                shorter: "http.ingest_timeout_ms",
                shorter_ms: self.http.ingest_timeout_ms,
                longer: "http.request_timeout_ms",
                longer_ms: self.http.request_timeout_ms,
                why: "the ingest routes must answer, with the ids and what became of them, \
                      before the general time limit cuts them off with an answer that cannot say",
            });
        }
        if self.redis.max_connections == 0 {
            return Err(SettingsError::Invalid {
                key: "redis.max_connections",
                reason: "must be at least 1",
            });
        }
        if self.redis.key_prefix.contains(['{', '}']) {
            // Braces would change the Redis Cluster hash tag of every key.
            return Err(SettingsError::Invalid {
                key: "redis.key_prefix",
                reason: "must not contain `{` or `}`",
            });
        }
        if self.http.stream_buffer == 0 {
            return Err(SettingsError::Invalid {
                key: "http.stream_buffer",
                reason: "must be at least 1",
            });
        }
        if self.http.cursor_secret.len() < 8 {
            return Err(SettingsError::Invalid {
                key: "http.cursor_secret",
                reason: "must be at least 8 characters",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load_from(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    use txwatch_domain::{RobustScale, RobustZScore};

    #[test]
    fn defaults_load_and_match_the_old_service() {
        let settings = load(&[]).expect("defaults are valid");
        assert_eq!(settings.server.port, 8000);
        assert_eq!(
            settings.detector.build().expect("valid"),
            AnyDetector::default()
        );
        assert_eq!(settings.http.cors_allowed_origins, ["*"]);
    }

    #[test]
    fn the_built_in_cursor_secret_is_the_one_the_http_layer_warns_about() {
        let settings = load(&[]).expect("defaults are valid");
        assert_eq!(
            settings.http.cursor_secret,
            txwatch_http::BUILT_IN_CURSOR_SECRET
        );
        assert!(settings.http.uses_built_in_cursor_secret());
        let own = load(&[("APP_HTTP__CURSOR_SECRET", "our-own-secret")]).expect("valid");
        assert!(!own.http.uses_built_in_cursor_secret());
    }

    #[test]
    fn customary_variables_override_the_defaults() {
        let settings = load(&[
            ("DATABASE_URL", "postgres://u:pw@db:5432/x"),
            ("REDIS_URL", "redis://cache:6380"),
            ("PORT", "9100"),
        ])
        .expect("valid");
        assert_eq!(settings.database.url, "postgres://u:pw@db:5432/x");
        assert_eq!(settings.redis.url, "redis://cache:6380");
        assert_eq!(settings.server.port, 9100);
        let nested = load(&[
            ("APP_DETECTOR__MULTIPLIER", "2.5"),
            (
                "APP_HTTP__CORS_ALLOWED_ORIGINS",
                "https://a.example,https://b.example",
            ),
        ])
        .expect("valid");
        assert_eq!(nested.detector.multiplier, Some(2.5));
        assert_eq!(
            nested.http.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert!(
            !format!("{settings:?}").contains("pw@"),
            "password leaked into Debug"
        );
    }

    #[test]
    fn event_shards_default_to_eight_and_stay_within_bounds() {
        assert_eq!(load(&[]).expect("valid").redis.event_shards, 8);
        let settings = load(&[("APP_REDIS__EVENT_SHARDS", "16")]).expect("valid");
        assert_eq!(settings.redis.event_shards, 16);
        for shards in ["0", "65"] {
            assert!(
                load(&[("APP_REDIS__EVENT_SHARDS", shards)]).is_err(),
                "{shards}"
            );
        }
        // On a cluster the relay may hold one connection per shard.
        let cluster = ("APP_REDIS__CLUSTER_NODES", "redis://10.0.0.1:7000");
        assert!(load(&[cluster, ("APP_REDIS__MAX_CONNECTIONS", "11")]).is_err());
        assert!(load(&[cluster, ("APP_REDIS__MAX_CONNECTIONS", "12")]).is_ok());
    }

    #[test]
    fn cluster_nodes_are_a_comma_separated_list_and_empty_means_none() {
        assert!(load(&[]).expect("valid").redis.cluster_nodes.is_empty());
        assert!(
            load(&[("APP_REDIS__CLUSTER_NODES", "")])
                .expect("valid")
                .redis
                .cluster_nodes
                .is_empty()
        );
        let settings = load(&[(
            "APP_REDIS__CLUSTER_NODES",
            "redis://10.0.0.1:7000,redis://:pw@10.0.0.2:7000",
        )])
        .expect("valid");
        assert_eq!(
            settings.redis.cluster_nodes,
            ["redis://10.0.0.1:7000", "redis://:pw@10.0.0.2:7000"]
        );
        assert!(!format!("{settings:?}").contains(":pw@"), "password leaked");
    }

    #[test]
    fn a_settings_file_overrides_defaults_and_bad_values_are_rejected() {
        let dir = std::env::temp_dir().join(format!("txwatch-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[detector]\nkind = \"robust\"\nwindow = 40\nthreshold = 4.0\nscale = \"linear\"\n",
        )
        .expect("write");
        let settings = load(&[("APP_CONFIG_FILE", good.to_str().expect("utf-8"))]).expect("valid");
        assert_eq!(
            settings.detector.build().expect("valid"),
            AnyDetector::Robust(
                RobustZScore::try_new(40, 10, 4.0)
                    .expect("valid")
                    .with_scale(RobustScale::Linear)
            )
        );

        let mismatched = dir.join("mismatched.toml");
        std::fs::write(
            &mismatched,
            "[detector]\nkind = \"zscore\"\nmultiplier = 4.0\n",
        )
        .expect("write");
        let error =
            load(&[("APP_CONFIG_FILE", mismatched.to_str().expect("utf-8"))]).expect_err("invalid");
        assert!(
            matches!(
                error,
                SettingsError::Detector(DetectorParamsError::NotApplicable {
                    parameter: "multiplier",
                    ..
                })
            ),
            "{error:?}"
        );

        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "[detector]\nkind = \"rolling_mean\"\nwindow = 5\nmin_history = 6\n",
        )
        .expect("write");
        let error =
            load(&[("APP_CONFIG_FILE", bad.to_str().expect("utf-8"))]).expect_err("invalid");
        assert!(matches!(error, SettingsError::Detector(_)), "{error:?}");

        let unknown = dir.join("unknown.toml");
        std::fs::write(&unknown, "[detector]\nwindw = 5\n").expect("write");
        assert!(load(&[("APP_CONFIG_FILE", unknown.to_str().expect("utf-8"))]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_database_deadline_must_outlast_the_statement_timeout() {
        let settings = load(&[]).expect("defaults are valid");
        assert!(settings.database.query_timeout_ms > settings.database.statement_timeout_ms);
        let error = load(&[
            ("APP_DATABASE__STATEMENT_TIMEOUT_MS", "6000"),
            ("APP_DATABASE__QUERY_TIMEOUT_MS", "6000"),
        ])
        .expect_err("equal timeouts");
        assert!(
            matches!(
                error,
                SettingsError::TimeoutOrder {
                    shorter: "database.statement_timeout_ms",
                    shorter_ms: 6000,
                    longer: "database.query_timeout_ms",
                    longer_ms: 6000,
                    ..
                }
            ),
            "{error:?}"
        );
        // Without a statement timeout, any deadline will do; none will not.
        load(&[
            ("APP_DATABASE__STATEMENT_TIMEOUT_MS", "0"),
            ("APP_DATABASE__QUERY_TIMEOUT_MS", "100"),
        ])
        .expect("valid");
        let error = load(&[("APP_DATABASE__QUERY_TIMEOUT_MS", "0")]).expect_err("no deadline");
        assert!(
            matches!(
                error,
                SettingsError::Invalid {
                    key: "database.query_timeout_ms",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn the_ingest_deadline_falls_between_the_database_deadline_and_the_time_limit() {
        let settings = load(&[]).expect("defaults are valid");
        assert!(settings.database.query_timeout_ms < settings.http.ingest_timeout_ms);
        assert!(settings.http.ingest_timeout_ms < settings.http.request_timeout_ms);
        for (vars, shorter, longer) in [
            (
                [
                    ("APP_HTTP__INGEST_TIMEOUT_MS", "10000"),
                    ("APP_HTTP__REQUEST_TIMEOUT_MS", "10000"),
                ],
                "http.ingest_timeout_ms",
                "http.request_timeout_ms",
            ),
            (
                [
                    ("APP_HTTP__INGEST_TIMEOUT_MS", "6000"),
                    ("APP_DATABASE__QUERY_TIMEOUT_MS", "6000"),
                ],
                "database.query_timeout_ms",
                "http.ingest_timeout_ms",
            ),
        ] {
            match load(&vars) {
                Err(SettingsError::TimeoutOrder {
                    shorter: s,
                    longer: l,
                    ..
                }) => assert_eq!((s, l), (shorter, longer)),
                other => panic!("{vars:?}: expected TimeoutOrder, got {other:?}"),
            }
        }
        // Without a request time limit, the ingest deadline is the only one.
        load(&[
            ("APP_HTTP__REQUEST_TIMEOUT_MS", "0"),
            ("APP_HTTP__INGEST_TIMEOUT_MS", "60000"),
        ])
        .expect("valid");
        assert!(load(&[("APP_HTTP__INGEST_TIMEOUT_MS", "0")]).is_err());
    }

    #[test]
    fn every_detector_kind_loads_from_the_environment_with_a_window_it_can_rebuild_from() {
        use txwatch_domain::{Detector, DetectorKind};
        for kind in DetectorKind::ALL {
            let settings =
                load(&[("APP_DETECTOR__KIND", kind.as_str())]).expect("every kind is valid");
            let detector = settings.detector.build().expect("valid");
            assert_eq!(detector, AnyDetector::with_defaults(kind));
            // The window holds enough history for a verdict.
            let len = window_len(&detector);
            let state = detector.state_from_history((0..len).map(|i| 100.0 + (i % 7) as f64));
            assert!(
                detector.score(&state, 100.0).score().is_some(),
                "{}: a window of {len} is not enough to judge",
                kind.as_str()
            );
        }
        assert_eq!(
            window_len(&AnyDetector::with_defaults(DetectorKind::Auto)),
            200
        );
        let error = load(&[
            ("APP_DETECTOR__KIND", "auto"),
            ("APP_DETECTOR__WINDOW", "40"),
        ])
        .expect_err("auto takes no window");
        assert!(matches!(error, SettingsError::Detector(_)), "{error:?}");
    }

    /// `.env.example` lines `NAME=value`, commented-out ones included.
    fn env_example() -> Vec<(String, String)> {
        include_str!("../../../.env.example")
            .lines()
            .map(|line| line.trim_start_matches("# "))
            .filter_map(|line| line.split_once('='))
            .filter(|(name, _)| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    #[test]
    fn every_variable_in_env_example_loads_and_every_setting_is_listed() {
        let vars: Vec<(String, String)> = env_example()
            .into_iter()
            .filter(|(name, _)| !name.starts_with("TEST_") && name != "APP_CONFIG_FILE")
            .collect();
        let settings =
            Settings::load_from(vars.iter().cloned().collect()).expect(".env.example is valid");
        assert_eq!(settings.http.cors_allowed_origins, ["*"]);
        let listed: Vec<&str> = vars.iter().map(|(name, _)| name.as_str()).collect();
        let defaults = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .expect("defaults parse")
            .cache
            .into_table()
            .expect("a table of sections");
        for (section, keys) in defaults {
            for key in keys.into_table().expect("a section is a table").into_keys() {
                let name = format!("APP_{}__{}", section.to_uppercase(), key.to_uppercase());
                assert!(
                    listed.contains(&name.as_str()),
                    "{name} is missing from .env.example"
                );
            }
        }
    }
}
