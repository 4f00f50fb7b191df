//! `plantd-web-api` run alone against an existing hub (one started with `plant up --no-auth
//! --no-http`), over HTTPS (rustls, a certificate made by openssl for this test): the open
//! hub's anonymous session, its state endpoints, CORS for the one configured origin only,
//! plain HTTP refused on the TLS port, and a graceful stop with a live stream open.

mod identity_common;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use identity_common::Hub;
use plantd_tests::{ChildProcess, Signal, bin_path};

/// A `curl` over HTTPS trusting only `ca`; returns status and body.
async fn curl(ca: &std::path::Path, args: &[&str]) -> anyhow::Result<(u16, String)> {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .context("curl runs")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    Ok((code.trim().parse().unwrap_or(0), body.to_string()))
}

/// The one origin the bridge is configured to allow (CORS).
const HMI: &str = "https://hmi.plant.example";

/// The response headers (lowercase names) of a `curl` over HTTPS trusting only `ca`.
async fn curl_headers(ca: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--cacert",
        ])
        .arg(ca)
        .args(args)
        .output()
        .await
        .context("curl runs")?;
    Ok(String::from_utf8_lossy(&out.stdout).to_ascii_lowercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alone_over_tls_against_an_open_hub() -> anyhow::Result<()> {
    let hub = Hub::start(&["--no-auth", "--no-http"]).await?;
    assert!(
        hub.http_url.is_empty(),
        "--no-http starts no bridge:\n{}",
        hub.banner
    );
    let dir = tempfile::tempdir()?;
    let (cert, key) = plantd_tests::tls::self_signed_cert(dir.path(), "cert").await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut bridge = ChildProcess::spawn(
        bin_path("plantd-web-api"),
        [
            "--set".to_string(),
            format!("nats_url={}", hub.url),
            "--set".into(),
            format!("listen=127.0.0.1:{port}"),
            "--set".into(),
            format!("tls_cert={}", cert.display()),
            "--set".into(),
            format!("tls_key={}", key.display()),
            "--set".into(),
            "shutdown_grace_ms=2000".into(),
            "--set".into(),
            format!("cors_allowed_origins={HMI}"),
        ],
        [("RUST_LOG", "info")],
    )?;
    let base = format!("https://127.0.0.1:{port}");
    plantd_tests::eventually(Duration::from_secs(15), || {
        let url = format!("{base}/healthz");
        let cert = cert.clone();
        async move {
            let (code, body) = curl(&cert, &[&url]).await?;
            anyhow::ensure!(code == 200, "healthz {code} {body}");
            Ok(())
        }
    })
    .await
    .with_context(|| format!("bridge not healthy; stderr:\n{}", bridge.stderr()))?;

    // The open hub: no login, everyone is the anonymous admin.
    let (code, body) = curl(&cert, &[&format!("{base}/api/v1/whoami")]).await?;
    assert_eq!(code, 200, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(
        (me["username"].as_str(), me["auth"].as_bool()),
        (Some("anonymous"), Some(false))
    );
    let login = format!("{base}/api/v1/login");
    let (code, body) = curl(
        &cert,
        &[
            "-X",
            "POST",
            "-d",
            r#"{"username":"a","password":"b"}"#,
            &login,
        ],
    )
    .await?;
    assert_eq!(code, 404, "{body}");
    let (code, body) = curl(
        &cert,
        &["-X", "PUT", &format!("{base}/api/v1/scopes/plant1")],
    )
    .await?;
    assert_eq!(code, 200, "{body}");
    let key_url = format!("{base}/api/v1/state/plant1/keys/mode");
    let (code, body) = curl(&cert, &["-X", "PUT", "-d", r#"{"value":"auto"}"#, &key_url]).await?;
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&cert, &[&key_url]).await?;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""value":"auto""#), "{body}");

    // CORS: the configured origin may call (a preflight for a write with the bearer header is
    // answered; a read carries the allow-origin), any other origin gets no CORS grant.
    let preflight = |origin: &'static str| {
        let (cert, key_url) = (cert.clone(), key_url.clone());
        async move {
            curl_headers(
                &cert,
                &[
                    "-X",
                    "OPTIONS",
                    "-H",
                    &format!("origin: {origin}"),
                    "-H",
                    "access-control-request-method: PUT",
                    "-H",
                    "access-control-request-headers: authorization, content-type, if-match",
                    &key_url,
                ],
            )
            .await
        }
    };
    let granted = preflight(HMI).await?;
    assert!(
        granted.starts_with("http/") && granted.contains(" 200"),
        "{granted}"
    );
    assert!(
        granted.contains(&format!("access-control-allow-origin: {HMI}")),
        "{granted}"
    );
    assert!(
        granted.contains("access-control-allow-methods:"),
        "{granted}"
    );
    assert!(
        granted.contains("authorization") && granted.contains("if-match"),
        "{granted}"
    );
    let read = curl_headers(&cert, &["-H", &format!("origin: {HMI}"), &key_url]).await?;
    assert!(
        read.contains(&format!("access-control-allow-origin: {HMI}"))
            && read.contains("access-control-expose-headers:")
            && read.contains("etag"),
        "{read}"
    );
    for foreign in [
        preflight("https://elsewhere.example").await?,
        curl_headers(
            &cert,
            &["-H", "origin: https://elsewhere.example", &key_url],
        )
        .await?,
    ] {
        assert!(
            !foreign.contains("access-control-allow-origin"),
            "a foreign origin gets no CORS grant:\n{foreign}"
        );
    }

    // Plain HTTP on the TLS port gets no answer.
    let (code, _) = curl(&cert, &[&format!("http://127.0.0.1:{port}/healthz")]).await?;
    assert_eq!(code, 0, "plain HTTP is not served on the TLS port");

    // SIGTERM with a live stream open: the stream ends, the bridge exits 0 within its grace.
    let mut stream = tokio::process::Command::new("curl")
        .args(["-sS", "-N", "--max-time", "30", "--cacert"])
        .arg(&cert)
        .arg(format!("{base}/api/v1/state/plant1/watch"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = Instant::now();
    bridge.signal(Signal::SIGTERM)?;
    let status = bridge.wait_with_deadline(Duration::from_secs(10)).await;
    println!("bridge stopped in {:?}: {status:?}", stopping.elapsed());
    assert!(
        status.is_some_and(|s| s.success()),
        "stderr:\n{}",
        bridge.stderr()
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "the open stream did not hold up the stop"
    );
    let streamed = tokio::time::timeout(Duration::from_secs(5), stream.wait())
        .await
        .context("the stream ended with the bridge")??;
    println!("stream client exited with {streamed}");
    Ok(())
}
