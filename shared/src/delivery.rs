//! Reading JetStream push deliveries without a consumer API: what a delivery's reply subject
//! and an idle heartbeat say.
//!
//! People may not call the JetStream API (docs/identity.md), so the consumers they follow —
//! state watches, bus replays — are created for them by a service, and the client checks each
//! delivery itself, as an ordered consumer would: the reply subject names the stream, the
//! consumer and both sequences, so a message of another consumer (or one someone else sent to
//! the deliver subject) is ignored and a lost delivery is seen as a gap in the consumer
//! sequence.

use async_nats::HeaderMap;

use crate::ServiceError;

/// The parts of a JetStream delivery's reply subject.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct AckInfo<'a> {
    /// Stream name.
    pub stream: &'a str,
    /// Consumer name.
    pub consumer: &'a str,
    /// Stream sequence of the message.
    pub stream_seq: u64,
    /// Consumer sequence of the delivery (1, 2, … without gaps unless one was lost).
    pub consumer_seq: u64,
    /// When the message was stored, unix nanoseconds.
    pub timestamp_nanos: i64,
}

impl<'a> AckInfo<'a> {
    /// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (9 tokens), or
    /// the form with domain and account hash after `$JS.ACK` (12 or more tokens); `None` for
    /// anything else.
    pub fn parse(reply: &'a str) -> Option<AckInfo<'a>> {
        let tokens: Vec<&str> = reply.split('.').collect();
        if tokens.len() < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
            return None;
        }
        let at = if tokens.len() == 9 { 2 } else { 4 };
        let t = tokens.get(at..at + 6)?;
        Some(AckInfo {
            stream: t[0],
            consumer: t[1],
            stream_seq: t[3].parse().ok()?,
            consumer_seq: t[4].parse().ok()?,
            timestamp_nanos: t[5].parse().ok()?,
        })
    }
}

/// What one message on a deliver subject is, for the consumer being followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The next delivery, in order: its stream sequence and store time (unix ns).
    Next {
        /// Stream sequence.
        stream_seq: u64,
        /// Store time, unix nanoseconds.
        timestamp_nanos: i64,
    },
    /// Nothing for us: a heartbeat in order, another consumer's message, not a delivery.
    Skip,
    /// A delivery was lost (a consumer sequence skipped, or a heartbeat says more was sent):
    /// ask for a new consumer.
    Gap,
}

/// Checks `message` against the followed consumer (`stream`, `consumer`) and the consumer
/// sequence it must carry (`next_cseq`, advanced on [`Checked::Next`]).
pub fn check(
    message: &async_nats::Message,
    stream: &str,
    consumer: &str,
    next_cseq: &mut u64,
) -> Checked {
    if message.status.is_some() {
        // An idle heartbeat: it says which consumer sequence was sent last.
        return match last_consumer_seq(message.headers.as_ref()) {
            Some(last) if last >= *next_cseq => Checked::Gap,
            _ => Checked::Skip,
        };
    }
    let Some(ack) = message.reply.as_deref().and_then(AckInfo::parse) else {
        return Checked::Skip; // not a delivery of any consumer
    };
    if ack.stream != stream || ack.consumer != consumer {
        return Checked::Skip;
    }
    if ack.consumer_seq != *next_cseq {
        return Checked::Gap;
    }
    *next_cseq += 1;
    Checked::Next {
        stream_seq: ack.stream_seq,
        timestamp_nanos: ack.timestamp_nanos,
    }
}

/// Longest delivery token.
pub const MAX_TOKEN: usize = 64;

/// Checks the token a caller picks for its deliver subject: one subject token,
/// `[A-Za-z0-9_-]{1,64}` (400 naming `token` otherwise).
pub fn check_token(token: &str) -> Result<(), ServiceError> {
    let valid = !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ServiceError::invalid_field(
            "token",
            format!("use 1 to {MAX_TOKEN} letters, digits, '-' or '_' (one subject token)"),
        ))
    }
}

/// `Nats-Last-Consumer` of an idle heartbeat: the consumer sequence sent last.
pub fn last_consumer_seq(headers: Option<&HeaderMap>) -> Option<u64> {
    headers?
        .get("Nats-Last-Consumer")
        .and_then(|v| v.as_str().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_one_subject_token() {
        for good in ["a", "w_1-x", &"z".repeat(64)] {
            assert!(check_token(good).is_ok(), "{good}");
        }
        for bad in ["", "a.b", "a b", "*", ">", "a>", &"z".repeat(65), "é"] {
            let err = check_token(bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("token"), "{bad}");
        }
    }

    #[test]
    fn parses_both_reply_forms_and_refuses_others() {
        let a = AckInfo::parse("$JS.ACK.KV_b.c1.1.42.7.1700000000000000000.0").unwrap();
        assert_eq!(
            a,
            AckInfo {
                stream: "KV_b",
                consumer: "c1",
                stream_seq: 42,
                consumer_seq: 7,
                timestamp_nanos: 1_700_000_000_000_000_000,
            }
        );
        let b = AckInfo::parse("$JS.ACK.hub.ACCHASH.S.c.1.5.2.17.0.tok").unwrap();
        assert_eq!(
            (b.stream, b.consumer, b.stream_seq, b.consumer_seq),
            ("S", "c", 5, 2)
        );
        for bad in [
            "",
            "_INBOX.x",
            "$JS.ACK.S.c.1.x.2.3.0",
            "$JS.NAK.S.c.1.2.3.4.0",
        ] {
            assert_eq!(AckInfo::parse(bad), None, "{bad}");
        }
    }
}
