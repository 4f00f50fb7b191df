//! Global options every subcommand shares and the NATS connection built from them.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use plantd_shared::connection::{self, StartMode};

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
    /// Connects to NATS, failing fast with the URL in the message.
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        connection::connect(
            &self.server,
            self.creds.clone(),
            "plant",
            StartMode::FailFast,
            None,
        )
        .await
        .context("is the server running? start one with `plant up`")
    }
}

/// Parses `250ms`, `5s`, `2m` or a bare number of seconds.
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
        _ => return Err(format!("invalid duration unit in {text:?}: use ms, s or m")),
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
        assert!(parse_duration("5h").is_err());
    }
}
