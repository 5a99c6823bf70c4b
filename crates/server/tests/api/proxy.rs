//! A TCP proxy in front of Postgres that a test can cut and restore, to play
//! a database that becomes unreachable and comes back.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub(crate) struct CuttableProxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
    acceptor: JoinHandle<()>,
}

struct ProxyState {
    open: bool,
    connections: Vec<JoinHandle<()>>,
}

impl CuttableProxy {
    /// Forwards a free local port to `target` (`host:port`).
    pub(crate) async fn start(target: String) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(ProxyState {
            open: true,
            connections: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let acceptor = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = shared.lock().expect("proxy state");
                if !state.open {
                    continue; // dropping the socket refuses the client
                }
                let target = target.clone();
                state.connections.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        CuttableProxy {
            port,
            state,
            acceptor,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Drops every open connection and refuses new ones.
    pub(crate) fn cut(&self) {
        let mut state = self.state.lock().expect("proxy state");
        state.open = false;
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    /// Accepts connections again.
    pub(crate) fn restore(&self) {
        self.state.lock().expect("proxy state").open = true;
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
        self.acceptor.abort();
    }
}
