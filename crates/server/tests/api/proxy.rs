//! A TCP proxy in front of Postgres that a test can break in the ways a
//! network breaks:
//! - [`cut`](CuttableProxy::cut): every connection is closed and new ones are
//!   refused, as when the database goes down;
//! - [`black_hole`](CuttableProxy::black_hole): connections stop forwarding
//!   without being closed, and new ones are accepted but never answered, as
//!   in a partition or a failover behind a load balancer (no FIN, no RST);
//! - [`swallow_reply_to`](CuttableProxy::swallow_reply_to): the client's
//!   bytes reach Postgres, but its reply to them is lost and the connection
//!   is reset, so a write commits and its sender cannot know.
//!
//! [`restore`](CuttableProxy::restore) makes new connections work again;
//! connections black-holed before stay stuck for as long as the proxy lives.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long a swallowing connection waits after forwarding the trigger
/// before it resets the client: time for Postgres to commit and answer.
const SWALLOW_FOR: Duration = Duration::from_millis(500);

pub(crate) struct CuttableProxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

struct Shared {
    state: Mutex<ProxyState>,
    /// Connections numbered below this are black-holed for good.
    frozen_below: AtomicU64,
    /// Numbers connections as they are accepted.
    next: AtomicU64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Accepting {
    Forward,
    Refuse,
    BlackHole,
}

struct ProxyState {
    accepting: Accepting,
    connections: Vec<JoinHandle<()>>,
    /// Accepted while black-holed: held open, never read, never answered.
    held: Vec<TcpStream>,
    /// Bytes whose arrival from the client arms a swallow, once.
    trigger: Option<Vec<u8>>,
}

impl CuttableProxy {
    /// Forwards a free local port to `target` (`host:port`).
    pub(crate) async fn start(target: String) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(ProxyState {
                accepting: Accepting::Forward,
                connections: Vec::new(),
                held: Vec::new(),
                trigger: None,
            }),
            frozen_below: AtomicU64::new(0),
            next: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        let acceptor = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = accepting.next.fetch_add(1, Ordering::SeqCst);
                let mut state = accepting.state.lock().expect("proxy state");
                match state.accepting {
                    // Dropping the socket refuses the client.
                    Accepting::Refuse => {}
                    Accepting::BlackHole => state.held.push(client),
                    Accepting::Forward => {
                        let target = target.clone();
                        let shared = Arc::clone(&accepting);
                        state.connections.push(tokio::spawn(async move {
                            if let Ok(server) = TcpStream::connect(&target).await {
                                relay(client, server, number, shared).await;
                            }
                        }));
                    }
                }
            }
        });
        CuttableProxy {
            port,
            shared,
            acceptor,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Drops every open connection and refuses new ones.
    pub(crate) fn cut(&self) {
        let mut state = self.shared.state.lock().expect("proxy state");
        state.accepting = Accepting::Refuse;
        for connection in state.connections.drain(..) {
            connection.abort();
        }
        state.held.clear();
    }

    /// Every open connection stops forwarding in both directions without
    /// being closed, for good; new connections are accepted and never
    /// answered.
    pub(crate) fn black_hole(&self) {
        let mut state = self.shared.state.lock().expect("proxy state");
        state.accepting = Accepting::BlackHole;
        self.shared
            .frozen_below
            .store(self.shared.next.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// New connections are forwarded again. Black-holed ones stay stuck.
    pub(crate) fn restore(&self) {
        self.shared.state.lock().expect("proxy state").accepting = Accepting::Forward;
    }

    /// The next chunk a client sends that contains `pattern` is forwarded,
    /// and so is whatever that client sends after it, but Postgres's
    /// replies on that connection are dropped, and after a moment the
    /// client's connection is reset. Once.
    pub(crate) fn swallow_reply_to(&self, pattern: &[u8]) {
        self.shared.state.lock().expect("proxy state").trigger = Some(pattern.to_vec());
    }

    /// Whether an armed swallow has fired.
    pub(crate) fn swallowed(&self) -> bool {
        self.shared
            .state
            .lock()
            .expect("proxy state")
            .trigger
            .is_none()
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
        self.acceptor.abort();
    }
}

/// Forwards both ways until either side closes, unless the connection is
/// black-holed (then it parks, holding both sockets) or swallowing (then
/// the client is reset).
async fn relay(client: TcpStream, server: TcpStream, number: u64, shared: Arc<Shared>) {
    let frozen = || number < shared.frozen_below.load(Ordering::SeqCst);
    let swallowing = AtomicBool::new(false);
    let fired = Notify::new();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if frozen() {
                std::future::pending::<()>().await;
            }
            let chunk = &buffer[..n];
            if !swallowing.load(Ordering::SeqCst) {
                let mut state = shared.state.lock().expect("proxy state");
                let hit = state
                    .trigger
                    .as_ref()
                    .is_some_and(|pattern| contains(chunk, pattern));
                if hit {
                    state.trigger = None;
                    swallowing.store(true, Ordering::SeqCst);
                    fired.notify_one();
                }
            }
            if server_write.write_all(chunk).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if frozen() {
                std::future::pending::<()>().await;
            }
            if swallowing.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    let reset = async {
        fired.notified().await;
        tokio::time::sleep(SWALLOW_FOR).await;
    };
    let reset_client = tokio::select! {
        _ = async { tokio::join!(upstream, downstream) } => false,
        () = reset => true,
    };
    if reset_client && let Ok(client) = client_read.reunite(client_write) {
        // No lingering: closing sends RST rather than FIN.
        let _ = client.set_zero_linger();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}
