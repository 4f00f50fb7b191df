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
#[derive(Debug, Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, (Status, String)>>>,
}

impl Health {
    /// An empty (healthy) set of checks.
    pub fn new() -> Health {
        Health::default()
    }

    /// Sets one check.
    pub fn set(&self, check: &str, status: Status, reason: impl Into<String>) {
        let mut checks = self
            .checks
            .lock()
            .expect("health lock is never poisoned: no panics while held");
        checks.insert(check.to_string(), (status, reason.into()));
    }

    /// The worst check and its reason (`Healthy`, "" when there are no checks).
    pub fn overall(&self) -> (Status, String) {
        let checks = self
            .checks
            .lock()
            .expect("health lock is never poisoned: no panics while held");
        checks
            .iter()
            .max_by_key(|(_, (status, _))| *status)
            .map(|(name, (status, reason))| (*status, format!("{name}: {reason}")))
            .unwrap_or((Status::Healthy, String::new()))
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

/// Serves `GET /healthz` on `listen` until shutdown; returns the bound address.
pub async fn serve(
    listen: &str,
    health: Health,
    shutdown: Shutdown,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .with_state(health);
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let addr = serve("127.0.0.1:0", h.clone(), shutdown.clone())
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
