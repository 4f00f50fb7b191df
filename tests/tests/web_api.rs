//! End-to-end tests of the web-api bridge, over HTTP, against a real `plant up` (nats-server,
//! identity, state, echo, logger, buses and the bridge as child processes): every endpoint,
//! every error status, the identity permission matrix driven over HTTP, and the live state
//! watch (SSE) with its `Last-Event-ID` resume.

mod identity_common;
mod web_common;

use std::time::{Duration, Instant};

use identity_common::Hub;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use web_common::{SseReader, Web, assert_error, json};

const ADMIN: (&str, &str) = ("ada", "ada-password-1");
const OPERATOR: (&str, &str) = ("olga", "olga-password-1");
const VIEWER: (&str, &str) = ("vic", "vic-password-1");

/// A hub with an admin, a `site1` operator and a `site1` viewer, and scopes site1, site2.
async fn hub_with_people() -> anyhow::Result<Hub> {
    let hub = Hub::start(&[]).await?;
    anyhow::ensure!(!hub.http_url.is_empty(), "no http line:\n{}", hub.banner);
    hub.create_user(ADMIN.0, ADMIN.1, &["admin"]).await?;
    hub.create_user(OPERATOR.0, OPERATOR.1, &["operator@site1"])
        .await?;
    hub.create_user(VIEWER.0, VIEWER.1, &["viewer@site1"])
        .await?;
    for scope in ["site1", "site2"] {
        hub.admin(&["scope", "create", scope], None).await?;
    }
    Ok(hub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_pages_and_errors() -> anyhow::Result<()> {
    let hub = hub_with_people().await?;
    let web = Web::new(&hub.http_url);

    // Open endpoints: the bridge's health, the API document, the docs page and the UI.
    let (status, health) = web.get("/healthz").await?;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "pass", "{health}");
    let (status, doc) = web.get("/api/v1/openapi.json").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{doc}"
    );
    for page in ["/", "/api/v1/docs", "/app.js", "/style.css", "/docs.js"] {
        let resp = web.req(Method::GET, page).send().await?;
        assert_eq!(resp.status(), StatusCode::OK, "{page}");
        let csp = resp.headers()["content-security-policy"]
            .to_str()?
            .to_string();
        assert!(csp.starts_with("default-src 'self'"), "{page}: {csp}");
        let text = resp.text().await?;
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{page} loads nothing from outside"
        );
    }

    // No CORS origin configured (plant up's default): same origin only, no grant to others.
    let resp = web
        .req(Method::GET, "/healthz")
        .header("origin", "https://elsewhere.example")
        .send()
        .await?;
    assert!(
        !resp.headers().contains_key("access-control-allow-origin"),
        "{:?}",
        resp.headers()
    );

    // Request ids: a new one on every response; the caller's own kept.
    let resp = web
        .req(Method::GET, "/healthz")
        .header("x-request-id", "trace-me-42")
        .send()
        .await?;
    assert_eq!(resp.headers()["x-request-id"], "trace-me-42");
    let resp = web.req(Method::GET, "/healthz").send().await?;
    assert!(!resp.headers()["x-request-id"].is_empty());

    // 401: no token, a malformed header, a forged token.
    assert_error(&web.get("/api/v1/whoami").await?, 401, None);
    let resp = web
        .req(Method::GET, "/api/v1/whoami")
        .header("authorization", "Basic abc")
        .send()
        .await?;
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"plantd\""
    );
    assert_error(&json(resp).await?, 401, None);
    let mut forged = web.clone();
    forged.token = Some(
        "eyJhbGciOiJIUzI1NiJ9.eyJzaWQiOiJ4Iiwic3ViIjoiYWRhIiwiZXhwIjo5OTk5OTk5OTk5fQ.x".into(),
    );
    assert_error(&forged.get("/api/v1/whoami").await?, 401, None);

    // Login: bad bodies name the field; a wrong password is 401 and says nothing more.
    let login = |body: Value| web.req(Method::POST, "/api/v1/login").json(&body).send();
    assert_error(
        &json(login(serde_json::json!({"username": "ada"})).await?).await?,
        400,
        Some("password"),
    );
    assert_error(
        &json(login(serde_json::json!({"username": "", "password": "x"})).await?).await?,
        400,
        Some("username"),
    );
    assert_error(
        &json(login(serde_json::json!({"username": "ada", "password": 7})).await?).await?,
        400,
        Some("password"),
    );
    let resp = web
        .req(Method::POST, "/api/v1/login")
        .body("{not json")
        .send()
        .await?;
    assert_error(&json(resp).await?, 400, Some("body"));
    let wrong =
        json(login(serde_json::json!({"username": "ada", "password": "nope-nope"})).await?).await?;
    assert_error(&wrong, 401, None);

    let (olga, reply) = web.login(OPERATOR.0, OPERATOR.1).await?;
    assert_eq!(reply["token_type"], "Bearer");
    assert!(reply["expires_in"].as_i64().unwrap_or(0) > 0, "{reply}");
    assert_eq!(reply["roles"][0]["role"], "operator");
    let token = olga.token.clone().unwrap_or_default();
    assert!(!token.contains("ey") || token.split('.').count() == 3);
    let grant_files = hub.logs();
    for (file, text) in &grant_files {
        assert!(
            !text.contains(&token),
            "the bearer token is logged in {}",
            file.display()
        );
    }
    let (status, me) = olga.get("/api/v1/whoami").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], OPERATOR.0);
    assert_eq!(me["auth"], true);

    // The cookie the login set works for reads only.
    let resp = web
        .req(Method::POST, "/api/v1/login")
        .json(&serde_json::json!({"username": VIEWER.0, "password": VIEWER.1}))
        .send()
        .await?;
    let cookie = resp.headers()["set-cookie"].to_str()?.to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap_or_default().to_string();
    let resp = web
        .req(Method::GET, "/api/v1/whoami")
        .header("cookie", &pair)
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = web
        .req(Method::PUT, "/api/v1/state/site1/keys/by-cookie")
        .header("cookie", &pair)
        .json(&serde_json::json!({"value": "x"}))
        .send()
        .await?;
    assert_error(&json(resp).await?, 401, None);

    // Unknown endpoint and method.
    assert_error(&olga.get("/api/v1/nothing-here").await?, 404, None);
    let resp = olga.req(Method::PATCH, "/api/v1/scopes").send().await?;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Logout ends the token at once.
    let resp = olga.req(Method::POST, "/api/v1/logout").send().await?;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_error(&olga.get("/api/v1/whoami").await?, 401, None);

    // The bridge's own logs reach the logger under operator mode too (its own user may ship
    // them).
    let records = plantd_tests::eventually(Duration::from_secs(10), || async {
        let out = hub
            .admin(
                &[
                    "logs",
                    "--service",
                    "web-api",
                    "--since",
                    "5m",
                    "-o",
                    "json",
                ],
                None,
            )
            .await?;
        anyhow::ensure!(out.contains("web-api listening"), "not yet: {out}");
        Ok(out)
    })
    .await?;
    assert!(records.contains("\"service\":\"web-api\""), "{records}");
    assert!(hub.stop().await?, "plant up stopped cleanly");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_under_the_permission_matrix() -> anyhow::Result<()> {
    let hub = hub_with_people().await?;
    let web = Web::new(&hub.http_url);
    let (ada, _) = web.login(ADMIN.0, ADMIN.1).await?;
    let (olga, _) = web.login(OPERATOR.0, OPERATOR.1).await?;
    let (vic, _) = web.login(VIEWER.0, VIEWER.1).await?;

    // Services: list, info, stats, health.
    let (status, list) = vic.get("/api/v1/services").await?;
    assert_eq!(status, StatusCode::OK, "{list}");
    for name in ["echo", "state", "identity", "logger", "buses"] {
        let service = list["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .unwrap_or_else(|| panic!("{name} in {list}"));
        assert_eq!(service["health"]["status"], "healthy", "{service}");
        assert!(
            service["endpoints"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        );
    }
    let (status, info) = vic.get("/api/v1/services/echo").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["services"][0]["name"], "echo");
    let (status, stats) = vic.get("/api/v1/services/state/stats").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        stats["stats"][0]["endpoints"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{stats}"
    );
    let (status, health) = vic.get("/api/v1/services/state/health").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["instances"][0]["status"], "healthy", "{health}");
    assert!(
        health["instances"][0]["checks"]["nats"].is_object(),
        "{health}"
    );
    assert_error(
        &vic.get("/api/v1/services/no-such-service").await?,
        404,
        None,
    );
    assert_error(
        &vic.get("/api/v1/services/bad%20name").await?,
        400,
        Some("name"),
    );

    // Scopes: list; create and delete as the operator inside its scope, refused outside.
    let (status, scopes) = olga.get("/api/v1/scopes").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        scopes["scopes"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "site1")),
        "{scopes}"
    );
    let (status, made) = json(
        olga.req(Method::PUT, "/api/v1/scopes/site1.line9")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["created"], true);
    let (_, again) = json(
        olga.req(Method::PUT, "/api/v1/scopes/site1.line9")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(again["created"], false);
    assert_error(
        &json(
            olga.req(Method::PUT, "/api/v1/scopes/site2.line9")
                .send()
                .await?,
        )
        .await?,
        403,
        None,
    );
    assert_error(
        &json(
            olga.req(Method::PUT, "/api/v1/scopes/bad..scope")
                .send()
                .await?,
        )
        .await?,
        400,
        Some("scope"),
    );
    let (status, gone) = json(
        olga.req(Method::DELETE, "/api/v1/scopes/site1.line9")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(gone["existed"], true);

    // State: create only, compare-and-set through If-Match, ETag, list, delete.
    let (status, set) = olga
        .put_value("site1", "temp", "21.5", &[("if-none-match", "*")])
        .await?;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["version"], 1);
    assert_error(
        &olga
            .put_value("site1", "temp", "21.6", &[("if-none-match", "*")])
            .await?,
        409,
        None,
    );
    let (status, set) = olga
        .put_value("site1", "temp", "22", &[("if-match", "\"1\"")])
        .await?;
    assert_eq!(
        (status, set["version"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{set}"
    );
    let conflict = olga
        .put_value("site1", "temp", "23", &[("if-match", "\"1\"")])
        .await?;
    assert_error(&conflict, 409, None);
    assert!(
        conflict.1["message"]
            .as_str()
            .unwrap_or("")
            .contains("current version is 2"),
        "{}",
        conflict.1
    );
    assert_error(
        &olga
            .put_value("site1", "temp", "23", &[("if-match", "soon")])
            .await?,
        400,
        Some("if-match"),
    );
    let resp = olga
        .req(Method::GET, "/api/v1/state/site1/keys/temp")
        .send()
        .await?;
    assert_eq!(resp.headers()["etag"], "\"2\"");
    let (_, got) = json(resp).await?;
    assert_eq!(
        (got["value"].as_str(), got["version"].as_u64()),
        (Some("22"), Some(2)),
        "{got}"
    );
    assert!(
        got["modified"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{got}"
    );
    olga.put_value("site1", "dotted.key-1", "x", &[]).await?;
    let (status, page) = vic.get("/api/v1/state/site1?limit=1").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(1), "{page}");
    assert!(
        !page["next_page_token"].as_str().unwrap_or("").is_empty(),
        "{page}"
    );
    let (_, page) = vic.get("/api/v1/state/site1?prefix=temp").await?;
    assert_eq!(page["entries"][0]["key"], "temp", "{page}");
    assert_error(
        &vic.get("/api/v1/state/site1?limit=many").await?,
        400,
        Some("limit"),
    );
    assert_error(&vic.get("/api/v1/state/site1?colour=red").await?, 400, None);
    assert_error(
        &vic.get("/api/v1/state/site1/keys/missing").await?,
        404,
        None,
    );
    let resp = olga
        .req(Method::DELETE, "/api/v1/state/site1/keys/temp")
        .header("if-match", "\"1\"")
        .send()
        .await?;
    assert_error(&json(resp).await?, 409, None);
    let (status, deleted) = json(
        olga.req(Method::DELETE, "/api/v1/state/site1/keys/temp")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            deleted["existed"].as_bool(),
            deleted["last_version"].as_u64()
        ),
        (Some(true), Some(2))
    );
    assert_error(&vic.get("/api/v1/state/site1/keys/temp").await?, 404, None);

    // Bodies: too large is 413 naming the body, a wrong field is 400 naming it.
    let big = "a".repeat(1024 * 1024 + 65 * 1024);
    assert_error(
        &olga.put_value("site1", "big", &big, &[]).await?,
        413,
        Some("body"),
    );
    let resp = olga
        .req(Method::PUT, "/api/v1/state/site1/keys/k")
        .json(&serde_json::json!({"valeu": "x"}))
        .send()
        .await?;
    assert_error(&json(resp).await?, 400, Some("valeu"));

    // The matrix over HTTP: the viewer reads site1 but never writes; nobody scoped to site1
    // reads or writes site2; the server refuses, the bridge says 403 with its words.
    olga.put_value("site1", "mode", "auto", &[]).await?;
    ada.put_value("site2", "mode", "manual", &[]).await?;
    let (status, _) = vic.get("/api/v1/state/site1/keys/mode").await?;
    assert_eq!(status, StatusCode::OK);
    let refused = vic.put_value("site1", "mode", "manual", &[]).await?;
    assert_error(&refused, 403, None);
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap_or("")
            .contains("plantd.state.set.site1"),
        "{}",
        refused.1
    );
    for who in [&vic, &olga] {
        assert_error(&who.get("/api/v1/state/site2/keys/mode").await?, 403, None);
        assert_error(&who.get("/api/v1/state/site2").await?, 403, None);
        assert_error(&who.put_value("site2", "mode", "x", &[]).await?, 403, None);
        let resp = who
            .req(Method::GET, "/api/v1/state/site2/watch")
            .send()
            .await?;
        assert_error(&json(resp).await?, 403, None);
    }
    let (_, still) = ada.get("/api/v1/state/site2/keys/mode").await?;
    assert_eq!(still["value"], "manual", "nothing refused was applied");
    // A refusal is told at once, not after the request timeout.
    let started = Instant::now();
    vic.put_value("site1", "mode", "x", &[]).await?;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refusal took {:?}",
        started.elapsed()
    );

    // Requests to any subject the caller may publish to; the reply as is.
    let echo = |who: &Web, body: &str| {
        who.req(Method::POST, "/api/v1/req/plantd.echo.echo")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let (status, reply) = json(echo(&ada, r#"{"message":"over http"}"#).await?).await?;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["message"], "over http", "{reply}");
    assert_error(
        &json(echo(&vic, r#"{"message":"x"}"#).await?).await?,
        403,
        None,
    );
    assert_error(
        &json(echo(&ada, r#"{"message": 5}"#).await?).await?,
        400,
        None,
    );
    let resp = ada
        .req(Method::POST, "/api/v1/req/plantd.nobody.home")
        .body("{}")
        .send()
        .await?;
    assert_error(&json(resp).await?, 503, None);
    let resp = ada
        .req(Method::POST, "/api/v1/req/plantd.echo.slow?timeout_ms=200")
        .body(r#"{"duration_ms":2000}"#)
        .send()
        .await?;
    assert_error(&json(resp).await?, 504, None);
    let resp = ada
        .req(Method::POST, "/api/v1/req/a.*.b")
        .body("{}")
        .send()
        .await?;
    assert_error(&json(resp).await?, 400, Some("subject"));
    let resp = ada
        .req(Method::POST, "/api/v1/req/plantd.echo.echo?timeout_ms=0")
        .body("{}")
        .send()
        .await?;
    assert_error(&json(resp).await?, 400, Some("timeout_ms"));

    // Logs: an unscoped role queries; a scoped one is refused.
    let (status, logs) = ada.get("/api/v1/logs?service=state&limit=5").await?;
    assert_eq!(status, StatusCode::OK, "{logs}");
    assert!(
        logs["records"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["service"] == "state")),
        "{logs}"
    );
    assert_error(&olga.get("/api/v1/logs").await?, 403, None);
    assert_error(
        &ada.get("/api/v1/logs?since=yesterday").await?,
        400,
        Some("since"),
    );

    // Bus tail: the viewer hears site1 on the data bus, is refused site2.
    let resp = vic
        .req(Method::GET, "/api/v1/bus/data/tail?topic=site1.>")
        .send()
        .await?;
    let mut tail = SseReader::open(resp).await?;
    hub.admin(&["bus", "pub", "data", "site1.oven.temp", "42.5"], None)
        .await?;
    let event = tail.next(Duration::from_secs(5)).await?;
    assert_eq!(event.event, "message");
    let data: Value = serde_json::from_str(&event.data)?;
    assert_eq!(
        (data["topic"].as_str(), data["data"].as_str()),
        (Some("site1.oven.temp"), Some("42.5")),
        "{data}"
    );
    let resp = vic
        .req(Method::GET, "/api/v1/bus/data/tail?topic=site2.>")
        .send()
        .await?;
    assert_error(&json(resp).await?, 403, None);
    let resp = vic
        .req(Method::GET, "/api/v1/bus/data/tail?topic=a..b")
        .send()
        .await?;
    assert_error(&json(resp).await?, 400, Some("topic"));
    drop(tail);

    // Health as a stream: the first event lists every instance.
    let resp = vic.req(Method::GET, "/api/v1/health/watch").send().await?;
    let mut health = SseReader::open(resp).await?;
    let event = health.next(Duration::from_secs(10)).await?;
    assert_eq!(event.event, "health");
    let data: Value = serde_json::from_str(&event.data)?;
    assert!(
        data["services"].as_array().is_some_and(|s| s
            .iter()
            .any(|s| s["name"] == "echo" && s["status"] == "healthy")),
        "{data}"
    );
    drop(health);

    // The bridge never logged a token, seed or password.
    let seeds = identity_common::known_seeds(&hub.auth_dir(), &[]);
    for (file, text) in hub.logs() {
        for secret in [ADMIN.1, OPERATOR.1, VIEWER.1] {
            assert!(!text.contains(secret), "a password in {}", file.display());
        }
        for token in [&ada.token, &olga.token, &vic.token].into_iter().flatten() {
            assert!(
                !text.contains(token.as_str()),
                "a token in {}",
                file.display()
            );
        }
        for seed in &seeds {
            assert!(
                !text.contains(seed.as_str()),
                "a seed in {}",
                file.display()
            );
        }
    }
    assert!(hub.stop().await?, "plant up stopped cleanly");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_sees_cli_writes_within_a_second_and_resumes_without_loss() -> anyhow::Result<()>
{
    let hub = hub_with_people().await?;
    let web = Web::new(&hub.http_url);
    let (olga, _) = web.login(OPERATOR.0, OPERATOR.1).await?;
    olga.put_value("site1", "setpoint", "10", &[]).await?;
    let watch = |last: Option<String>| {
        let mut builder = olga.req(Method::GET, "/api/v1/state/site1/watch");
        if let Some(id) = last {
            builder = builder.header("last-event-id", id);
        }
        builder.send()
    };

    // from=current (default): the current value first.
    let mut events = SseReader::open(watch(None).await?).await?;
    let first = events.next(Duration::from_secs(5)).await?;
    assert_eq!(first.event, "change");
    let change: Value = serde_json::from_str(&first.data)?;
    assert_eq!(
        (change["key"].as_str(), change["value"].as_str()),
        (Some("setpoint"), Some("10"))
    );
    assert_eq!(
        first.id.as_deref(),
        Some(change["revision"].to_string().as_str())
    );

    // A write by `plant state set` shows within 1 s of its acknowledgement.
    let mut latencies = Vec::new();
    let mut last_id = None;
    for value in ["11", "12", "13"] {
        hub.admin(&["state", "set", "site1", "setpoint", value], None)
            .await?;
        let acked = Instant::now();
        let event = events.next(Duration::from_secs(5)).await?;
        let took = acked.elapsed();
        let change: Value = serde_json::from_str(&event.data)?;
        assert_eq!(change["value"], value, "{change}");
        latencies.push(took);
        last_id = event.id;
    }
    println!("plant state set -> SSE event, after the CLI's ack: {latencies:?}");
    assert!(
        latencies.iter().all(|t| *t < Duration::from_secs(1)),
        "{latencies:?}"
    );

    // Disconnect, write while away, reconnect with Last-Event-ID: exactly what was missed,
    // in order, nothing before it.
    drop(events);
    let missed = ["20", "21", "22"];
    for value in missed {
        olga.put_value("site1", "setpoint", value, &[]).await?;
    }
    let mut events = SseReader::open(watch(last_id).await?).await?;
    for value in missed {
        let event = events.next(Duration::from_secs(5)).await?;
        let change: Value = serde_json::from_str(&event.data)?;
        assert_eq!(change["value"], value, "in order, none lost: {change}");
    }
    assert!(
        events.next(Duration::from_millis(300)).await.is_err(),
        "nothing repeated"
    );
    assert_error(
        &json(
            olga.req(Method::GET, "/api/v1/state/site1/watch")
                .header("last-event-id", "ten")
                .send()
                .await?,
        )
        .await?,
        400,
        Some("last-event-id"),
    );
    assert_error(
        &json(
            olga.req(Method::GET, "/api/v1/state/site1/watch?from=yesterday")
                .send()
                .await?,
        )
        .await?,
        400,
        Some("from"),
    );
    Ok(())
}
