//! The NATS connection every plantd process opens.
//!
//! One function so every binary gets the same behaviour: a client name, the creds file read
//! on every (re)connect ([`crate::creds`]), reconnect with capped exponential backoff, and the
//! asynchronous connection events — disconnects, permission violations, slow consumers —
//! logged and reflected in the `nats` health check, since they never surface as errors of the
//! call that caused them.

use std::{path::PathBuf, time::Duration};

use async_nats::{Client, ConnectOptions, Event, ServerError};

use crate::{
    config::CommonConfig,
    health::{Health, Status},
};

/// How the connection behaves while the server is unreachable at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Services: return at once and keep retrying in the background, so a service started
    /// before its NATS server comes up by itself.
    RetryInBackground,
    /// Clients (`plant`): fail fast with a clear error.
    FailFast,
}

/// Errors opening a connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The creds file is unusable (message names the file, never its content).
    #[error(transparent)]
    Creds(#[from] crate::creds::CredsError),
    /// The server could not be reached or refused us.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL(s) tried.
        url: String,
        /// The client error.
        source: async_nats::ConnectError,
    },
    /// A server URL that cannot be used.
    #[error("invalid NATS server URL {url:?}: {message}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
}

/// Backoff between reconnect attempts: 50 ms doubling up to 5 s.
pub fn reconnect_delay(attempts: usize) -> Duration {
    let shift = attempts.min(7) as u32;
    Duration::from_millis((50u64 << shift).min(5_000))
}

/// Connects to NATS with plantd's options. `health`, when given, gets a `nats` check.
pub async fn connect(
    url: &str,
    creds: Option<PathBuf>,
    client_name: &str,
    mode: StartMode,
    health: Option<Health>,
) -> Result<Client, ConnectError> {
    let mut options = match creds {
        Some(path) => {
            // Fail early on an unusable file, instead of at every reconnect.
            crate::creds::Creds::read(&path)?;
            crate::creds::auth_options(path)
        }
        None => ConnectOptions::new(),
    };
    if let Some(h) = &health {
        h.set("nats", Status::Unhealthy, "connecting");
    }
    let events_health = health.clone();
    let name = client_name.to_string();
    options = options
        .name(client_name)
        .reconnect_delay_callback(reconnect_delay)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let health = events_health.clone();
            let name = name.clone();
            async move { on_event(&name, event, health.as_ref()) }
        });
    if mode == StartMode::RetryInBackground {
        options = options.retry_on_initial_connect();
    }
    let client =
        options
            .connect(server_list(url)?)
            .await
            .map_err(|source| ConnectError::Connect {
                url: url.to_string(),
                source,
            })?;
    if let Some(h) = &health
        && client.connection_state() == async_nats::connection::State::Connected
    {
        h.set("nats", Status::Healthy, "connected");
    }
    Ok(client)
}

/// The servers of `url`: one URL, or several separated by commas (a cluster), each tried in
/// turn on connect and reconnect.
pub fn server_list(url: &str) -> Result<Vec<async_nats::ServerAddr>, ConnectError> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|err| ConnectError::BadUrl {
                    url: u.to_string(),
                    message: err.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|list| {
            if list.is_empty() {
                Err(ConnectError::BadUrl {
                    url: url.to_string(),
                    message: "no server URL given".into(),
                })
            } else {
                Ok(list)
            }
        })
}

/// Connects a service with its common settings.
pub async fn connect_service(
    common: &CommonConfig,
    client_name: &str,
    health: &Health,
) -> Result<Client, ConnectError> {
    let creds = (!common.nats_creds.is_empty()).then(|| PathBuf::from(&common.nats_creds));
    connect(
        &common.nats_url,
        creds,
        client_name,
        StartMode::RetryInBackground,
        Some(health.clone()),
    )
    .await
}

fn on_event(client: &str, event: Event, health: Option<&Health>) {
    let set = |status, reason: &str| {
        if let Some(h) = health {
            h.set("nats", status, reason);
        }
    };
    match event {
        Event::Connected => {
            tracing::info!(client, "connected to NATS");
            set(Status::Healthy, "connected");
        }
        Event::Disconnected => {
            tracing::warn!(client, "disconnected from NATS; reconnecting");
            set(Status::Unhealthy, "disconnected");
        }
        Event::LameDuckMode => {
            tracing::warn!(client, "NATS server entered lame duck mode");
            set(Status::Degraded, "server in lame duck mode");
        }
        Event::SlowConsumer(sid) => {
            tracing::warn!(
                client,
                sid,
                "slow consumer: messages dropped for a subscription"
            );
        }
        Event::ServerError(ServerError::AuthorizationViolation) => {
            tracing::error!(client, "NATS authorization violation");
            set(Status::Unhealthy, "authorization violation");
        }
        Event::ServerError(err) => {
            // Permission violations arrive here, asynchronously, e.g.
            // "Permissions Violation for Publish to ...".
            tracing::warn!(client, error = %err, "NATS server error");
        }
        Event::ClientError(err) => tracing::warn!(client, error = %err, "NATS client error"),
        Event::Draining => tracing::info!(client, "draining NATS connection"),
        Event::Closed => {
            tracing::info!(client, "NATS connection closed");
            set(Status::Unhealthy, "closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_list_is_comma_separated() {
        assert_eq!(server_list("nats://127.0.0.1:4222").unwrap().len(), 1);
        assert_eq!(
            server_list("nats://a:1, nats://b:2,nats://c:3")
                .unwrap()
                .len(),
            3
        );
        assert!(matches!(
            server_list(" , "),
            Err(ConnectError::BadUrl { .. })
        ));
        assert!(matches!(
            server_list("nats://a:notaport"),
            Err(ConnectError::BadUrl { .. })
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(50));
        assert_eq!(reconnect_delay(1), Duration::from_millis(100));
        assert_eq!(reconnect_delay(100), Duration::from_secs(5));
    }
}
