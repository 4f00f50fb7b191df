//! `plant state …` and `plant scope …` driven as a user would: the real `plant` binary against a
//! real `plantd-state` on a real nats-server, checking stdout, stderr and exit codes.
//!
//! Each test owns its nats-server, its state service and their directories. Readiness is polled:
//! the service answers `$SRV.PING.state` and its KV bucket exists; a `plant state watch` is ready
//! once it says "watching" on stderr (printed after its consumer exists).

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use plantd_tests::{ChildProcess, NatsServer, bin_path, eventually};
use serde_json::Value;
use tempfile::TempDir;

/// How long a test waits for readiness or for a child to finish.
const DEADLINE: Duration = Duration::from_secs(30);
/// The state service's default KV bucket.
const BUCKET: &str = "plantd-state";

/// A nats-server plus a `plantd-state`, ready to serve.
struct Plant {
    nats: NatsServer,
    state: ChildProcess,
    _data: TempDir,
}

impl Plant {
    async fn start() -> anyhow::Result<Plant> {
        let nats = NatsServer::start().await?;
        let data = tempfile::tempdir()?;
        let mut state = ChildProcess::spawn(
            bin_path("plantd-state"),
            [
                "--set".to_owned(),
                format!("nats_url={}", nats.url()),
                "--set".to_owned(),
                format!("data_dir={}", data.path().display()),
            ],
            [("RUST_LOG", "warn")],
        )?;
        let client = nats.client().await;
        let js = jetstream::new(client.clone());
        let ready = eventually(DEADLINE, || {
            let (client, js) = (client.clone(), js.clone());
            async move {
                client.request("$SRV.PING.state", "".into()).await?;
                js.get_key_value(BUCKET).await?;
                anyhow::Ok(())
            }
        })
        .await;
        if let Err(err) = ready {
            let running = state.is_running();
            anyhow::bail!(
                "plantd-state not ready (running: {running}): {err:#}\nstderr:\n{}",
                state.stderr()
            );
        }
        Ok(Plant {
            nats,
            state,
            _data: data,
        })
    }

    /// The arguments every `plant` run starts with.
    fn global(&self, json: bool) -> Vec<String> {
        let mut args = vec![
            "--server".to_owned(),
            self.nats.url(),
            "--timeout".to_owned(),
            "10s".to_owned(),
        ];
        if json {
            args.extend(["--output".to_owned(), "json".to_owned()]);
        }
        args
    }

    /// Runs `plant` with table output and optional stdin.
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.exec(false, args, stdin).await
    }

    /// Runs `plant` and expects success; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args, None).await;
        assert_success(&output, args);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `plant -o json` and expects success; returns the parsed stdout.
    async fn json(&self, args: &[&str]) -> Value {
        let output = self.exec(true, args, None).await;
        assert_success(&output, args);
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("plant {args:?}: stdout is not JSON: {err}: {output:?}"))
    }

    /// Runs `plant` and expects exit code 1; returns stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args, None).await;
        assert_eq!(
            output.status.code(),
            Some(1),
            "plant {args:?} should exit 1: {output:?}"
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    async fn exec(&self, json: bool, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = plantd_tests::plant_command(self.global(json));
        command.args(args);
        plantd_tests::run_to_end(command, stdin, DEADLINE)
            .await
            .unwrap_or_else(|err| panic!("plant {args:?}: {err:#}"))
    }

    /// Starts `plant -o json state watch …` in the background and waits until it watches.
    async fn watch(&self, args: &[&str]) -> anyhow::Result<ChildProcess> {
        let mut all = self.global(true);
        all.extend(["state".to_owned(), "watch".to_owned()]);
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let mut child = ChildProcess::spawn(bin_path("plant"), all, [("RUST_LOG", "warn")])?;
        eventually(DEADLINE, || {
            let ready = child.stderr().contains("watching");
            let running = child.is_running();
            let stderr = child.stderr();
            async move {
                anyhow::ensure!(running || ready, "watch exited early: {stderr}");
                anyhow::ensure!(ready, "not watching yet");
                Ok(())
            }
        })
        .await?;
        Ok(child)
    }
}

fn assert_success(output: &Output, args: &[&str]) {
    assert!(
        output.status.success(),
        "plant {args:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits for a background `plant` to exit 0 and returns its JSON lines.
async fn json_lines(child: &mut ChildProcess) -> anyhow::Result<Vec<Value>> {
    let status = child
        .wait_with_deadline(DEADLINE)
        .await
        .with_context(|| format!("plant still running; stdout: {}", child.stdout()))?;
    anyhow::ensure!(
        status.success(),
        "plant exited with {status}: {}",
        child.stderr()
    );
    child
        .stdout()
        .lines()
        .map(|line| serde_json::from_str(line).with_context(|| format!("not JSON: {line:?}")))
        .collect()
}

fn write_file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("temp file written");
    path.display().to_string()
}

#[tokio::test]
async fn set_get_delete_with_cas_and_every_value_source() -> anyhow::Result<()> {
    let plant = Plant::start().await?;
    let out = plant.ok(&["scope", "create", "site1.oven"]).await;
    assert!(out.contains("site1.oven") && out.contains("true"), "{out}");

    // From an argument; the output carries the new version.
    let set = plant
        .json(&["state", "set", "site1.oven", "temp", "21.5"])
        .await;
    assert_eq!(set["version"], 1, "{set}");
    assert!(set["modified"].as_str().is_some_and(|m| m.ends_with('Z')));

    // From a file: bytes kept exactly, trailing newline included.
    let files = tempfile::tempdir()?;
    let config = "{\n  \"setpoint\": 180\n}\n";
    let path = write_file(files.path(), "recipe.json", config);
    plant
        .ok(&["state", "set", "site1.oven", "recipe", &format!("@{path}")])
        .await;
    let raw = plant
        .ok(&["state", "get", "site1.oven", "recipe", "--raw"])
        .await;
    assert_eq!(raw, config);

    // From stdin, both implicit and with `-`; a key with dots, spaces and non-ASCII.
    let odd_key = "line 2.Grüße/€ 🌡";
    let output = plant
        .run(
            &["state", "set", "site1.oven", odd_key],
            Some("from stdin ü"),
        )
        .await;
    assert_success(&output, &["state", "set", "<odd key>"]);
    let got = plant.json(&["state", "get", "site1.oven", odd_key]).await;
    assert_eq!(got["key"], odd_key);
    assert_eq!(got["value"], "from stdin ü");
    assert_eq!(got["version"], 1);
    let output = plant
        .run(&["state", "set", "site1.oven", odd_key, "-"], Some("again"))
        .await;
    assert_success(&output, &["state", "set", "<odd key>", "-"]);
    let got = plant.json(&["state", "get", "site1.oven", odd_key]).await;
    assert_eq!(
        (&got["value"], &got["version"]),
        (&"again".into(), &2.into())
    );

    // Table output: headers, the value and an RFC 3339 timestamp.
    let table = plant.ok(&["state", "get", "site1.oven", "temp"]).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["KEY", "VALUE", "VERSION", "MODIFIED"]);
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..3], ["temp", "21.5", "1"], "{table}");
    assert!(row[3].contains('T') && row[3].ends_with('Z'), "{table}");

    // Compare-and-set: a stale version is a 409 and changes nothing; the right one wins.
    let err = plant
        .fails(&[
            "state",
            "set",
            "site1.oven",
            "temp",
            "99",
            "--expected-version",
            "5",
        ])
        .await;
    assert!(err.starts_with("error: 409"), "{err}");
    let set = plant
        .json(&[
            "state",
            "set",
            "site1.oven",
            "temp",
            "22",
            "--expected-version",
            "1",
        ])
        .await;
    assert_eq!(set["version"], 2);
    let err = plant
        .fails(&["state", "set", "site1.oven", "temp", "0", "--create-only"])
        .await;
    assert!(err.contains("409"), "{err}");
    let got = plant.json(&["state", "get", "site1.oven", "temp"]).await;
    assert_eq!((&got["value"], &got["version"]), (&"22".into(), &2.into()));

    // Delete, with a stale CAS first; then the key is a 404.
    let err = plant
        .fails(&[
            "state",
            "delete",
            "site1.oven",
            "temp",
            "--expected-version",
            "1",
        ])
        .await;
    assert!(err.contains("409"), "{err}");
    let deleted = plant.json(&["state", "delete", "site1.oven", "temp"]).await;
    assert_eq!(deleted["existed"], true);
    assert_eq!(deleted["last_version"], 2);
    let err = plant.fails(&["state", "get", "site1.oven", "temp"]).await;
    assert!(err.starts_with("error: 404"), "{err}");
    assert!(err.contains("temp"), "{err}");

    // Bad input is refused before anything is sent.
    let output = plant.run(&["state", "get", "site1.>", "k"], None).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid scope"));
    let output = plant
        .run(&["state", "set", "site1.oven", "k", "@/no/such/file"], None)
        .await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("/no/such/file"));
    Ok(())
}

#[tokio::test]
async fn list_pages_and_all() -> anyhow::Result<()> {
    let plant = Plant::start().await?;
    plant.ok(&["scope", "create", "plant.line"]).await;
    let keys = ["k1", "k2", "k3", "k4", "k5"];
    for (i, key) in keys.iter().enumerate() {
        plant
            .ok(&["state", "set", "plant.line", key, &format!("v{i}")])
            .await;
    }
    plant
        .ok(&["state", "set", "plant.line", "other", "x"])
        .await;

    let key_list = |page: &Value| -> Vec<String> {
        page["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["key"].as_str().expect("key").to_owned())
            .collect()
    };
    let first = plant
        .json(&[
            "state",
            "list",
            "plant.line",
            "--prefix",
            "k",
            "--limit",
            "2",
        ])
        .await;
    assert_eq!(key_list(&first), ["k1", "k2"]);
    let token = first["next_page_token"].as_str().expect("a next page");
    let second = plant
        .json(&[
            "state",
            "list",
            "plant.line",
            "--prefix",
            "k",
            "--limit",
            "2",
            "--page-token",
            token,
        ])
        .await;
    assert_eq!(key_list(&second), ["k3", "k4"]);

    let all = plant
        .json(&[
            "state",
            "list",
            "plant.line",
            "--prefix",
            "k",
            "--limit",
            "2",
            "--all",
        ])
        .await;
    assert_eq!(key_list(&all), keys);
    assert!(all["next_page_token"].is_null(), "{all}");
    assert_eq!(all["entries"][4]["value"], "v4");

    // Table mode: rows on stdout, the next token as a hint on stderr.
    let output = plant
        .run(&["state", "list", "plant.line", "--limit", "2"], None)
        .await;
    assert_success(&output, &["state", "list", "--limit", "2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--page-token "),
        "{output:?}"
    );
    let output = plant.run(&["state", "list", "plant.line"], None).await;
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 7);
    assert!(output.stderr.is_empty(), "{output:?}");
    Ok(())
}

#[tokio::test]
async fn scopes_create_list_delete() -> anyhow::Result<()> {
    let plant = Plant::start().await?;
    plant.ok(&["scope", "create", "site1"]).await;
    plant.ok(&["scope", "create", "site1.line2"]).await;
    let again = plant.json(&["scope", "create", "site1"]).await;
    assert_eq!(again["created"], false);
    for key in ["a", "b"] {
        plant.ok(&["state", "set", "site1", key, "1"]).await;
    }
    plant.ok(&["state", "set", "site1.line2", "c", "1"]).await;

    let scopes = plant.json(&["scope", "list"]).await;
    let counts: Vec<(String, u64)> = scopes
        .as_array()
        .expect("an array of scopes")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["keys"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [("site1".to_owned(), 2), ("site1.line2".to_owned(), 1)]
    );
    let table = plant.ok(&["scope", "list"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "KEYS", "CREATED"]);
    assert!(table.contains("site1.line2"), "{table}");

    let deleted = plant.json(&["scope", "delete", "site1"]).await;
    assert_eq!(deleted["deleted_keys"], 2, "{deleted}");
    let table = plant.ok(&["scope", "delete", "site1.line2"]).await;
    assert!(
        table.lines().nth(1).is_some_and(|row| row.ends_with(" 1")),
        "{table}"
    );
    let scopes = plant.json(&["scope", "list"]).await;
    assert_eq!(scopes, serde_json::json!([]));
    let err = plant.fails(&["state", "get", "site1", "a"]).await;
    assert!(err.contains("404"), "{err}");
    Ok(())
}

#[tokio::test]
async fn watch_streams_changes_in_order() -> anyhow::Result<()> {
    let plant = Plant::start().await?;
    plant.ok(&["scope", "create", "site1.oven"]).await;
    plant
        .ok(&["state", "set", "site1.oven", "before", "old"])
        .await;

    let mut watch = plant.watch(&["site1.oven", "--count", "3"]).await?;
    let changes = [("t.1", "a"), ("zone 2 ü", "b b"), ("t.1", "c\nd")];
    for (key, value) in changes {
        plant.ok(&["state", "set", "site1.oven", key, value]).await;
    }
    let lines = json_lines(&mut watch).await?;
    let seen: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["op"].as_str().unwrap_or(""),
                l["key"].as_str().unwrap_or(""),
                l["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        changes.map(|(k, v)| ("put", k, v)),
        "only changes after the start, in order"
    );
    let revisions: Vec<u64> = lines
        .iter()
        .filter_map(|l| l["revision"].as_u64())
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert!(lines.iter().all(|l| l["scope"] == "site1.oven"));

    // --history starts with the current values (one per key), then goes on.
    let mut history = plant
        .watch(&["site1.oven", "--history", "--count", "3"])
        .await?;
    let lines = json_lines(&mut history).await?;
    let mut current: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["key"].as_str().unwrap_or(""),
                l["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    current.sort();
    assert_eq!(
        current,
        [("before", "old"), ("t.1", "c\nd"), ("zone 2 ü", "b b")]
    );

    // A delete is a change too; --from-version replays from a bucket revision.
    let mut deletes = plant.watch(&["site1.oven", "--count", "1"]).await?;
    plant.ok(&["state", "delete", "site1.oven", "before"]).await;
    let lines = json_lines(&mut deletes).await?;
    assert_eq!(
        (&lines[0]["op"], &lines[0]["key"]),
        (&"delete".into(), &"before".into())
    );
    let first = revisions[0].to_string();
    let mut replay = plant
        .watch(&["site1.oven", "--from-version", &first, "--count", "2"])
        .await?;
    let lines = json_lines(&mut replay).await?;
    assert_eq!(lines[0]["revision"].as_u64(), Some(revisions[0]));
    assert_eq!(lines[1]["key"], "zone 2 ü");
    Ok(())
}

#[tokio::test]
async fn watch_table_lines_and_time_limit() -> anyhow::Result<()> {
    let plant = Plant::start().await?;
    plant.ok(&["scope", "create", "site2"]).await;
    plant.ok(&["scope", "create", "site2.sub"]).await;
    plant.ok(&["state", "set", "site2", "a b", "x y"]).await;
    plant.ok(&["state", "set", "site2.sub", "k", "v"]).await;

    // Table lines, one per change, with ambiguous cells quoted; --subtree reaches sub-scopes.
    let out = plant
        .ok(&[
            "state",
            "watch",
            "site2",
            "--subtree",
            "--history",
            "--count",
            "2",
        ])
        .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "REV OP SCOPE KEY VALUE");
    assert!(lines[1].ends_with(" put site2 \"a b\" \"x y\""), "{out}");
    assert!(lines[2].ends_with(" put site2.sub k v"), "{out}");

    // --for ends a quiet watch with success; --prefix filters.
    let out = plant
        .ok(&[
            "state",
            "watch",
            "site2",
            "--history",
            "--prefix",
            "zzz",
            "--for",
            "300ms",
        ])
        .await;
    assert_eq!(out, "REV OP SCOPE KEY VALUE\n");
    Ok(())
}

#[tokio::test]
async fn no_state_service_is_exit_4() -> anyhow::Result<()> {
    let mut plant = Plant::start().await?;
    plant.state.kill()?;
    let client = plant.nats.client().await;
    eventually(DEADLINE, || {
        let client = client.clone();
        async move {
            match client.request("$SRV.PING.state", "".into()).await {
                Ok(_) => anyhow::bail!("state still answers"),
                Err(_) => Ok(()),
            }
        }
    })
    .await?;
    let output = plant.run(&["state", "get", "site1", "k"], None).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no responders"));
    Ok(())
}
