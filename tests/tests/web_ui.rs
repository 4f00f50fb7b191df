//! The web UI in a real browser: headless Chromium (Debian's, driven through chromedriver by
//! `tests/browser/ui_test.mjs`) against a real `plant up`. The browser logs in, sees echo and
//! state healthy, edits a key, sees the key change live when `plant state set` writes it, and
//! sees the version conflict when it saves its stale editor. Screenshots land in
//! `<target>/tmp/web-ui-shots/` (the test prints the path).

mod identity_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use identity_common::Hub;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// Longest the whole browser run may take.
const BROWSER_DEADLINE: Duration = Duration::from_secs(150);

const SCOPE: &str = "site1";
const KEY: &str = "line.a/speed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_logs_in_edits_and_follows_live_changes_in_chromium() -> anyhow::Result<()> {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        anyhow::ensure!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: run `bash deploy/install-deps.sh` (it installs chromium and chromium-driver)"
        );
    }
    let hub = Hub::start(&[]).await?;
    hub.create_user("olga", "olga-password-1", &["operator@site1"])
        .await?;
    hub.admin(&["scope", "create", SCOPE], None).await?;
    hub.admin(&["state", "set", SCOPE, KEY, "100"], None)
        .await?;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-ui-shots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots)?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/ui_test.mjs");

    let mut browser = tokio::process::Command::new("node")
        .arg(&script)
        .args([
            "--url",
            &hub.http_url,
            "--user",
            "olga",
            "--password",
            "olga-password-1",
        ])
        .args(["--scope", SCOPE, "--key", KEY])
        .arg("--shots")
        .arg(&shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run node (Node.js 20 is part of the machine)")?;
    let mut stdin = browser.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(browser.stdout.take().context("stdout")?).lines();
    let mut markers = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await? {
            println!("browser: {line}");
            if line == "READY-FOR-CLI-WRITE" {
                let value = format!("from-cli-{}", std::process::id());
                let started = Instant::now();
                hub.admin(&["state", "set", SCOPE, KEY, &value], None)
                    .await?;
                println!("plant state set took {:?}", started.elapsed());
                stdin
                    .write_all(format!("WRITTEN {value}\n").as_bytes())
                    .await?;
                stdin.flush().await?;
            }
            markers.push(line);
        }
        anyhow::Ok(browser.wait().await?)
    };
    let status = tokio::time::timeout(BROWSER_DEADLINE, run)
        .await
        .context("the browser test did not finish in time")??;
    println!("screenshots: {}", shots.display());
    anyhow::ensure!(
        status.success(),
        "ui_test.mjs failed ({status}); markers: {markers:?}"
    );
    for expected in [
        "SERVICES-HEALTHY",
        "EDITED ",
        "LIVE from-cli-",
        "CONFLICT-SHOWN",
        "DONE",
    ] {
        anyhow::ensure!(
            markers.iter().any(|m| m.starts_with(expected)),
            "no {expected:?} in {markers:?}"
        );
    }
    let live_ms: u64 = markers
        .iter()
        .find_map(|m| m.strip_prefix("LIVE "))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|ms| ms.trim_end_matches("ms").parse().ok())
        .context("LIVE line has its latency")?;
    anyhow::ensure!(live_ms < 1000, "the CLI's write showed after {live_ms} ms");
    for shot in [
        "01-login.png",
        "02-services.png",
        "03-edited.png",
        "04-conflict.png",
    ] {
        let size = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        anyhow::ensure!(size > 1000, "screenshot {shot} missing or empty");
    }
    assert!(hub.stop().await?, "plant up stopped cleanly");
    Ok(())
}
