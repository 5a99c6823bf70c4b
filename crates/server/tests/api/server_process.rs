//! A real `txwatch serve` child process, for tests that need separate
//! processes or signals: its JSON log is kept for the test to read.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use txwatch_cache::testing::TestRedis;
use txwatch_storage::testing::TestDatabase;

use crate::helpers::within;

/// A `txwatch serve` child process; killed when dropped.
pub(crate) struct ServerProcess {
    pub(crate) address: String,
    child: Child,
    log: Arc<Mutex<Vec<Value>>>,
}

impl ServerProcess {
    pub(crate) async fn start(db: &TestDatabase, redis: &TestRedis) -> ServerProcess {
        ServerProcess::start_with(db, redis, &[]).await
    }

    /// Starts the binary on a free port with the test's database and key
    /// prefix, JSON logs, and `extra_env` on top; returns once it listens.
    pub(crate) async fn start_with(
        db: &TestDatabase,
        redis: &TestRedis,
        extra_env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_txwatch"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", &db.config().url)
            .env("REDIS_URL", &redis.config().url)
            // the same cluster as the test's, when the tests run on one
            .env(
                "APP_REDIS__CLUSTER_NODES",
                redis.config().cluster_nodes.join(","),
            )
            .env("APP_REDIS__KEY_PREFIX", &redis.config().key_prefix)
            .env("PORT", "0")
            .env("APP_SERVER__HOST", "127.0.0.1")
            .env("APP_SERVER__WORKERS", "2")
            .env("APP_LOG__FORMAT", "json")
            .env("APP_LOG__FILTER", "info")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the txwatch binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let port = within(async {
            while let Some(line) = lines.next_line().await.expect("log readable") {
                let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let port = (entry["message"] == "listening").then(|| entry["port"].as_u64());
                log.lock().expect("log").push(entry);
                if let Some(port) = port {
                    return port.expect("a port");
                }
            }
            panic!("the server exited before listening");
        })
        .await;
        // Keep reading the log so the child never blocks on a full pipe.
        let kept = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                    kept.lock().expect("log").push(entry);
                }
            }
        });
        ServerProcess {
            address: format!("http://127.0.0.1:{port}"),
            child,
            log,
        }
    }

    /// Every JSON log line so far.
    pub(crate) fn log(&self) -> Vec<Value> {
        self.log.lock().expect("log").clone()
    }

    /// Sends SIGTERM, as an orchestrator stopping the process does.
    pub(crate) async fn terminate(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let status = within(Command::new("kill").args(["-TERM", &pid]).status())
            .await
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits for the process to exit, at most `limit`.
    pub(crate) async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the server did not exit within {limit:?}"))
            .expect("exit status")
    }
}
