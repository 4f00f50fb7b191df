//! Stopping a service under load, in operator mode with the creds `plant up` issues: the
//! runtime's promise that every request gets exactly one reply holds while an instance drains.
//!
//! Each run starts two instances of a service in one queue group (the one that stops uses the
//! issued creds, exactly as `plant up` runs it), keeps 64 requests in flight from 64 callers,
//! sends SIGTERM to one instance and keeps the load going until it has exited. Every request
//! must be answered with a success, and the stopping instance's final totals (its log line
//! "endpoint totals at stop") must match what the callers received from it. A second run of
//! each pauses the load for 300 ms right after the signal, so the drain sees a lull (an
//! earlier runtime ended its subscription after 250 ms without requests and lost what the
//! server routed to it afterwards). A last test stops the only instance: what it does not
//! answer, the server refuses at once.

mod foundation;
mod identity_common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::Client;
use foundation::{instance_of, spawn_service, wait_for_instances};
use identity_common::{Hub, connect_with_events};
use plantd_schemas::echo::v1::{SlowReply, SlowRequest};
use plantd_schemas::state::v1::{SetRequest, SetResponse};
use plantd_shared::call::{self, CallError};
use plantd_shared::codec::Encoding;
use plantd_tests::{ChildProcess, Signal};
use tokio::task::JoinHandle;

/// Concurrent callers, each with one request outstanding at a time.
const CALLERS: usize = 64;
/// Patience for one reply; a lost request shows as a timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the callers pause right after the signal in the lull variant.
const PAUSE: Duration = Duration::from_millis(300);
/// Load before the signal (ordering, not readiness) and after the exit.
const MARGIN: Duration = Duration::from_millis(400);
/// Patience for a draining instance to exit.
const EXIT_DEADLINE: Duration = Duration::from_secs(20);

/// What one caller saw for each of its requests: who answered, or why nobody did.
type Outcomes = Vec<Result<String, String>>;

/// The load: [`CALLERS`] tasks calling `call` until `done`, holding off while `paused`.
struct Load {
    done: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    callers: Vec<JoinHandle<Outcomes>>,
}

impl Load {
    /// Starts the callers; `call(caller, n)` makes request `n` of `caller` and names the
    /// instance that answered (or `""` when the reply does not say).
    fn start<F, Fut>(call: F) -> Load
    where
        F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
        Fut: std::future::Future<Output = Result<String, CallError>> + Send,
    {
        let done = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let callers = (0..CALLERS)
            .map(|caller| {
                let (done, paused, call) = (Arc::clone(&done), Arc::clone(&paused), call.clone());
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    let mut n = 0;
                    while !done.load(Ordering::Relaxed) {
                        if paused.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        outcomes.push(call(caller, n).await.map_err(|e| e.to_string()));
                        n += 1;
                    }
                    outcomes
                })
            })
            .collect();
        Load {
            done,
            paused,
            callers,
        }
    }

    /// Stops the callers and gathers every outcome.
    async fn finish(self) -> anyhow::Result<Outcomes> {
        self.done.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for caller in self.callers {
            all.extend(caller.await?);
        }
        Ok(all)
    }
}

/// Runs the load, SIGTERMs `stopping` (pausing the load for [`PAUSE`] if `pause`), keeps the
/// load going until it exited, and returns every outcome. Asserts the clean exit.
async fn stop_under_load<F, Fut>(
    stopping: &mut ChildProcess,
    pause: bool,
    call: F,
) -> anyhow::Result<Outcomes>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<String, CallError>> + Send,
{
    let load = Load::start(call);
    tokio::time::sleep(MARGIN).await;
    if pause {
        load.paused.store(true, Ordering::Relaxed);
    }
    stopping.signal(Signal::SIGTERM)?;
    if pause {
        tokio::time::sleep(PAUSE).await;
        load.paused.store(false, Ordering::Relaxed);
    }
    let status = stopping.wait_with_deadline(EXIT_DEADLINE).await;
    tokio::time::sleep(MARGIN).await;
    let outcomes = load.finish().await?;
    anyhow::ensure!(
        status.is_some_and(|s| s.success()),
        "the stopping instance exited with {status:?}; stderr:\n{}",
        stopping.stderr()
    );
    Ok(outcomes)
}

/// Asserts every request was answered; returns how many each instance answered.
fn all_answered(outcomes: &Outcomes) -> std::collections::BTreeMap<String, u64> {
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests got no successful answer, e.g. {:?}",
        failed.len(),
        outcomes.len(),
        &failed[..failed.len().min(5)]
    );
    let mut by_instance = std::collections::BTreeMap::new();
    for instance in outcomes.iter().filter_map(|o| o.as_ref().ok()) {
        *by_instance.entry(instance.clone()).or_default() += 1;
    }
    by_instance
}

/// The `(requests, errors)` an instance logged for `endpoint` in "endpoint totals at stop"
/// (JSON log lines); asserts the drain neither ran out of time nor was refused a publish.
fn totals_at_stop(stderr: &str, endpoint: &str) -> anyhow::Result<(u64, u64)> {
    for bad in [
        "drain deadline passed",
        "Permissions Violation",
        "cannot unsubscribe",
    ] {
        anyhow::ensure!(!stderr.contains(bad), "{bad:?} in the log:\n{stderr}");
    }
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|v| {
            v["fields"]["message"] == "endpoint totals at stop"
                && v["fields"]["endpoint"] == endpoint
        })
        .and_then(|v| {
            Some((
                v["fields"]["requests"].as_u64()?,
                v["fields"]["errors"].as_u64()?,
            ))
        })
        .with_context(|| format!("no totals for {endpoint} in the log:\n{stderr}"))
}

/// One 20 ms `plantd.echo.slow` request: enough work to keep requests in flight.
async fn slow_echo(client: &Client) -> Result<SlowReply, CallError> {
    let request = SlowRequest { duration_ms: 20 };
    call::request(
        client,
        "plantd.echo.slow",
        &request,
        Encoding::Json,
        CALL_TIMEOUT,
    )
    .await
}

/// An admin connection to the hub (the callers; the permission under test is the services').
async fn admin_client(hub: &Hub) -> anyhow::Result<Client> {
    Ok(connect_with_events(&hub.url, &hub.admin_creds, None)
        .await?
        .0)
}

fn path_setting(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("temp paths are UTF-8")
}

#[tokio::test]
async fn echo_drains_without_loss_under_issued_creds() -> anyhow::Result<()> {
    let hub = Hub::start(&["--services", "identity"]).await?;
    let creds = hub.creds("echo");
    let client = admin_client(&hub).await?;
    for pause in [false, true] {
        let settings = [
            ("nats_creds", path_setting(&creds)?),
            ("log_format", "json"),
        ];
        let mut stopping = spawn_service("plantd-echo", &hub.url, &settings)?;
        let mut survivor = spawn_service("plantd-echo", &hub.url, &settings)?;
        wait_for_instances(&client, "echo", 2, &mut [&mut stopping, &mut survivor]).await?;
        let caller_client = client.clone();
        let outcomes = stop_under_load(&mut stopping, pause, move |_, _| {
            let client = caller_client.clone();
            async move {
                let reply = slow_echo(&client).await?;
                Ok(reply.instance)
            }
        })
        .await?;
        let by_instance = all_answered(&outcomes);
        let from_stopping = by_instance
            .get(&instance_of(&stopping))
            .copied()
            .unwrap_or(0);
        let (requests, errors) = totals_at_stop(&stopping.stderr(), "slow")?;
        println!(
            "pause {pause}: {} requests answered {by_instance:?}; the stopping instance logged {requests} ({errors} errors)",
            outcomes.len()
        );
        assert_eq!(errors, 0);
        assert_eq!(
            requests, from_stopping,
            "its totals match what callers got from it"
        );
        assert!(
            from_stopping > 0,
            "it served before stopping: {by_instance:?}"
        );
        assert!(
            by_instance
                .get(&instance_of(&survivor))
                .copied()
                .unwrap_or(0)
                > 0,
            "the survivor took over: {by_instance:?}"
        );
        survivor.signal(Signal::SIGTERM)?;
        survivor.wait_with_deadline(EXIT_DEADLINE).await;
    }
    Ok(())
}

#[tokio::test]
async fn state_drains_without_loss_under_issued_creds() -> anyhow::Result<()> {
    let hub = Hub::start(&["--services", "identity"]).await?;
    let creds = hub.creds("state");
    let client = admin_client(&hub).await?;
    for pause in [false, true] {
        let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
        // The stopping instance runs as `plant up` runs state; the other one needs a bucket of
        // its own (two databases must not mirror into one bucket) and so the admin's creds.
        let mut stopping = spawn_service(
            "plantd-state",
            &hub.url,
            &[
                ("nats_creds", path_setting(&creds)?),
                ("data_dir", path_setting(dirs.0.path())?),
                ("auto_create_scopes", "true"),
                ("log_format", "json"),
            ],
        )?;
        let mut survivor = spawn_service(
            "plantd-state",
            &hub.url,
            &[
                ("nats_creds", path_setting(&hub.admin_creds)?),
                ("data_dir", path_setting(dirs.1.path())?),
                ("kv_bucket", "plantd-drain-spare"),
                ("auto_create_scopes", "true"),
            ],
        )?;
        wait_for_instances(&client, "state", 2, &mut [&mut stopping, &mut survivor]).await?;
        let caller_client = client.clone();
        let sets = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&sets);
        let outcomes = stop_under_load(&mut stopping, pause, move |caller, n| {
            let (client, counted) = (caller_client.clone(), Arc::clone(&counted));
            async move {
                let request = SetRequest {
                    key: format!("k-{caller}-{n}"),
                    value: format!("{n}"),
                    ..SetRequest::default()
                };
                let reply: SetResponse = call::request(
                    &client,
                    "plantd.state.set.line1",
                    &request,
                    Encoding::Json,
                    CALL_TIMEOUT,
                )
                .await?;
                if reply.version == 0 {
                    return Err(CallError::Decode {
                        subject: "plantd.state.set.line1".into(),
                        message: format!("a set answered without a version: {reply:?}"),
                    });
                }
                counted.fetch_add(1, Ordering::Relaxed);
                Ok(String::new())
            }
        })
        .await?;
        all_answered(&outcomes);
        let (stopped_requests, errors) = totals_at_stop(&stopping.stderr(), "set")?;
        let stats = foundation::gather_json(&client, "$SRV.STATS.state", 1).await?;
        let survivor_requests = stats[0]["endpoints"]
            .as_array()
            .and_then(|eps| eps.iter().find(|e| e["name"] == "set"))
            .and_then(|e| e["num_requests"].as_u64())
            .context("survivor STATS has set")?;
        println!(
            "pause {pause}: {} sets answered; stopping instance logged {stopped_requests}, survivor counts {survivor_requests}",
            outcomes.len()
        );
        assert_eq!(errors, 0);
        assert!(stopped_requests > 0, "it served before stopping");
        assert_eq!(
            stopped_requests + survivor_requests,
            sets.load(Ordering::Relaxed),
            "the two instances' totals add up to what callers got"
        );
        survivor.signal(Signal::SIGTERM)?;
        survivor.wait_with_deadline(EXIT_DEADLINE).await;
    }
    Ok(())
}

/// The last instance of a service stops under load: every request is either answered or,
/// once the subscription is gone, refused at once with "no responders"; none times out (a
/// request routed to the stopping instance and then dropped would).
#[tokio::test]
async fn the_last_instance_answers_or_the_server_says_no_responders() -> anyhow::Result<()> {
    let hub = Hub::start(&["--services", "identity"]).await?;
    let creds = hub.creds("echo");
    let client = admin_client(&hub).await?;
    let settings = [
        ("nats_creds", path_setting(&creds)?),
        ("log_format", "json"),
    ];
    let mut last = spawn_service("plantd-echo", &hub.url, &settings)?;
    wait_for_instances(&client, "echo", 1, &mut [&mut last]).await?;
    let caller_client = client.clone();
    let outcomes = stop_under_load(&mut last, false, move |_, _| {
        let client = caller_client.clone();
        async move {
            match slow_echo(&client).await {
                Ok(reply) => Ok(reply.instance),
                // Expected once the instance is gone; anything else is a failure.
                Err(CallError::NoResponders { .. }) => Ok("no responders".to_owned()),
                Err(other) => Err(other),
            }
        }
    })
    .await?;
    let by_outcome = all_answered(&outcomes);
    let (requests, errors) = totals_at_stop(&last.stderr(), "slow")?;
    println!(
        "{} requests: {by_outcome:?}; the instance logged {requests}",
        outcomes.len()
    );
    assert_eq!(errors, 0);
    assert_eq!(by_outcome.get(&instance_of(&last)).copied(), Some(requests));
    assert!(
        by_outcome.get("no responders").copied().unwrap_or(0) > 0,
        "requests after the drain were refused at once: {by_outcome:?}"
    );
    Ok(())
}
