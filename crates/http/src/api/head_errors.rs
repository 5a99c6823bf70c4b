//! JSON for the answers actix-http's own request parser writes.
//!
//! A request whose head cannot be parsed (a malformed request line or
//! header), or is too large (a URL or headers past 128 KiB), or does not
//! arrive in time, never reaches a route or a middleware: the HTTP/1
//! dispatcher answers it itself, with a fixed empty-bodied `400`, `431` or
//! `408`, and closes the connection. actix offers no hook for those
//! answers, so [`HeadErrorsAsJson`] wraps the connection's socket and
//! rewrites them on their way out into the API's error shape:
//! `{"error": "bad_request" | "headers_too_large" | "request_timeout",
//! "message": ...}`.
//!
//! Only those answers are touched, recognised by their exact head: that
//! status, `content-length: 0`, and nothing after the head. A route's own
//! error always has a JSON body, so it never matches, and no body this
//! server sends holds such a head (JSON escapes line breaks; the
//! dashboard's files and the metrics text hold no HTTP heads). Such an
//! answer is the last thing written on its connection (the dispatcher
//! closes it next), which is where it is looked for: in the last few
//! hundred bytes written, at the start of a write or after the answers
//! before it on a kept-alive connection, and only in a write that ends as
//! a head does (most end with a body): one comparison for nearly every
//! write, whatever the size of the response.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The dispatcher's answers, by the start of their head, and what to send
/// instead.
const REWRITES: [(&[u8], &str, &str, &str); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        "400 Bad Request",
        "bad_request",
        "the request could not be parsed as HTTP/1.1 (a malformed request line or header)",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
        "431 Request Header Fields Too Large",
        "headers_too_large",
        "the request line and headers are larger than the 128 KiB this server reads",
    ),
    (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n",
        "408 Request Timeout",
        "request_timeout",
        "the request's line and headers did not arrive in time",
    ),
];

/// How far back from the end of a write a rewritten answer may start: its
/// head is about a hundred bytes.
const TAIL: usize = 256;

/// A connection whose parser-level error answers are rewritten as JSON;
/// see the module docs. Everything else passes through untouched.
#[derive(Debug)]
pub struct HeadErrorsAsJson<T> {
    inner: T,
    /// Bytes of a rewritten answer not written yet; sent before anything
    /// else, and before the connection is flushed or shut down.
    pending: Vec<u8>,
}

impl<T> HeadErrorsAsJson<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> HeadErrorsAsJson<T> {
        HeadErrorsAsJson {
            inner,
            pending: Vec::new(),
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

/// Where in `buf` a dispatcher answer to rewrite starts, and the JSON
/// answer to send instead of it (everything from there to the end).
fn find_answer(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    // Such an answer ends its write with the end of its head; nearly every
    // other write ends with a body, and costs this one comparison.
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let from = buf.len().saturating_sub(TAIL);
    REWRITES.iter().find_map(|(head, status, code, message)| {
        let start = (from..buf.len()).find(|&at| buf[at..].starts_with(head))?;
        // Nothing may follow its head: an empty body, the last answer.
        let rest = &buf[start + head.len()..];
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
        if end + 4 != rest.len() {
            return None;
        }
        let body = format!(r#"{{"error":"{code}","message":"{message}"}}"#);
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        Some((start, answer.into_bytes()))
    })
}

impl<T: AsyncWrite + Unpin> HeadErrorsAsJson<T> {
    /// Writes out what is pending; ready once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadErrorsAsJson<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadErrorsAsJson<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        match find_answer(buf) {
            // The answer itself: take it whole, send the JSON one instead.
            Some((0, answer)) => {
                this.pending = answer;
                // Whatever the socket takes now; the rest goes out before
                // the next write, flush or shutdown.
                let _ = this.poll_pending(cx)?;
                Poll::Ready(Ok(buf.len()))
            }
            // Earlier answers first, untouched, so the rewritten one starts
            // a later write.
            Some((start, _)) => Pin::new(&mut this.inner).poll_write(cx, &buf[..start]),
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 22:49:08 GMT\r\n\r\n";

    fn body_of(answer: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(answer).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .expect("a length")
            .parse()
            .expect("a number");
        assert_eq!(length, body.len(), "{text}");
        serde_json::from_str(body).expect("JSON")
    }

    #[test]
    fn the_dispatchers_empty_answers_become_json_errors() {
        let (at, answer) = find_answer(BAD).expect("recognised");
        assert_eq!(at, 0);
        assert!(answer.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        assert_eq!(body_of(&answer)["error"], "bad_request");
        let large = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
                      connection: close\r\ndate: x\r\n\r\n";
        let (_, answer) = find_answer(large).expect("recognised");
        assert_eq!(body_of(&answer)["error"], "headers_too_large");
    }

    #[test]
    fn an_answer_after_a_kept_alive_one_is_found_where_it_starts() {
        // Answers are framed by their length, not by line breaks.
        let written = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"health\":\"ok\"}";
        let (at, _) = find_answer(&[&written[..], BAD].concat()).expect("recognised");
        assert_eq!(at, written.len());
    }

    #[test]
    fn routes_own_answers_pass_untouched() {
        for written in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 52\r\ncontent-type: application/json\r\n\r\n{\"error\":\"invalid_preflight\",\"message\":\"not cors\"}"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            // The head alone, its body still to come: not a parser answer.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nmore",
        ] {
            assert!(find_answer(written).is_none(), "{:?}", String::from_utf8_lossy(written));
        }
    }
}
