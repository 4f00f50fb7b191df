//! Global options every subcommand shares and the NATS connection built from them.
//!
//! Credentials: `--creds FILE` (or `PLANTD_CREDS`) wins; without it the login session that
//! `plant login` left in the config dir is used, and without that the connection is anonymous
//! (an open `plant up --no-auth` server). A creds file with a session sidecar also sets the
//! client's inbox prefix, because a logged-in user may subscribe to no other inbox.

use std::{path::PathBuf, time::Duration};

use async_nats::ConnectErrorKind;
use plantd_shared::connection::{self, ConnectError};
use plantd_shared::creds::Creds;

use crate::identity_client::{self, Session};
use crate::output::OutputFormat;

/// Flags that apply to every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// NATS server URL(s), comma separated.
    #[arg(
        long,
        global = true,
        env = "PLANTD_SERVER",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub server: String,
    /// NATS creds file (JWT + nkey seed).
    #[arg(long, global = true, env = "PLANTD_CREDS", value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Request timeout, e.g. `5s`, `500ms`.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl GlobalArgs {
    /// The credentials a command connects with: `--creds`/`PLANTD_CREDS`, else the login
    /// session (`plant login`), else none. A creds file with a sidecar brings its inbox prefix.
    pub fn auth(&self) -> anyhow::Result<Auth> {
        let auth = self.auth_allow_expired()?;
        if let Some(session) = &auth.session
            && session.expired()
        {
            anyhow::bail!(
                "the login session of {} expired at {}; run `plant login` again \
                 (or `plant logout` to drop it)",
                session.username,
                session.expires.as_deref().unwrap_or("?")
            );
        }
        Ok(auth)
    }

    /// [`GlobalArgs::auth`], also when the session has expired (for `plant logout`).
    pub fn auth_allow_expired(&self) -> anyhow::Result<Auth> {
        let path = match &self.creds {
            Some(path) => path.clone(),
            None => match identity_client::session_creds_path() {
                Ok(path) if path.exists() => path,
                _ => return Ok(Auth::default()),
            },
        };
        let session = identity_client::read_sidecar(&path)?;
        Ok(Auth {
            creds: Some(path),
            inbox_prefix: session.as_ref().map(|s| s.inbox_prefix.clone()),
            session,
        })
    }

    /// Connects to NATS with [`GlobalArgs::auth`], failing fast with the URL in the message.
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        let auth = self.auth()?;
        connect_as(&self.server, &auth, "plant").await
    }
}

/// The credentials of a connection.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// The creds file, if any.
    pub creds: Option<PathBuf>,
    /// The inbox prefix replies must use (the sidecar's, or one the caller knows).
    pub inbox_prefix: Option<String>,
    /// Its sidecar, if it is a login session.
    pub session: Option<Session>,
}

/// Connects to `url` with `auth`: the creds file is re-read on every connect, the inbox
/// prefix is the session's, and server errors (permission violations) are shown on stderr as
/// they arrive, since they never surface as the error of the call that caused them.
pub async fn connect_as(
    url: &str,
    auth: &Auth,
    client_name: &str,
) -> anyhow::Result<async_nats::Client> {
    connect_with_prefix(
        url,
        auth.creds.clone(),
        auth.inbox_prefix.as_deref(),
        client_name,
    )
    .await
    .map_err(|err| {
        let hint = match (&err, &auth.creds) {
            (ConnectError::Connect { source, .. }, None)
                if source.kind() == ConnectErrorKind::AuthorizationViolation =>
            {
                "this server requires credentials: pass --creds FILE (`plant up` prints the \
                     admin's) or run `plant login`"
                    .to_string()
            }
            (ConnectError::Connect { source, .. }, Some(path))
                if source.kind() == ConnectErrorKind::AuthorizationViolation =>
            {
                format!(
                    "the server refused the credentials in {}: expired, revoked, or not \
                         issued for this server? run `plant login` or pass other --creds",
                    path.display()
                )
            }
            _ => "is the server running? start one with `plant up`".to_string(),
        };
        anyhow::Error::new(err).context(hint)
    })
}

/// Connects with an optional creds file and inbox prefix (plantd's connect options otherwise:
/// client name, capped reconnect backoff, fail fast).
pub async fn connect_with_prefix(
    url: &str,
    creds: Option<PathBuf>,
    inbox_prefix: Option<&str>,
    client_name: &str,
) -> Result<async_nats::Client, ConnectError> {
    let mut options = match creds {
        Some(path) => {
            Creds::read(&path)?;
            plantd_shared::creds::auth_options(path)
        }
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(prefix) = inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    options
        .name(client_name)
        .reconnect_delay_callback(connection::reconnect_delay)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move {
            if let async_nats::Event::ServerError(err) = event {
                let text = err.to_string();
                // A fatal refusal ends the command with its own error (crate::refusal).
                if !crate::refusal::record(&text) {
                    eprintln!("warning: NATS server: {text}");
                }
            }
        })
        .connect(connection::server_list(url)?)
        .await
        .map_err(|source| ConnectError::Connect {
            url: url.to_string(),
            source,
        })
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `7d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: use e.g. 500ms, 5s, 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}: use ms, s, m, h or d"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("5w").is_err());
    }
}
