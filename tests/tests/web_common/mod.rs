//! What the web-api tests share: an HTTP client (reqwest) bound to a hub's bridge URL, logins
//! over HTTP, error-body checks, and a Server-Sent Events reader (on `plantd_shared::sse`).
#![allow(dead_code)]

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use plantd_shared::sse::{SseEvent, SseParser};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// Patience for one HTTP call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A client of one bridge, optionally logged in.
#[derive(Clone)]
pub struct Web {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bearer token, if logged in.
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Web {
    /// A client of the bridge at `base`, not logged in.
    pub fn new(base: &str) -> Web {
        Web {
            base: base.trim_end_matches('/').to_string(),
            token: None,
            client: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .pool_max_idle_per_host(64)
                .build()
                .expect("a reqwest client builds"),
        }
    }

    /// A request to `path` (under the base), with the bearer token if any.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Logs in over HTTP; the returned client carries the token.
    pub async fn login(&self, user: &str, password: &str) -> anyhow::Result<(Web, Value)> {
        let resp = self
            .req(Method::POST, "/api/v1/login")
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await?;
        let (status, body) = json(resp).await?;
        anyhow::ensure!(status == StatusCode::OK, "login {user}: {status} {body}");
        let token = body["token"].as_str().context("token")?.to_string();
        let mut web = self.clone();
        web.token = Some(token);
        Ok((web, body))
    }

    /// GET `path`, status and JSON body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        json(self.req(Method::GET, path).send().await?).await
    }

    /// PUT `{"value": value}` to a key with extra headers, status and JSON body.
    pub async fn put_value(
        &self,
        scope: &str,
        key: &str,
        value: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut builder = self
            .req(Method::PUT, &format!("/api/v1/state/{scope}/keys/{key}"))
            .json(&serde_json::json!({ "value": value }));
        for (name, v) in headers {
            builder = builder.header(*name, *v);
        }
        json(builder.send().await?).await
    }
}

/// Status and JSON body (`Value::Null` for an empty body).
pub async fn json(resp: Response) -> anyhow::Result<(StatusCode, Value)> {
    let status = resp.status();
    let bytes = resp.bytes().await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)))?
    };
    Ok((status, body))
}

/// Asserts an error reply: the status, the body's code equal to it, a message, and `field`
/// when given.
pub fn assert_error(got: &(StatusCode, Value), status: u16, field: Option<&str>) {
    let (code, body) = got;
    assert_eq!(code.as_u16(), status, "{body}");
    assert_eq!(body["code"].as_u64(), Some(u64::from(status)), "{body}");
    assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{body}");
    if let Some(field) = field {
        assert_eq!(body["field"].as_str(), Some(field), "{body}");
    }
}

/// Reads events from an open `text/event-stream` response.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: SseParser,
    ready: std::collections::VecDeque<SseEvent>,
}

impl SseReader {
    /// Wraps a response (fails unless it is 200).
    pub async fn open(resp: Response) -> anyhow::Result<SseReader> {
        anyhow::ensure!(
            resp.status() == StatusCode::OK,
            "stream refused: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        Ok(SseReader {
            body: resp.bytes_stream().boxed(),
            parser: SseParser::new(),
            ready: std::collections::VecDeque::new(),
        })
    }

    /// The next event, within `wait`.
    pub async fn next(&mut self, wait: Duration) -> anyhow::Result<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .map_err(|_| anyhow::anyhow!("no event within {wait:?}"))?
                .context("the stream ended")??;
            self.ready.extend(self.parser.push(&chunk));
        }
    }
}
