//! Three-state health (healthy / degraded / unhealthy, each with a reason) and `GET /healthz`.
//!
//! A service is made of named checks (`nats`, `store`, `mirror`, …), each set by the code that
//! knows: the connection's event callback sets `nats`, the state mirror sets `mirror`. The
//! overall state is the worst check. `/healthz` answers `{"status":"pass|warn|fail",
//! "checks":{…}}` with 200 for pass and warn and 503 for fail, the shape load balancers and
//! Kubernetes probes expect.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};

use tokio::sync::watch;

use crate::shutdown::Shutdown;

/// The state of one check or of the whole service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Working as intended.
    Healthy,
    /// Working, but something needs attention (e.g. the KV mirror is behind).
    Degraded,
    /// Not able to serve.
    Unhealthy,
}

impl Status {
    /// The `/healthz` word: `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "pass",
            Status::Degraded => "warn",
            Status::Unhealthy => "fail",
        }
    }
}

/// A service's named checks. Cheap to clone; all clones share state.
#[derive(Debug, Clone)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, (Status, String)>>>,
    /// The overall state and its reason, sent on every change ([`Health::changes`]).
    overall: Arc<watch::Sender<(Status, String)>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            checks: Arc::default(),
            overall: Arc::new(watch::channel((Status::Healthy, String::new())).0),
        }
    }
}

impl Health {
    /// An empty (healthy) set of checks.
    pub fn new() -> Health {
        Health::default()
    }

    /// Sets one check. A change of the overall state is logged (a warning when it gets
    /// worse), so the log shows every transition with its reason.
    pub fn set(&self, check: &str, status: Status, reason: impl Into<String>) {
        let reason = reason.into();
        let mut checks = self
            .checks
            .lock()
            .expect("health lock is never poisoned: no panics while held");
        let first = checks.is_empty();
        checks.insert(check.to_string(), (status, reason.clone()));
        let now = overall_of(&checks);
        let before = self.overall.borrow().0;
        let after = now.0;
        self.overall.send_if_modified(|current| {
            let modified = *current != now;
            *current = now;
            modified
        });
        if before != after && !first {
            if after > before {
                tracing::warn!(
                    from = before.as_str(),
                    to = after.as_str(),
                    check,
                    reason,
                    "health changed"
                );
            } else {
                tracing::info!(
                    from = before.as_str(),
                    to = after.as_str(),
                    check,
                    reason,
                    "health changed"
                );
            }
        }
    }

    /// The overall state and its reason now and at every change, for whoever reports them
    /// (the module registry's heartbeat).
    pub fn changes(&self) -> watch::Receiver<(Status, String)> {
        self.overall.subscribe()
    }

    /// The worst check and its reason (`Healthy`, "" when there are no checks).
    pub fn overall(&self) -> (Status, String) {
        self.overall.borrow().clone()
    }

    /// The `/healthz` JSON document.
    pub fn to_json(&self) -> Value {
        let (status, _) = self.overall();
        let checks = self
            .checks
            .lock()
            .expect("health lock is never poisoned: no panics while held");
        let checks: serde_json::Map<String, Value> = checks
            .iter()
            .map(|(name, (s, reason))| {
                (
                    name.clone(),
                    json!({"status": s.as_str(), "reason": reason}),
                )
            })
            .collect();
        json!({"status": status.as_str(), "checks": checks})
    }
}

/// The worst check, as `name: reason`.
fn overall_of(checks: &BTreeMap<String, (Status, String)>) -> (Status, String) {
    checks
        .iter()
        .max_by_key(|(_, (status, _))| *status)
        .map(|(name, (status, reason))| (*status, format!("{name}: {reason}")))
        .unwrap_or((Status::Healthy, String::new()))
}

/// Serves `GET /healthz` on `listen`, with the service's own `routes` (`/metrics`) on the same
/// port, until shutdown; returns the bound address.
pub async fn serve(
    listen: &str,
    health: Health,
    routes: Router,
    shutdown: Shutdown,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .with_state(health)
        .merge(routes);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await;
        if let Err(err) = served {
            tracing::warn!(error = %err, "health endpoint stopped");
        }
    });
    Ok(addr)
}

async fn healthz(State(health): State<Health>) -> (StatusCode, Json<Value>) {
    let code = match health.overall().0 {
        Status::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    (code, Json(health.to_json()))
}

/// Largest `/healthz` body [`probe`] reads.
const PROBE_MAX_BYTES: u64 = 64 * 1024;

/// Reads a `/healthz` URL (`http://<ip>:<port>/<path>`, as services advertise it in their
/// `health_url` metadata): HTTP/1.0, bounded by `timeout` and 64 KiB. Returns the status code
/// and the JSON body (a `/healthz` answers 503 with its checks when unhealthy, so the body is
/// read whatever the status).
pub async fn probe(url: &str, timeout: std::time::Duration) -> Result<(u16, Value), String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "not an http:// URL".to_string())?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| format!("{authority:?} is not an address"))?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET /{path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream
            .take(PROBE_MAX_BYTES)
            .read_to_end(&mut response)
            .await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "no HTTP response".to_string())?;
    let status = std::str::from_utf8(&response[..split])
        .ok()
        .and_then(|head| head.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| "no HTTP status line".to_string())?;
    let body =
        serde_json::from_slice(&response[split + 4..]).map_err(|e| format!("not JSON: {e}"))?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_report_the_overall_state_only_when_it_changes() {
        let h = Health::new();
        let mut changes = h.changes();
        h.set("nats", Status::Healthy, "connected");
        assert!(changes.has_changed().unwrap());
        assert_eq!(
            *changes.borrow_and_update(),
            (Status::Healthy, "nats: connected".to_string())
        );
        h.set("nats", Status::Healthy, "connected");
        assert!(
            !changes.has_changed().unwrap(),
            "the same state is no change"
        );
        h.set("requires", Status::Degraded, "waiting for echo@^0.1");
        assert_eq!(
            *changes.borrow_and_update(),
            (
                Status::Degraded,
                "requires: waiting for echo@^0.1".to_string()
            )
        );
        assert_eq!(h.overall().0, Status::Degraded);
    }

    #[test]
    fn overall_is_the_worst_check() {
        let h = Health::new();
        assert_eq!(h.overall().0, Status::Healthy);
        h.set("nats", Status::Healthy, "connected");
        h.set("mirror", Status::Degraded, "12 changes behind");
        assert_eq!(
            h.overall(),
            (Status::Degraded, "mirror: 12 changes behind".into())
        );
        assert_eq!(h.to_json()["status"], "warn");
        h.set("nats", Status::Unhealthy, "disconnected");
        assert_eq!(h.to_json()["status"], "fail");
        assert_eq!(h.to_json()["checks"]["nats"]["reason"], "disconnected");
    }

    #[tokio::test]
    async fn healthz_serves_json_and_503_when_failing() {
        let h = Health::new();
        let shutdown = Shutdown::new();
        let addr = serve("127.0.0.1:0", h.clone(), Router::new(), shutdown.clone())
            .await
            .unwrap();
        let get = |addr: SocketAddr| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get(addr).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains(r#""status":"pass""#));
        h.set("nats", Status::Unhealthy, "disconnected");
        let fail = get(addr).await;
        assert!(fail.starts_with("HTTP/1.1 503"), "{fail}");
        shutdown.trigger();
    }
}
