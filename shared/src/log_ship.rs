//! Ships a process's `tracing` events to the logger: `plantd.log.<service>.<level>`.
//!
//! Logging must never slow a service down or take it with it when NATS is away. So the
//! [`ShipLayer`] only turns an event into a [`LogRecord`] and offers it to a bounded channel
//! (`try_send`): when the channel is full the record is dropped and counted, never waited for.
//! The [`LogShipper`] task publishes from that channel while the connection is up and stops
//! taking records while it is down, so the channel keeps the oldest backlog (bounded) for when
//! the link is back; then it sends one `warn` record saying how many were dropped.
//!
//! Events of `async_nats` are not shipped: they describe the very connection records travel
//! on, and shipping them could feed on itself. They still reach stderr.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_nats::{Client, connection::State};
use plantd_schemas::logger::v1::{LogRecord, Span};
use tokio::sync::mpsc;
use tracing::{Event, Level, Subscriber, field::Field, span};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

use crate::{shutdown::Shutdown, subjects::log, timestamp::now};

/// Records kept while NATS is unreachable, by default.
pub const DEFAULT_BUFFER: usize = 4096;

/// How often a waiting shipper looks at the connection again.
const RECONNECT_POLL: Duration = Duration::from_millis(50);

/// Targets whose events are not shipped.
const NOT_SHIPPED: &[&str] = &["async_nats"];

/// Creates the layer and the shipper that drains it, for `service`, holding at most `buffer`
/// records while NATS is away.
pub fn channel(service: &str, buffer: usize) -> (ShipLayer, LogShipper) {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    let instance: Arc<str> = format!("{}/{}", host_name(), std::process::id()).into();
    let service: Arc<str> = service.into();
    (
        ShipLayer {
            service: service.clone(),
            instance: instance.clone(),
            tx,
            dropped: dropped.clone(),
        },
        LogShipper {
            service,
            instance,
            rx,
            dropped,
        },
    )
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The level's subject token.
pub fn level_token(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// The `tracing` layer: events into records, offered without waiting.
pub struct ShipLayer {
    service: Arc<str>,
    instance: Arc<str>,
    tx: mpsc::Sender<LogRecord>,
    dropped: Arc<AtomicU64>,
}

/// A span's fields, kept in its extensions.
struct SpanFields(BTreeMap<String, String>);

/// Collects fields as text; `message` separately.
#[derive(Default)]
struct Fields {
    message: String,
    fields: BTreeMap<String, String>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .insert(field.name().to_string(), value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.insert(field.name().to_string(), text);
        }
    }
}

impl<S> Layer<S> for ShipLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.fields));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(span) = ctx.span(id)
            && let Some(kept) = span.extensions_mut().get_mut::<SpanFields>()
        {
            kept.0.extend(fields.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if NOT_SHIPPED.iter().any(|t| meta.target().starts_with(t)) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut spans = Vec::new();
        let mut trace_id = fields.fields.remove("trace_id").unwrap_or_default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let kept = extensions
                    .get::<SpanFields>()
                    .map(|f| f.0.clone())
                    .unwrap_or_default();
                if trace_id.is_empty()
                    && let Some(id) = kept.get("trace_id")
                {
                    trace_id = id.clone();
                }
                spans.push(Span {
                    name: span.name().to_string(),
                    fields: kept.into_iter().collect(),
                });
            }
        }
        let record = LogRecord {
            time: Some(now()),
            service: self.service.to_string(),
            instance: self.instance.to_string(),
            level: level_token(meta.level()).to_string(),
            target: meta.target().to_string(),
            message: fields.message,
            fields: fields.fields.into_iter().collect(),
            spans,
            trace_id,
            seq: 0,
        };
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Publishes what the layer collected. Start it with [`LogShipper::spawn`] once the process
/// has its NATS client; until then records wait in the channel (start-up logs included).
pub struct LogShipper {
    service: Arc<str>,
    instance: Arc<str>,
    rx: mpsc::Receiver<LogRecord>,
    dropped: Arc<AtomicU64>,
}

impl LogShipper {
    /// Ships on `client` until `shutdown`, then sends what is already collected and flushes.
    pub fn spawn(self, client: Client, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(client, shutdown))
    }

    async fn run(mut self, client: Client, shutdown: Shutdown) {
        loop {
            let record = tokio::select! {
                record = self.rx.recv() => match record {
                    Some(record) => record,
                    None => break,
                },
                () = shutdown.wait() => break,
            };
            tokio::select! {
                () = wait_connected(&client) => {}
                () = shutdown.wait() => break,
            }
            self.publish(&client, record).await;
        }
        // Stopping: what is collected goes out if the link is up; nothing waits for it.
        if client.connection_state() == State::Connected {
            while let Ok(record) = self.rx.try_recv() {
                self.publish(&client, record).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
        }
    }

    async fn publish(&self, client: &Client, record: LogRecord) {
        send(client, &record).await;
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let report = LogRecord {
                time: Some(now()),
                service: self.service.to_string(),
                instance: self.instance.to_string(),
                level: "warn".into(),
                target: module_path!().into(),
                message: format!(
                    "{dropped} log records dropped: the log buffer was full (NATS unreachable or too slow)"
                ),
                fields: [("dropped".to_string(), dropped.to_string())].into(),
                spans: Vec::new(),
                trace_id: String::new(),
                seq: 0,
            };
            send(client, &report).await;
        }
    }
}

async fn send(client: &Client, record: &LogRecord) {
    let Ok(payload) = serde_json::to_vec(record) else {
        return;
    };
    let subject = log::record(&record.service, &record.level);
    // A failed publish is not logged: that would be one more record to ship.
    let _ = client.publish(subject, payload.into()).await;
}

async fn wait_connected(client: &Client) {
    while client.connection_state() != State::Connected {
        tokio::time::sleep(RECONNECT_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn events_become_records_with_span_fields_and_a_full_buffer_counts_drops() {
        let (layer, mut shipper) = channel("state", 2);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", endpoint = "set", trace_id = "abc");
            let _entered = span.enter();
            tracing::warn!(scope = "site1", "slow commit");
            tracing::info!("second");
            tracing::info!("third is dropped");
            tracing::error!(target: "async_nats", "never shipped");
        });
        let first = shipper.rx.try_recv().expect("a record");
        assert_eq!(
            (first.level.as_str(), first.message.as_str()),
            ("warn", "slow commit")
        );
        assert_eq!(first.fields.get("scope").map(String::as_str), Some("site1"));
        assert_eq!(first.trace_id, "abc");
        assert_eq!(first.spans[0].name, "request");
        assert_eq!(
            first.spans[0].fields.get("endpoint").map(String::as_str),
            Some("set")
        );
        assert_eq!(first.service, "state");
        assert_eq!(shipper.rx.try_recv().expect("second").message, "second");
        assert!(shipper.rx.try_recv().is_err(), "the buffer held two");
        assert_eq!(
            shipper.dropped.load(Ordering::Relaxed),
            1,
            "async_nats is not counted"
        );
    }
}
