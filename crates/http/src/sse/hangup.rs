//! Noticing soon that a stream's client went away.
//!
//! actix notices a closed connection only when a write to it fails, and a
//! quiet stream writes only its keep-alive comment, every 15 s (the
//! contract's period): a client that closed cleanly kept its stream, its
//! place among `http.max_streams`, its subscription and its simulated feed
//! for up to two periods. Writing more often would break the contract's
//! period and still need two writes to see a close.
//!
//! Instead each stream looks at its own socket once a second
//! ([`CHECK_EVERY`]): the server records each connection's socket when it
//! accepts it ([`record_connection`], for the HTTP service's
//! `on_connect_ext`), and a non-blocking one-byte `peek` (which leaves any
//! data for actix) tells an end of stream or a reset (the client left) from
//! nothing to read or bytes of a next request (it did not). That costs one
//! timer and one system call per stream per second, and no file
//! descriptor: an earlier version watched a duplicate of each socket for
//! readability, which noticed at once but doubled the descriptors per
//! stream (10,000 streams then need 20,000, past many machines' limit).
//!
//! Connections that are not plain TCP (TLS, which this server does not
//! terminate) are not watched; their streams end at the first failed write,
//! as before.

use std::any::Any;
use std::io::ErrorKind;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;

use crate::api::head_errors::HeadErrorsAsJson;

/// How often a stream looks whether its client has gone.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

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
pub(crate) struct Hangup(Option<RawFd>);

impl Hangup {
    /// Watches `request`'s connection, if it was recorded.
    pub(crate) fn watch(request: &HttpRequest) -> Hangup {
        Hangup(
            request
                .conn_data::<ConnectionSocket>()
                .map(|socket| socket.0),
        )
    }

    /// Completes once the client has closed or reset the connection; never
    /// when the connection could not be watched. Poll it only from the
    /// response of the request it watches (see [`client_gone`]).
    pub(crate) async fn closed(self) {
        let Some(socket) = self.0 else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            if client_gone(socket) {
                return;
            }
        }
    }
}

/// Whether the client of the connection on `socket` has closed or reset
/// it: a one-byte `peek` that does not wait (the runtime made the socket
/// non-blocking) and leaves any bytes for actix.
fn client_gone(socket: RawFd) -> bool {
    // SAFETY: `socket` is the descriptor of the connection whose response
    // is being polled. The connection's dispatcher owns it and polls that
    // response, so while this runs the descriptor is open and is that
    // connection's. `ManuallyDrop` keeps it from being closed here.
    let stream = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(socket) });
    let mut probe = [0u8; 1];
    match stream.peek(&mut probe) {
        // End of stream: the client is gone.
        Ok(0) => true,
        // Bytes of a next request: not a close; actix reads them in time.
        Ok(_) => false,
        Err(error) => match error.kind() {
            ErrorKind::WouldBlock | ErrorKind::Interrupted => false,
            // A reset, or the socket is otherwise broken: the client is gone.
            _ => true,
        },
    }
}
