//! Reading Server-Sent Events (the `text/event-stream` format of the web-api bridge's live
//! endpoints) from byte chunks as they arrive, for clients in Rust: the benchmarks and the
//! tests. Comments (`: keep-alive`) are skipped; `data:` lines of one event are joined by
//! newlines, as the HTML standard says.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (default `message`).
    pub event: String,
    /// `id:`, if any.
    pub id: Option<String>,
    /// The `data:` lines, joined.
    pub data: String,
}

/// Turns chunks of a stream into events.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    /// A parser with nothing buffered.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Adds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        if self.buffer.contains('\r') {
            self.buffer = self.buffer.replace("\r\n", "\n");
        }
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            events.extend(parse_block(&block));
        }
        events
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        event: "message".into(),
        id: None,
        data: String::new(),
    };
    let mut any = false;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        any = true;
        match name {
            "event" => event.event = value.to_string(),
            "id" => event.id = Some(value.to_string()),
            "data" => {
                if !event.data.is_empty() {
                    event.data.push('\n');
                }
                event.data.push_str(value);
            }
            _ => {}
        }
    }
    any.then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments_are_skipped() {
        let mut parser = SseParser::new();
        assert!(parser.push(b": keep-alive\n\nid: 4").is_empty());
        let events = parser.push(b"2\nevent: change\ndata: {\"a\":1}\ndata: x\n\n");
        assert_eq!(
            events,
            vec![SseEvent {
                event: "change".into(),
                id: Some("42".into()),
                data: "{\"a\":1}\nx".into(),
            }]
        );
        let events = parser.push(b"data: plain\r\n\r\n");
        assert_eq!(events[0].event, "message");
        assert_eq!(events[0].data, "plain");
    }
}
