//! Noticing at once that a stream's client went away.
//!
//! actix notices a closed connection only when a write to it fails, and a
//! quiet stream writes only its keep-alive comment, every 15 s (the
//! contract's period): a client that closed cleanly kept its stream, its
//! place among `http.max_streams`, its subscription and its simulation for
//! up to two periods. Writing more often would cost every open stream a
//! write per period to find the few that left (10,000 streams at one
//! comment a second: 10,000 writes a second) and still need two writes
//! to see a close, and it would break the contract's period.
//!
//! Instead each stream watches its own socket for the client's close: the
//! server records each connection's socket when it accepts it
//! ([`record_connection`], for `HttpServer::on_connect`), and a stream
//! registers a duplicate of it with the runtime for readability, which
//! costs nothing until the client sends something. When the socket becomes
//! readable, a one-byte `peek` (which leaves the data for actix) tells an
//! end of stream or a reset (the client left) from bytes of a next request
//! (it did not). The cost is one more file descriptor per open stream.
//!
//! Connections that are not plain TCP (TLS, which this server does not
//! terminate) are not watched; their streams end at the first failed write,
//! as before.

use std::any::Any;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use tokio::net::TcpStream;

use crate::head_errors::HeadErrorsAsJson;

/// How long to wait before looking again when the client sent bytes after
/// its request (a pipelined request, which actix reads in its own time).
const RECHECK: Duration = Duration::from_secs(1);

/// The socket of a connection, as recorded when it was accepted.
#[derive(Debug, Clone, Copy)]
struct ConnectionSocket(RawFd);

/// Records a plain TCP connection's socket (bare, or in
/// [`HeadErrorsAsJson`]) in its extensions, so the streams served on it can
/// watch for the client's close. Give it to the HTTP service's
/// `on_connect_ext`.
pub fn record_connection(connection: &dyn Any, extensions: &mut Extensions) {
    type Tcp = actix_web::rt::net::TcpStream;
    let stream = connection.downcast_ref::<Tcp>().or_else(|| {
        connection
            .downcast_ref::<HeadErrorsAsJson<Tcp>>()
            .map(HeadErrorsAsJson::get_ref)
    });
    if let Some(stream) = stream {
        extensions.insert(ConnectionSocket(stream.as_raw_fd()));
    }
}

/// A watch on the socket of the connection a request arrived on.
pub(crate) struct Hangup(Option<TcpStream>);

impl Hangup {
    /// Watches `request`'s connection, if it was recorded.
    pub(crate) fn watch(request: &HttpRequest) -> Hangup {
        let watched = request.conn_data::<ConnectionSocket>().and_then(|socket| {
            // SAFETY: the descriptor is the socket of the connection this
            // request arrived on. The connection's dispatcher owns it and
            // runs this handler, so it stays open while we borrow it to
            // make the duplicate, a descriptor of our own that is closed when
            // the watch is dropped.
            let borrowed = unsafe { BorrowedFd::borrow_raw(socket.0) };
            let owned = borrowed.try_clone_to_owned().ok()?;
            // The duplicate shares the original's open file, which the
            // runtime made non-blocking, as `from_std` needs.
            TcpStream::from_std(std::net::TcpStream::from(owned)).ok()
        });
        Hangup(watched)
    }

    /// Completes once the client has closed or reset the connection; never
    /// when the connection could not be watched.
    pub(crate) async fn closed(self) {
        let Some(socket) = self.0 else {
            return std::future::pending().await;
        };
        let mut probe = [0u8; 1];
        loop {
            // Waits until the socket is readable; the byte stays for actix.
            match socket.peek(&mut probe).await {
                // End of stream: the client is gone.
                Ok(0) => return,
                // Bytes of a next request: not a close. Actix reads them
                // when it gets to them; look again later rather than spin.
                Ok(_) => tokio::time::sleep(RECHECK).await,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                // A reset: the client is gone.
                Err(_) => return,
            }
        }
    }
}
