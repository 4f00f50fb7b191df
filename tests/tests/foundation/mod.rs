//! What the foundation end-to-end tests (`echo`, `echo_drain`, `discovery`, `plant_up`,
//! `thirdparty`) share: starting the real service binaries against a harness nats-server,
//! waiting until a given number of instances answer discovery, and gathering the replies of a
//! request that every instance answers (`$SRV.*`), which `Client::request` cannot do since it
//! returns the first.
//!
//! Each test binary includes this module with `mod foundation;` and uses a different subset
//! of it, hence the `dead_code` allowance. (`micro_schema.rs` beside it is included by
//! `discovery.rs` alone.)
#![allow(dead_code)]

pub mod bus_service;

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::{Client, Message};
use futures::StreamExt as _;
use plantd_tests::{ChildProcess, NatsServer, bin_path, eventually};
use tokio::time::Instant;

/// Patience for anything that should happen "soon" (a service answering its first PING, a
/// process exiting after a signal). Generous because CI machines are loaded; a passing test
/// never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How long [`gather`] keeps listening after the expected number of replies arrived, to catch
/// replies that should not exist (a fourth instance, a duplicate answer).
pub const QUIET: Duration = Duration::from_millis(150);

/// Starts one `plantd-echo` connected to `server`, with extra `--set name=value` settings.
/// Does not wait for it to answer; see [`wait_for_instances`].
pub fn spawn_echo(server: &NatsServer, settings: &[(&str, &str)]) -> anyhow::Result<ChildProcess> {
    spawn_service("plantd-echo", &server.url(), settings)
}

/// Starts one service `binary` connected to `url`, with `--set name=value` settings (creds,
/// data dir, …). Does not wait for it to answer; see [`wait_for_instances`].
pub fn spawn_service(
    binary: &str,
    url: &str,
    settings: &[(&str, &str)],
) -> anyhow::Result<ChildProcess> {
    let mut args = vec!["--set".to_owned(), format!("nats_url={url}")];
    for (name, value) in settings {
        args.push("--set".to_owned());
        args.push(format!("{name}={value}"));
    }
    ChildProcess::spawn(bin_path(binary), args, no_env())
}

/// Starts one `plantd-state` connected to `server`, keeping its SQLite database in `data_dir`.
pub fn spawn_state(server: &NatsServer, data_dir: &Path) -> anyhow::Result<ChildProcess> {
    ChildProcess::spawn(
        bin_path("plantd-state"),
        [
            "--set".to_owned(),
            format!("nats_url={}", server.url()),
            "--set".to_owned(),
            format!("data_dir={}", data_dir.display()),
        ],
        no_env(),
    )
}

/// An empty set of extra environment variables, typed for [`ChildProcess::spawn`].
pub fn no_env() -> [(&'static str, &'static str); 0] {
    []
}

/// Publishes one request to `subject` and collects every reply: until `expected` replies
/// arrived and then [`QUIET`] passed without another, or until `wait` ran out. The server's
/// `no responders` status message is not a reply: with nobody subscribed the result is empty.
pub async fn gather(
    client: &Client,
    subject: &str,
    payload: &'static str,
    expected: usize,
    wait: Duration,
) -> anyhow::Result<Vec<Message>> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(subject.to_owned(), inbox, payload.into())
        .await?;
    client.flush().await?;
    let mut got = Vec::new();
    let mut deadline = Instant::now() + wait;
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, replies.next()).await {
        if message.status.is_some() {
            // The server's "no responders" status (503): nobody is subscribed.
            continue;
        }
        got.push(message);
        if got.len() == expected {
            deadline = deadline.min(Instant::now() + QUIET);
        }
    }
    Ok(got)
}

/// The JSON bodies of every reply to `subject` (see [`gather`]).
pub async fn gather_json(
    client: &Client,
    subject: &str,
    expected: usize,
) -> anyhow::Result<Vec<serde_json::Value>> {
    gather(client, subject, "", expected, Duration::from_secs(2))
        .await?
        .iter()
        .map(|message| {
            serde_json::from_slice(&message.payload).with_context(|| {
                format!(
                    "reply to {subject} is not JSON: {:?}",
                    String::from_utf8_lossy(&message.payload)
                )
            })
        })
        .collect()
}

/// Waits until exactly `count` instances of `service` answer `$SRV.PING.<service>`, failing
/// early (with its stderr) if one of `children` exits. Returns the PING replies.
pub async fn wait_for_instances(
    client: &Client,
    service: &str,
    count: usize,
    children: &mut [&mut ChildProcess],
) -> anyhow::Result<Vec<serde_json::Value>> {
    let subject = format!("$SRV.PING.{service}");
    let result = eventually(DEADLINE, || {
        let exited: Vec<String> = children
            .iter_mut()
            .filter_map(|child| {
                child.try_wait().map(|status| {
                    format!(
                        "pid {} exited with {status}; stderr:\n{}",
                        child.pid(),
                        child.stderr()
                    )
                })
            })
            .collect();
        let subject = subject.clone();
        async move {
            if !exited.is_empty() {
                // Not worth retrying: report at once.
                return Ok(Err(anyhow::anyhow!("{}", exited.join("\n"))));
            }
            let pings = gather(client, &subject, "", count, Duration::from_millis(500)).await?;
            anyhow::ensure!(
                pings.len() == count,
                "{} of {count} {service} instances answer {subject}",
                pings.len()
            );
            pings
                .iter()
                .map(|m| serde_json::from_slice(&m.payload).context("PING reply is not JSON"))
                .collect::<anyhow::Result<Vec<serde_json::Value>>>()
                .map(Ok)
        }
    })
    .await;
    match result {
        Ok(Ok(pings)) => Ok(pings),
        Ok(Err(exited)) => Err(exited),
        Err(err) => {
            let stderr: Vec<String> = children.iter().map(|c| c.stderr()).collect();
            Err(err.context(format!(
                "{service} instances not ready; their stderr:\n{}",
                stderr.join("\n---\n")
            )))
        }
    }
}

/// The value of header `name` in a reply, if present.
pub fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(name))
        .map(|value| value.as_str())
}

/// The JSON body of a reply.
///
/// # Panics
///
/// If the body is not JSON, with the body in the message.
pub fn json_body(message: &Message) -> serde_json::Value {
    serde_json::from_slice(&message.payload).unwrap_or_else(|err| {
        panic!(
            "reply body is not JSON ({err}): {:?}",
            String::from_utf8_lossy(&message.payload)
        )
    })
}

/// The `instance` an echo reply names for an echo child process (`pid-<pid>`).
pub fn instance_of(child: &ChildProcess) -> String {
    format!("pid-{}", child.pid())
}

/// What one `plant` run (no `PLANTD_*` environment, 30 s at most) printed.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub async fn plant(args: &[&str]) -> anyhow::Result<Run> {
    let command = plantd_tests::plant_command(args);
    let output = plantd_tests::run_to_end(command, None, Duration::from_secs(30)).await?;
    Ok(Run {
        ok: output.status.success(),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}
