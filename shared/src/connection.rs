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
    let client = options
        .connect(url)
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
    fn backoff_grows_and_is_capped() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(50));
        assert_eq!(reconnect_delay(1), Duration::from_millis(100));
        assert_eq!(reconnect_delay(100), Duration::from_secs(5));
    }
}
