//! Edge sites end to end (issue #12): a hub and a site, each a real `plant up` with its own
//! nats-server, linked by a leaf node through a TCP relay this test owns.
//!
//! The site publishes telemetry at a steady rate; the link is cut for 35 s (the relay closes
//! every connection and stops listening, both servers keep running). Meanwhile the site serves
//! requests and state on its own and a person logged in earlier is authorized there by the
//! site's server; at the hub, a setpoint for the site is published and a person is revoked.
//! When the link returns: the hub holds every telemetry message exactly once and in order,
//! with catch-up timed; the setpoint reaches the site; the revoked person is refused at the
//! site; the hub's copy of the site's state has the change made offline. Counts and times are
//! printed.

mod identity_common;

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use futures::StreamExt as _;
use identity_common::{Hub, plant};
use plantd_tests::{Relay, eventually};
use tokio::time::Instant;

const OUTAGE: Duration = Duration::from_secs(35);
const TELEMETRY: &str = "plantd.bus.data.site1.line1.temp";
const EVERY: Duration = Duration::from_millis(20);

async fn connect(url: &str, creds: &std::path::Path) -> anyhow::Result<async_nats::Client> {
    Ok(plantd_shared::creds::auth_options(creds.to_path_buf())
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await?)
}

/// Every telemetry sequence number the hub's copy of the site's buses holds, in stream order.
async fn hub_copy(hub: &async_nats::Client) -> anyhow::Result<Vec<u64>> {
    let js = jetstream::new(hub.clone());
    let stream = js.get_stream("PLANTD_SITE_site1_BUS").await?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: TELEMETRY.into(),
            ..Default::default()
        })
        .await?;
    let pending = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await?;
    let mut seqs = Vec::new();
    while (seqs.len() as u64) < pending {
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .context("hub copy stalled")?
            .context("hub copy ended")??;
        let value: serde_json::Value = serde_json::from_slice(&msg.payload)?;
        seqs.push(value["seq"].as_u64().context("seq")?);
    }
    Ok(seqs)
}

/// The sequence of the last telemetry message in the hub's copy.
async fn hub_last(hub: &async_nats::Client) -> Option<u64> {
    let js = jetstream::new(hub.clone());
    let stream = js.get_stream("PLANTD_SITE_site1_BUS").await.ok()?;
    let msg = stream
        .get_last_raw_message_by_subject(TELEMETRY)
        .await
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&msg.payload).ok()?;
    value["seq"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_site_works_offline_and_the_hub_catches_up_losslessly() -> anyhow::Result<()> {
    let leaf_port = plantd_shared::nats_server::free_port()?;
    let leaf = format!("127.0.0.1:{leaf_port}");
    let hub = Hub::start(&["--no-http", "--leaf-listen", &leaf]).await?;
    let relay = Relay::start(leaf_port).await?;
    hub.create_user("olga", "olga-password-1", &["operator@site1"])
        .await?;
    hub.create_user("vic", "vic-password-12", &["viewer@site1"])
        .await?;

    let site_parent = tempfile::Builder::new().prefix("plantd-site-").tempdir()?;
    let site_dir = site_parent.path().join("site1");
    let (site_arg, hub_data) = (
        site_dir.to_str().context("UTF-8")?.to_owned(),
        hub.data_dir.to_str().context("UTF-8")?.to_owned(),
    );
    let hub_leaf = format!("nats-leaf://127.0.0.1:{}", relay.port());
    let init = hub
        .admin(
            &[
                "edge",
                "init",
                "site1",
                "--hub",
                &hub_leaf,
                "--hub-data-dir",
                &hub_data,
                "--site-dir",
                &site_arg,
            ],
            None,
        )
        .await?;
    println!("plant edge init:\n{init}");
    let site = Hub::start_in(
        site_parent,
        site_dir.clone(),
        &["--edge", "site1", "--no-http"],
    )
    .await?;
    println!("site:\n{}", site.banner);
    let agent = site.admin_creds.clone();
    let site_client = connect(&site.url, &agent).await?;
    let hub_client = connect(&hub.url, &hub.admin_creds).await?;

    // People log in through the site while the link is up (the hub's identity answers).
    let login = |user: &'static str, password: &'static str| {
        let (url, dir) = (site.url.clone(), site_arg.clone());
        async move {
            let config = tempfile::tempdir()?;
            let run = plant(
                config.path(),
                &[
                    "--server",
                    &url,
                    "login",
                    user,
                    "--password-stdin",
                    "--data-dir",
                    &dir,
                ],
                Some(&format!("{password}\n")),
            )
            .await?;
            anyhow::ensure!(run.code == 0, "login {user} at the site: {run}");
            anyhow::Ok(config)
        }
    };
    let olga = login("olga", "olga-password-1").await?;
    let vic = login("vic", "vic-password-12").await?;
    let as_person = |config: &tempfile::TempDir, args: &[&str]| {
        let mut full = vec!["--server", site.url.as_str()];
        full.extend_from_slice(args);
        let dir = config.path().to_path_buf();
        let full: Vec<String> = full.iter().map(|s| s.to_string()).collect();
        async move {
            let args: Vec<&str> = full.iter().map(String::as_str).collect();
            plant(&dir, &args, None).await
        }
    };
    let site_admin = |args: &[&str]| {
        let mut full = vec![
            "--server",
            site.url.as_str(),
            "--creds",
            agent.to_str().unwrap_or_default(),
        ];
        full.extend_from_slice(args);
        let full: Vec<String> = full.iter().map(|s| s.to_string()).collect();
        async move {
            let scratch = tempfile::tempdir()?;
            let args: Vec<&str> = full.iter().map(String::as_str).collect();
            plant(scratch.path(), &args, None).await
        }
    };
    let made = site_admin(&["scope", "create", "site1"]).await?;
    anyhow::ensure!(made.code == 0, "{made}");

    // Telemetry at a steady rate, each acknowledged by the site's data bus.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = tokio::spawn({
        let (client, stop) = (site_client.clone(), stop.clone());
        async move {
            let js = jetstream::new(client);
            let mut seq = 0u64;
            let mut ticker = tokio::time::interval(EVERY);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                ticker.tick().await;
                seq += 1;
                let body = serde_json::json!({ "seq": seq }).to_string();
                js.publish(TELEMETRY, body.into()).await?.await?;
            }
            anyhow::Ok(seq)
        }
    });
    eventually(Duration::from_secs(30), || async {
        anyhow::ensure!(
            hub_last(&hub_client).await.is_some_and(|s| s > 20),
            "no telemetry at the hub yet"
        );
        Ok(())
    })
    .await?;
    let before_cut = hub_last(&hub_client).await.unwrap_or(0);

    relay.cut();
    let cut_at = Instant::now();
    println!("link cut with {before_cut} messages at the hub");
    eventually(Duration::from_secs(10), || async {
        let status = hub.admin(&["edge", "status", "-o", "json"], None).await?;
        anyhow::ensure!(
            status.contains("\"up\": false") || !status.contains("\"up\": true"),
            "{status}"
        );
        Ok(())
    })
    .await?;

    // Offline: the site serves requests and state, and authorizes people on its own.
    let echo = site_admin(&["req", "plantd.echo.echo", r#"{"message":"offline"}"#]).await?;
    assert!(echo.code == 0 && echo.stdout.contains("offline"), "{echo}");
    let set = as_person(&olga, &["state", "set", "site1", "mode", "offline"]).await?;
    assert_eq!(set.code, 0, "olga writes site1 while offline: {set}");
    let got = as_person(&olga, &["state", "get", "site1", "mode"]).await?;
    assert!(got.code == 0 && got.stdout.contains("offline"), "{got}");
    let refused = as_person(&olga, &["state", "set", "site2", "mode", "x"]).await?;
    assert_eq!(
        refused.code, 6,
        "site2 is refused by the site's server: {refused}"
    );
    let vic_reads = as_person(&vic, &["state", "get", "site1", "mode"]).await?;
    assert_eq!(
        vic_reads.code, 0,
        "vic is still valid at the site while it is cut off: {vic_reads}"
    );
    // At the hub meanwhile: a setpoint for the site, and vic is deleted (revoked).
    let setpoint = hub
        .admin(
            &["bus", "pub", "control", "site1.oven.setpoint", "200"],
            None,
        )
        .await?;
    println!("setpoint at the hub while offline: {}", setpoint.trim());
    hub.admin(&["user", "delete", "vic"], None).await?;

    let left = OUTAGE.saturating_sub(cut_at.elapsed());
    tokio::time::sleep(left).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let published = publisher.await??;
    let during = hub_last(&hub_client).await.unwrap_or(0);
    relay.restore().await?;
    let restored_at = Instant::now();
    println!(
        "link restored after {:?}; {published} published at the site, {during} at the hub",
        cut_at.elapsed()
    );
    assert!(during < published, "the hub got nothing while cut off");

    eventually(Duration::from_secs(30), || async {
        anyhow::ensure!(hub_last(&hub_client).await == Some(published), "hub behind");
        Ok(())
    })
    .await?;
    let catch_up = restored_at.elapsed();
    let seqs = hub_copy(&hub_client).await?;
    let expected: Vec<u64> = (1..=published).collect();
    println!(
        "catch-up: {catch_up:?} after the link returned; hub holds {} of {published} messages, in order and once each: {}",
        seqs.len(),
        seqs == expected
    );
    assert_eq!(seqs, expected, "every message exactly once, in order");
    assert!(
        catch_up < Duration::from_secs(5),
        "catch-up took {catch_up:?}"
    );

    // The setpoint sent while offline reached the site.
    let site_js = jetstream::new(site_client.clone());
    let arrived = eventually(Duration::from_secs(10), || async {
        let mut stream = site_js.get_stream("PLANTD_HUB_CONTROL").await?;
        let info = stream.info().await?;
        anyhow::ensure!(info.state.messages >= 1, "no setpoint at the site yet");
        let msg = stream
            .get_last_raw_message_by_subject("plantd.bus.control.site1.oven.setpoint")
            .await?;
        Ok(String::from_utf8_lossy(&msg.payload).into_owned())
    })
    .await?;
    println!("setpoint at the site after reconnect: {arrived}");
    assert_eq!(arrived, "200");

    // The revoked person is refused at the site once it is connected again.
    let refused_at = eventually(Duration::from_secs(20), || async {
        let run = as_person(&vic, &["state", "get", "site1", "mode"]).await?;
        anyhow::ensure!(run.code != 0, "vic still accepted at the site");
        Ok(restored_at.elapsed())
    })
    .await?;
    println!("vic refused at the site {refused_at:?} after the link returned");

    // The hub's read-only copy of the site's state has the change made offline.
    let copy = eventually(Duration::from_secs(20), || async {
        let js = jetstream::new(hub_client.clone());
        let kv = js.get_key_value("plantd-site-site1").await?;
        let mut keys = kv.keys().await?;
        let mut found = Vec::new();
        while let Some(key) = keys.next().await {
            found.push(key?);
        }
        anyhow::ensure!(
            found.iter().any(|k| k == "site1.mode"),
            "site1.mode not in the hub's copy yet: {found:?}"
        );
        Ok(found)
    })
    .await?;
    println!("hub copy of site1 state: keys {copy:?}");
    let status = hub.admin(&["edge", "status"], None).await?;
    println!("plant edge status at the hub:\n{status}");
    Ok(())
}

/// A self-signed certificate for 127.0.0.1 (its own CA): `(cert, key)` paths in `dir`.
async fn self_signed(dir: &std::path::Path, name: &str) -> anyhow::Result<(String, String)> {
    let (cert, key) = plantd_tests::tls::self_signed_cert(dir, name).await?;
    Ok((
        cert.to_str().context("UTF-8")?.to_owned(),
        key.to_str().context("UTF-8")?.to_owned(),
    ))
}

/// `plant edge init SITE` at `hub` over TLS with `ca`, then `plant up --edge SITE`.
async fn tls_site(hub: &Hub, site: &str, leaf_port: u16, ca: &str) -> anyhow::Result<Hub> {
    let parent = tempfile::Builder::new().prefix("plantd-site-").tempdir()?;
    let dir = parent.path().join(site);
    let (dir_arg, hub_data) = (
        dir.to_str().context("UTF-8")?.to_owned(),
        hub.data_dir.to_str().context("UTF-8")?.to_owned(),
    );
    let url = format!("tls://127.0.0.1:{leaf_port}");
    hub.admin(
        &[
            "edge",
            "init",
            site,
            "--hub",
            &url,
            "--hub-ca",
            ca,
            "--hub-data-dir",
            &hub_data,
            "--site-dir",
            &dir_arg,
        ],
        None,
    )
    .await?;
    Hub::start_in(parent, dir, &["--edge", site, "--no-http"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_links_over_tls_only_with_the_hubs_ca() -> anyhow::Result<()> {
    let certs = tempfile::tempdir()?;
    let (cert, key) = self_signed(certs.path(), "hub").await?;
    let (other_ca, _) = self_signed(certs.path(), "other").await?;
    let leaf_port = plantd_shared::nats_server::free_port()?;
    let leaf = format!("127.0.0.1:{leaf_port}");
    let hub = Hub::start(&[
        "--no-http",
        "--leaf-listen",
        &leaf,
        "--leaf-tls-cert",
        &cert,
        "--leaf-tls-key",
        &key,
    ])
    .await?;
    let good = tls_site(&hub, "plant-a", leaf_port, &cert).await?;
    let bad = tls_site(&hub, "plant-b", leaf_port, &other_ca).await?;
    let status = eventually(Duration::from_secs(20), || async {
        let status = hub.admin(&["edge", "status"], None).await?;
        let a_up = status
            .lines()
            .any(|l| l.starts_with("plant-a") && l.contains(" up "));
        let b_seen = status.lines().any(|l| l.starts_with("plant-b"));
        anyhow::ensure!(
            a_up && b_seen,
            "plant-a not linked or plant-b not watched yet:\n{status}"
        );
        Ok(status)
    })
    .await?;
    println!("over TLS:\n{status}");
    // Give plant-b every chance to link (it retries each second) before judging it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = hub.admin(&["edge", "status"], None).await?;
    let b: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("plant-b"))
        .collect();
    assert!(
        !b.is_empty() && b.iter().all(|l| l.contains(" down ")),
        "a site that does not trust the hub's certificate never links:\n{status}"
    );
    let log = std::fs::read_to_string(bad.data_dir.join("nats").join("nats-server.log"))?;
    assert!(
        log.contains("certificate"),
        "the refused site says why:\n{log}"
    );
    drop(good);
    Ok(())
}
