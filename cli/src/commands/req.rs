//! `plant req SUBJECT [PAYLOAD]`: one ad-hoc request, like `nats req`.
//!
//! The payload is sent as given (JSON by default); the reply body goes to stdout. An error
//! reply is printed readably — code, message and field from the ADR-32 headers and JSON body
//! — and exits with 1.

use std::io::{Read, Write};

use anyhow::Context as _;
use async_nats::HeaderMap;
use plantd_shared::call;

use crate::context::GlobalArgs;

/// Arguments of `plant req`.
#[derive(Debug, clap::Args)]
pub struct ReqArgs {
    /// Subject to send to, e.g. `plantd.echo.echo`.
    subject: String,
    /// Payload; `-` reads stdin; omitted sends an empty payload.
    payload: Option<String>,
    /// Extra header `Name:Value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// Print the reply headers to stderr too.
    #[arg(long)]
    show_headers: bool,
}

impl ReqArgs {
    /// Sends the request and prints the reply.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let payload = match self.payload.as_deref() {
            Some("-") => {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("cannot read payload from stdin")?;
                buf
            }
            Some(text) => text.as_bytes().to_vec(),
            None => Vec::new(),
        };
        let mut headers = HeaderMap::new();
        for h in &self.headers {
            let (name, value) = h
                .split_once(':')
                .with_context(|| format!("invalid header {h:?}: use NAME:VALUE"))?;
            headers.insert(name.trim(), value.trim());
        }
        let client = global.connect().await?;
        let reply = call::request_raw(
            &client,
            &self.subject,
            headers,
            payload.into(),
            global.timeout,
        )
        .await?;
        if self.show_headers
            && let Some(headers) = &reply.headers
        {
            for (name, values) in headers.iter() {
                for value in values {
                    eprintln!("{name}: {value}");
                }
            }
        }
        out.write_all(&reply.payload)?;
        if !reply.payload.ends_with(b"\n") {
            writeln!(out)?;
        }
        Ok(())
    }
}
