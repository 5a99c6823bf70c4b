//! A small Server-Sent Events client for tests, over reqwest.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::within;

/// One parsed event (comments are kept too, as `comment`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: String,
    pub(crate) comment: Option<String>,
}

impl SseEvent {
    /// The data as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|_| panic!("not JSON: {}", self.data))
    }

    /// A transaction (unnamed data event), as opposed to a comment or an
    /// `event: error`.
    pub(crate) fn is_transaction(&self) -> bool {
        self.comment.is_none() && self.event.is_none() && !self.data.is_empty()
    }
}

/// An open event stream.
pub(crate) struct SseStream {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    response: reqwest::Response,
    buffer: String,
}

/// Opens `url`, sending `Last-Event-ID` when given.
pub(crate) async fn open(url: &str, last_event_id: Option<&str>) -> SseStream {
    // No overall timeout: streams stay open; each read has its own.
    let client = reqwest::Client::builder().build().expect("client");
    let mut request = client.get(url).header("Accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = within(request.send()).await.expect("stream opens");
    SseStream {
        status: response.status(),
        headers: response.headers().clone(),
        response,
        buffer: String::new(),
    }
}

impl SseStream {
    /// The next event or comment, or `None` if none comes within `wait`.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("stream readable")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// The next transaction event, skipping comments; `None` if none comes
    /// within `wait`. Error events fail the test.
    pub(crate) async fn next_transaction(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if event.is_transaction() {
                return Some(event);
            }
            assert!(
                event.event.is_none(),
                "unexpected event {:?}: {}",
                event.event,
                event.data
            );
        }
    }

    /// The next event for which `wanted` holds, skipping the others.
    ///
    /// # Panics
    /// When the stream ends or none comes within 30 s.
    pub(crate) async fn next_where(&mut self, wanted: impl Fn(&SseEvent) -> bool) -> SseEvent {
        within(async {
            loop {
                let event = self
                    .next(Duration::from_secs(10))
                    .await
                    .expect("events keep coming");
                if wanted(&event) {
                    return event;
                }
            }
        })
        .await
    }

    /// Every event that arrives within `span`.
    pub(crate) async fn collect_for(&mut self, span: Duration) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + span;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return events;
            }
            match self.next(left).await {
                Some(event) => events.push(event),
                None => return events,
            }
        }
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent::default();
    let mut data_lines: Vec<&str> = Vec::new();
    let mut any = false;
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            event.comment = Some(comment.trim().to_owned());
            any = true;
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => event.id = Some(value.to_owned()),
            "event" => event.event = Some(value.to_owned()),
            "data" => data_lines.push(value),
            _ => continue, // retry: and unknown fields
        }
        any = true;
    }
    event.data = data_lines.join("\n");
    any.then_some(event)
}
