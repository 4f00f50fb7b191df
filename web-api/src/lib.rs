//! plantd over HTTP: the web-api bridge and the web UI it serves.
//!
//! The bridge holds no rights of its own over plantd. It logs people in through identity and
//! serves each person on a NATS connection made with that person's JWT ([`session`]), so
//! nats-server enforces the same permission matrix over HTTP as over NATS; a refusal becomes
//! 403 ([`nats`]). The handlers ([`routes`]) speak the same protobuf requests to the same
//! subjects as the `plant` CLI, and map HTTP conventions onto them (`ETag`/`If-Match` for
//! versions, Server-Sent Events for watches). [`openapi`] documents them from the code,
//! [`ui`] embeds the pages, [`server`] puts the production layers around them, [`tls`] adds
//! HTTPS by configuration.

#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod error;
pub mod nats;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod session;
pub mod tls;
pub mod ui;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plantd_shared::health::Health;
use plantd_shared::process::ServeError;
use plantd_shared::shutdown::Shutdown;

use crate::app::AppState;
use crate::config::WebApiConfig;
use crate::session::Sessions;

/// The service name (config prefix `PLANTD_WEB_API_`, log subjects).
pub const SERVICE: &str = "web-api";

/// Whether `creds` may publish the bridge's log records (the grant of
/// [`plantd_identity::permissions::web_api_bridge`]), read from their JWT.
fn is_bridge_user(creds: &plantd_shared::creds::Creds) -> bool {
    let records = plantd_shared::subjects::log::of_service(SERVICE);
    plantd_identity::jwt::decode::<plantd_identity::claims::UserNats>(&creds.jwt)
        .is_ok_and(|claims| claims.nats.permissions.publish.allow.contains(&records))
}

/// How often expired sessions are closed.
const REAP_EVERY: Duration = Duration::from_secs(15);

/// Runs the bridge until `shutdown`.
pub async fn run(config: WebApiConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    ServeError::check_config(&config.problems())?;
    let health = Health::new();
    let timeout = config.request_timeout();
    let sessions = if config.auth() {
        let creds = PathBuf::from(&config.common.nats_creds);
        let read = plantd_shared::creds::Creds::read(&creds)
            .map_err(|e| ServeError::Setup(format!("nats_creds: {e}")))?;
        // The bridge's own user (`web-api.creds`, what `plant up` gives it) may ship its log
        // records; the shared login creds may publish nothing but login requests, so with
        // those the bridge's log events stay on stderr.
        let mut common = config.common.clone();
        common.log_ship &= is_bridge_user(&read);
        let shipper = plantd_shared::telemetry::init_service(SERVICE, &common);
        let login = session::login_connection(&config.common.nats_url, &creds)
            .await
            .map_err(|e| {
                ServeError::Setup(format!("cannot connect to {}: {e}", config.common.nats_url))
            })?;
        if let Some(shipper) = shipper {
            shipper.spawn(login.clone(), shutdown.clone());
        }
        let ttl = Duration::from_secs(config.session_ttl_secs);
        Sessions::with_login(
            &config.common.nats_url,
            login,
            ttl,
            config.max_sessions,
            timeout,
        )
    } else {
        let shipper = plantd_shared::telemetry::init_service(SERVICE, &config.common);
        let client =
            plantd_shared::connection::connect_service(&config.common, "plantd-web-api", &health)
                .await?;
        if let Some(shipper) = shipper {
            shipper.spawn(client.clone(), shutdown.clone());
        }
        Sessions::open(&config.common.nats_url, client, timeout)
    };
    let sessions = Arc::new(sessions);
    let app = AppState::new(app::Shared {
        sessions: sessions.clone(),
        config: Arc::new(config.clone()),
        health,
        state_bucket: config.state_bucket.clone(),
        shutdown: shutdown.clone(),
    });
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| ServeError::Setup(format!("listen: cannot bind {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Setup(format!("listen: {e}")))?;
    let router = server::router(app);
    let reaper = spawn_reaper(sessions.clone(), shutdown.clone());
    let stopping = {
        let shutdown = shutdown.clone();
        async move { shutdown.wait().await }
    };
    let served = if config.tls_cert.is_empty() {
        tracing::info!(url = %format!("http://{addr}"), auth = sessions.auth(), "web-api listening");
        let serve = axum::serve(listener, router).with_graceful_shutdown(stopping);
        bounded(serve.into_future(), &shutdown, config.shutdown_grace_ms).await
    } else {
        let tls = tls::server_config(config.tls_cert.as_ref(), config.tls_key.as_ref())
            .map_err(ServeError::Setup)?;
        let listener = tls::TlsListener::new(listener, tls)
            .map_err(|e| ServeError::Setup(format!("listen: {e}")))?;
        tracing::info!(url = %format!("https://{addr}"), auth = sessions.auth(), "web-api listening");
        let serve = axum::serve(listener, router).with_graceful_shutdown(stopping);
        bounded(serve.into_future(), &shutdown, config.shutdown_grace_ms).await
    };
    reaper.abort();
    sessions.close_all().await;
    tracing::info!("web-api stopped");
    served.map_err(|e| ServeError::Setup(format!("the HTTP server failed: {e}")))
}

/// Runs the server; once `shutdown` fires, gives open requests `grace_ms` to finish.
async fn bounded(
    serve: impl std::future::Future<Output = std::io::Result<()>>,
    shutdown: &Shutdown,
    grace_ms: u64,
) -> std::io::Result<()> {
    let mut serve = std::pin::pin!(serve);
    tokio::select! {
        result = &mut serve => return result,
        () = shutdown.wait() => {}
    }
    match tokio::time::timeout(Duration::from_millis(grace_ms), serve).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                grace_ms,
                "requests still open after the grace period; stopping anyway"
            );
            Ok(())
        }
    }
}

fn spawn_reaper(sessions: Arc<Sessions>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REAP_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    sessions.reap().await;
                }
                () = shutdown.wait() => return,
            }
        }
    })
}
