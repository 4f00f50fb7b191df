//! The module SDK end to end over a real nats-server (issue #13):
//!
//! * a module requiring a capability nobody provides is *degraded* with the missing
//!   requirement as its reason (on `/healthz`, in the registry, in `plant modules deps`) and
//!   becomes healthy when a provider starts, degraded again when it leaves;
//! * a capability's circuit breaker opens after N provider failures, refuses calls without
//!   sending them, shows in `$SRV.STATS`, and closes after one successful trial;
//! * retries never repeat a call that is not idempotent (counted at the provider);
//! * `plant modules replace` swaps echo v1 for v2 under 64 requests in flight with zero
//!   failed requests (counted);
//! * a `kill -9`ed instance leaves the registry within its TTL.
//!
//! "v2" is echo built from the same code declaring version 0.2.0 (`run_as_version`), in this
//! process; v1 is the real `plantd-echo` binary, so replies say which one answered.

mod foundation;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use async_nats::{Client, HeaderMap};
use foundation::{DEADLINE, gather_json, plant, spawn_echo};
use futures::StreamExt as _;
use plantd_echo::EchoConfig;
use plantd_schemas::echo::v1::{EchoReply, EchoRequest};
use plantd_shared::{
    ErrorCode, ServiceError,
    call::{self, CallError},
    codec::Encoding,
    config::CommonConfig,
    error::{ERROR_CODE_HEADER, ERROR_HEADER},
    module::{
        Module, ModuleConfig,
        client::{CapabilityClient, Idempotency},
        registry::{self, Declaration},
        spec::ModuleSpec,
    },
    shutdown::Shutdown,
};
use plantd_tests::{NatsServer, Signal, eventually};
use tokio::{task::JoinHandle, time::Instant};

const ECHO: &str = "plantd.echo.echo";

fn common(server: &NatsServer) -> CommonConfig {
    CommonConfig {
        nats_url: server.url(),
        log_ship: false,
        drain_timeout_ms: 5_000,
        ..CommonConfig::default()
    }
}

/// A module of this test, "needy", that requires `echo@^0.1` and calls it.
struct Needy {
    echo: CapabilityClient,
    health_url: String,
    id: String,
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl Needy {
    async fn start(server: &NatsServer, module: ModuleConfig) -> anyhow::Result<Needy> {
        let spec = ModuleSpec::new("needy", "1.0.0")?.requires("echo@^0.1")?;
        let shutdown = Shutdown::new();
        let module = Module::start(spec, &module, &common(server), shutdown.clone()).await?;
        let echo = module.client_of("echo");
        let id = module.instance().to_string();
        let builder = module.service().description("needs echo");
        let task = tokio::spawn(async move {
            if let Err(err) = module.serve(builder).await {
                panic!("needy failed: {err}");
            }
        });
        let health_url = health_url(server, "needy", &id).await?;
        Ok(Needy {
            echo,
            health_url,
            id,
            shutdown,
            task,
        })
    }

    async fn health(&self) -> anyhow::Result<serde_json::Value> {
        let (_, body) = plantd_shared::health::probe(&self.health_url, Duration::from_secs(2))
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(body)
    }

    async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
    }
}

/// The `/healthz` URL an instance has in the registry, once it serves.
async fn health_url(server: &NatsServer, name: &str, id: &str) -> anyhow::Result<String> {
    let entry = registered(server, name, |d| d.id == id && d.phase == "serving").await?;
    Ok(entry.health_url)
}

/// The registry entry of module `name` that satisfies `pred`, once there is one.
async fn registered(
    server: &NatsServer,
    name: &str,
    pred: impl Fn(&Declaration) -> bool,
) -> anyhow::Result<Declaration> {
    let js = async_nats::jetstream::new(server.client().await);
    let pred = &pred;
    let js = &js;
    eventually(DEADLINE, || async move {
        let all = registry::list(js).await?;
        all.into_iter()
            .find(|d| d.name == name && pred(d))
            .ok_or_else(|| anyhow::anyhow!("no matching {name} in the registry yet"))
    })
    .await
}

/// echo in this process, declaring `version`.
struct InProcessEcho {
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl InProcessEcho {
    fn start(server: &NatsServer, version: &'static str) -> InProcessEcho {
        let shutdown = Shutdown::new();
        let config = EchoConfig {
            common: common(server),
            ..EchoConfig::default()
        };
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(err) = plantd_echo::run_as_version(config, shutdown, version).await {
                    panic!("in-process echo failed: {err}");
                }
            }
        });
        InProcessEcho { shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
    }
}

fn fast_module() -> ModuleConfig {
    ModuleConfig {
        registry_ttl_s: 3,
        require_wait_ms: 200,
        require_check_ms: 300,
        ..ModuleConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_requirement_degrades_the_module_until_its_provider_serves() -> anyhow::Result<()>
{
    let server = NatsServer::start().await?;
    let needy = Needy::start(&server, fast_module()).await?;

    let body = eventually(DEADLINE, || async {
        let body = needy.health().await?;
        anyhow::ensure!(body["status"] == "warn", "not degraded yet: {body}");
        Ok(body)
    })
    .await?;
    let reason = body["checks"]["requires"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("echo@^0.1"), "{body}");
    let entry = registered(&server, "needy", |d| d.id == needy.id).await?;
    assert_eq!(entry.phase, "serving");
    assert_eq!(entry.health, "warn");
    assert_eq!(entry.missing, ["echo@^0.1"]);
    let url = server.url();
    let deps = plant(&["--server", &url, "modules", "deps"]).await?;
    assert!(deps.ok, "{}", deps.stderr);
    println!("plant modules deps, echo missing:\n{}", deps.stdout);
    assert!(deps.stdout.contains("echo@^0.1") && deps.stdout.contains("MISSING"));

    let started = Instant::now();
    let echo = InProcessEcho::start(&server, "0.1.0");
    eventually(DEADLINE, || async {
        let body = needy.health().await?;
        anyhow::ensure!(body["status"] == "pass", "not healthy yet: {body}");
        Ok(())
    })
    .await?;
    println!("healthy {:?} after echo started", started.elapsed());
    let entry = registered(&server, "needy", |d| d.health == "pass").await?;
    assert!(entry.missing.is_empty(), "{entry:?}");
    let graph = plant(&["--server", &url, "modules", "graph", "--dot"]).await?;
    println!("plant modules graph --dot:\n{}", graph.stdout);
    assert!(
        graph
            .stdout
            .contains("\"needy\" -> \"echo\" [label=\"echo@^0.1\"];")
    );
    let ls = plant(&["--server", &url, "modules", "ls"]).await?;
    println!("plant modules ls:\n{}", ls.stdout);
    assert!(ls.stdout.contains("needy") && ls.stdout.contains("echo@0.1.0"));

    echo.stop().await;
    eventually(DEADLINE, || async {
        let body = needy.health().await?;
        anyhow::ensure!(body["status"] == "warn", "still healthy: {body}");
        Ok(())
    })
    .await?;
    println!("degraded again once echo left");
    needy.stop().await;
    let js = async_nats::jetstream::new(server.client().await);
    let left = registry::list(&js).await?;
    assert!(
        left.iter().all(|d| d.name != "needy"),
        "stopped module still registered: {left:?}"
    );
    Ok(())
}

/// Returns once the server has processed everything `client` sent before (its SUBs above all),
/// so another connection's request finds the subscription. async-nats' `flush` only writes the
/// socket; a request is a round trip through the server, which answers in order (here with
/// `no responders`, at once).
async fn server_has_seen(client: &Client) {
    let _ = client.request("plantd.test.barrier", "".into()).await;
}

/// A stand-in provider on `subject` that counts requests and answers each with a 503.
async fn failing_provider(
    client: &Client,
    subject: &str,
) -> anyhow::Result<(Arc<AtomicU64>, JoinHandle<()>)> {
    let mut sub = client
        .queue_subscribe(subject.to_string(), "echo".into())
        .await?;
    server_has_seen(client).await;
    let received = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&received);
    let client = client.clone();
    let task = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            count.fetch_add(1, Ordering::SeqCst);
            let Some(reply) = msg.reply else { continue };
            let err = ServiceError::new(ErrorCode::Unavailable, "provider is overloaded");
            let mut headers = HeaderMap::new();
            headers.insert(ERROR_HEADER, err.message.as_str());
            headers.insert(ERROR_CODE_HEADER, "503");
            let _ = client
                .publish_with_headers(reply, headers, err.to_json_body().into())
                .await;
        }
    });
    Ok((received, task))
}

async fn stats_of(client: &Client, name: &str) -> anyhow::Result<serde_json::Value> {
    let replies = gather_json(client, &format!("$SRV.STATS.{name}"), 1).await?;
    replies
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no STATS from {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_breaker_opens_after_n_failures_and_closes_after_one_good_trial() -> anyhow::Result<()>
{
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let needy = Needy::start(
        &server,
        ModuleConfig {
            call_attempts: 1,
            breaker_failures: 3,
            breaker_open_ms: 800,
            ..fast_module()
        },
    )
    .await?;
    let (received, provider) = failing_provider(&client, ECHO).await?;
    let request = EchoRequest {
        message: "hi".into(),
    };
    for _ in 0..3 {
        let result: Result<EchoReply, _> = needy
            .echo
            .call("echo", &request, Idempotency::Idempotent)
            .await;
        assert!(
            matches!(&result, Err(CallError::Service(e)) if e.code == ErrorCode::Unavailable),
            "{result:?}"
        );
    }
    let refused_at = Instant::now();
    let result: Result<EchoReply, _> = needy
        .echo
        .call("echo", &request, Idempotency::Idempotent)
        .await;
    assert!(
        matches!(result, Err(CallError::CircuitOpen { .. })),
        "{result:?}"
    );
    assert!(
        refused_at.elapsed() < Duration::from_millis(50),
        "an open breaker answers at once"
    );
    assert_eq!(
        received.load(Ordering::SeqCst),
        3,
        "the refused call was never sent"
    );
    let stats = stats_of(&client, "needy").await?;
    println!("STATS breakers while open: {}", stats["breakers"]);
    assert_eq!(stats["breakers"]["echo"]["state"], "open");
    assert_eq!(stats["breakers"]["echo"]["opened"], 1);
    assert_eq!(stats["breakers"]["echo"]["rejected"], 1);

    provider.abort();
    let echo = InProcessEcho::start(&server, "0.1.0");
    registered(&server, "echo", |d| d.phase == "serving").await?;
    tokio::time::sleep(Duration::from_millis(850)).await;
    let reply: EchoReply = needy
        .echo
        .call("echo", &request, Idempotency::Idempotent)
        .await?;
    assert_eq!(reply.message, "hi");
    let stats = stats_of(&client, "needy").await?;
    println!("STATS breakers after the trial: {}", stats["breakers"]);
    assert_eq!(stats["breakers"]["echo"]["state"], "closed");
    assert_eq!(stats["breakers"]["echo"]["consecutive_failures"], 0);
    echo.stop().await;
    needy.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_never_repeat_a_call_that_is_not_idempotent() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let needy = Needy::start(
        &server,
        ModuleConfig {
            call_attempts: 4,
            breaker_failures: 100,
            call_deadline_ms: 3_000,
            ..fast_module()
        },
    )
    .await?;
    let (received, _provider) = failing_provider(&client, ECHO).await?;
    let request = EchoRequest {
        message: "add one".into(),
    };
    let once: Result<EchoReply, _> = needy
        .echo
        .call("echo", &request, Idempotency::NotIdempotent)
        .await;
    assert!(matches!(&once, Err(CallError::Service(e)) if e.code == ErrorCode::Unavailable));
    let not_idempotent = received.swap(0, Ordering::SeqCst);
    let again: Result<EchoReply, _> = needy
        .echo
        .call("echo", &request, Idempotency::Idempotent)
        .await;
    assert!(again.is_err());
    let idempotent = received.load(Ordering::SeqCst);
    println!(
        "a 503 reached the provider {not_idempotent} time(s) for a non-idempotent call, {idempotent} for an idempotent one"
    );
    assert_eq!(not_idempotent, 1, "a non-idempotent call is sent once");
    assert_eq!(
        idempotent, 4,
        "an idempotent call is retried up to call_attempts"
    );

    // A provider that never answers: the outcome is unknown, so only idempotent calls retry.
    let mut silent = client
        .queue_subscribe("plantd.echo.slow", "echo".into())
        .await?;
    server_has_seen(&client).await;
    let slow = plantd_schemas::echo::v1::SlowRequest { duration_ms: 1 };
    let started = Instant::now();
    let timed_out: Result<plantd_schemas::echo::v1::SlowReply, _> = needy
        .echo
        .call("slow", &slow, Idempotency::NotIdempotent)
        .await;
    assert!(
        matches!(timed_out, Err(CallError::TimedOut { .. })),
        "{timed_out:?}"
    );
    let mut seen = 0;
    while tokio::time::timeout(Duration::from_millis(100), silent.next())
        .await
        .is_ok_and(|m| m.is_some())
    {
        seen += 1;
    }
    println!(
        "a silent provider got a non-idempotent call {seen} time(s) in {:?}",
        started.elapsed()
    );
    assert_eq!(seen, 1);
    needy.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replacing_echo_v1_by_v2_under_64_in_flight_fails_no_request() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut v1 = spawn_echo(&server, &[("registry_ttl_s", "3"), ("log_ship", "false")])?;
    let v1_entry = registered(&server, "echo", |d| {
        d.phase == "serving" && d.health == "pass"
    })
    .await?;

    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..64 {
        let (client, stop, failed) = (client.clone(), Arc::clone(&stop), Arc::clone(&failed));
        workers.push(tokio::spawn(async move {
            let mut by_instance: BTreeMap<String, u64> = BTreeMap::new();
            let request = EchoRequest {
                message: "load".into(),
            };
            while !stop.load(Ordering::SeqCst) {
                let reply: Result<EchoReply, _> = call::request(
                    &client,
                    ECHO,
                    &request,
                    Encoding::Protobuf,
                    Duration::from_secs(10),
                )
                .await;
                match reply {
                    Ok(reply) => *by_instance.entry(reply.instance).or_default() += 1,
                    Err(err) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        eprintln!("failed request: {err}");
                    }
                }
            }
            by_instance
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let v2 = InProcessEcho::start(&server, "0.2.0");
    let v2_entry = registered(&server, "echo", |d| d.version == "0.2.0").await?;
    let url = server.url();
    let replaced = plant(&[
        "--server",
        &url,
        "modules",
        "replace",
        "echo",
        "--old",
        &v1_entry.id,
        "--new",
        &v2_entry.id,
    ])
    .await?;
    assert!(
        replaced.ok,
        "replace failed: {}{}",
        replaced.stdout, replaced.stderr
    );
    println!("{}", replaced.stdout.trim());
    let exit = v1.wait_with_deadline(DEADLINE).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "v1 exits 0 after its drain: {exit:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answered: BTreeMap<String, u64> = BTreeMap::new();
    for worker in workers {
        for (instance, n) in worker.await? {
            *answered.entry(instance).or_default() += n;
        }
    }
    let failed = failed.load(Ordering::SeqCst);
    let v1_name = format!("pid-{}", v1.pid());
    let v2_name = format!("pid-{}", std::process::id());
    println!(
        "replace under 64 in flight: v1 answered {}, v2 answered {}, failed {failed}",
        answered.get(&v1_name).copied().unwrap_or(0),
        answered.get(&v2_name).copied().unwrap_or(0)
    );
    assert_eq!(failed, 0, "no request may fail during a replacement");
    assert!(
        answered.get(&v1_name).is_some_and(|n| *n > 0),
        "{answered:?}"
    );
    assert!(
        answered.get(&v2_name).is_some_and(|n| *n > 0),
        "{answered:?}"
    );
    let js = async_nats::jetstream::new(client.clone());
    let left = registry::list(&js).await?;
    assert!(
        left.iter().all(|d| d.id != v1_entry.id),
        "v1 still registered: {left:?}"
    );
    v2.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_leaves_the_registry_within_its_ttl() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let echo = spawn_echo(&server, &[("registry_ttl_s", "3"), ("log_ship", "false")])?;
    let entry = registered(&server, "echo", |d| d.phase == "serving").await?;
    let id = entry.id.as_str();
    assert_eq!(entry.ttl_s, 3);
    echo.signal(Signal::SIGKILL)?;
    let killed = Instant::now();
    let js = async_nats::jetstream::new(server.client().await);
    let js = &js;
    eventually(Duration::from_secs(10), || async move {
        let all = registry::list(js).await?;
        anyhow::ensure!(all.iter().all(|d| d.id != id), "still registered");
        Ok(())
    })
    .await?;
    let gone = killed.elapsed();
    println!(
        "kill -9: gone from the registry {gone:?} after the kill (TTL 3 s, heartbeat every 1 s)"
    );
    assert!(
        gone <= Duration::from_secs(3) + Duration::from_millis(1500),
        "{gone:?}"
    );
    Ok(())
}
