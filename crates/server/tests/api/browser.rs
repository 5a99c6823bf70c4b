//! A headless Chromium for browser tests, driven through a chromedriver of
//! the test's own, and a one-page web server for pages that must come from
//! an origin other than the API's.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `CHROMEDRIVER` and
//! `CHROMIUM` naming the two executables); without them the browser tests
//! fail and say so.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::helpers::within;

/// The longest wait for the browser to end its session.
const WAIT: Duration = Duration::from_secs(15);

const INSTALL_HINT: &str = "the dashboard test drives a headless Chromium: install Debian's \
     `chromium` and `chromium-driver` (apt-get install -y chromium chromium-driver), or set \
     CHROMIUM and CHROMEDRIVER to the executables";

/// A headless Chromium session through a chromedriver of the test's own.
pub(crate) struct Browser {
    pub(crate) client: Client,
    /// Killed when dropped.
    _driver: Child,
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        let driver = executable("CHROMEDRIVER", &["chromedriver"]);
        let chromium = executable("CHROMIUM", &["chromium", "chromium-browser"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{} does not start ({e}); {INSTALL_HINT}", driver.display())
            });
        within(async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{} exited with {status}", driver.display());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;

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
                    "--window-size=1400,1100",
                ],
            }),
        );
        let client = within(
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .unwrap_or_else(|e| panic!("chromium starts under chromedriver: {e}; {INSTALL_HINT}"));
        Browser {
            client,
            _driver: child,
        }
    }

    /// Runs `test`, then ends the session whatever happened, so no
    /// Chromium outlives the test (chromedriver is killed when dropped).
    pub(crate) async fn run(&self, test: impl Future<Output = ()>) {
        let outcome = AssertUnwindSafe(test).catch_unwind().await;
        let _ = tokio::time::timeout(WAIT, self.client.clone().close()).await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The executable named by `variable`, else the first of `names` on the
/// `PATH`; fails the test with the install hint when there is none.
fn executable(variable: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{} not found; {INSTALL_HINT}", names.join(" or ")))
}

/// Serves `html` to every request on a free local port, for as long as the
/// test runs, and answers that origin (`http://127.0.0.1:<port>`).
pub(crate) async fn serve_page(html: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the page server");
    let port = listener.local_addr().expect("its address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // One request per connection: read its head, answer, close.
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}
