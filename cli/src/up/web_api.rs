//! The web-api bridge as a child of `plant up`: started after the services (it logs people in
//! through identity), ready when its `/healthz` answers 200.
//!
//! It gets the login-only creds, never a service's or the admin's: the bridge serves each
//! person on a connection made with that person's own JWT (docs/web-api.md).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use plantd_shared::shutdown::Shutdown;

use super::auth::UpAuth;
use super::children::{ServiceChild, ServiceSpec};

/// The bridge as `plant up` starts it (it answers on HTTP, not `$SRV.PING`).
const WEB_API: ServiceSpec = ServiceSpec {
    name: "web-api",
    binary: "plantd-web-api",
    has_data: false,
    needs_auth: false,
    module: false,
};

/// How long the bridge may take to answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts the bridge on `127.0.0.1:<port>` (0: a free port), with `extra_sets` after the
/// defaults, and waits until it is healthy.
/// Returns the child and the URL of the UI.
pub async fn start(
    nats_url: &str,
    data_dir: &Path,
    auth: Option<&UpAuth>,
    port: u16,
    shutdown: &Shutdown,
    extra_sets: &[String],
) -> anyhow::Result<(ServiceChild, String)> {
    let port = match port {
        0 => plantd_shared::nats_server::free_port().context("cannot find a free port")?,
        port => port,
    };
    let listen = format!("127.0.0.1:{port}");
    let creds = match auth {
        Some(auth) => auth
            .creds(plantd_identity::permissions::WEB_API_USER)?
            .display()
            .to_string(),
        None => String::new(),
    };
    let mut sets = vec![format!("listen={listen}"), format!("nats_creds={creds}")];
    sets.extend_from_slice(extra_sets);
    let mut child = ServiceChild::spawn(&WEB_API, nats_url, data_dir, &sets)?;
    let health = format!("http://{listen}/healthz");
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok((200, _)) =
            plantd_shared::health::probe(&health, Duration::from_millis(500)).await
        {
            return Ok((child, format!("http://{listen}")));
        }
        if child.exited() {
            anyhow::bail!(
                "web-api exited during start-up (is port {port} in use? --http-port picks another); see {}",
                child.log_path.display()
            );
        }
        if shutdown.is_triggered() || tokio::time::Instant::now() >= deadline {
            let log = child.log_path.clone();
            child.stop(Duration::from_secs(5)).await;
            anyhow::bail!(
                "web-api did not become healthy within {}s; see {}",
                READY_TIMEOUT.as_secs(),
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
