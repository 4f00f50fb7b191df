//! plantd on a 3-node NATS cluster (three nats-server processes on loopback, one JetStream
//! domain, the state KV bucket at R3): one node is killed (SIGKILL) under 64 writers and echo
//! load. Requests continue on the other two nodes; every write the state service acknowledged
//! is in SQLite and in the R3 bucket afterwards. The test prints the counts and the p99 latency
//! in the two seconds after the kill.

mod foundation;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use foundation::{DEADLINE, no_env, wait_for_instances};
use plantd_schemas::{
    echo::v1::{EchoReply, EchoRequest},
    state::v1::{
        GetRequest, GetResponse, ScopeCreateRequest, ScopeCreateResponse, SetRequest, SetResponse,
    },
};
use plantd_shared::{call, codec::Encoding, subjects};
use plantd_tests::{ChildProcess, NatsServer, bin_path, eventually};
use tokio::time::Instant;

const NODES: usize = 3;
const WRITERS: usize = 64;
const SCOPE: &str = "site1";
/// Each writer's pace.
const PACE: Duration = Duration::from_millis(50);

/// Node `i` of a cluster whose route ports are `routes`.
fn node_template(i: usize, routes: &[u16]) -> String {
    let urls: Vec<String> = routes
        .iter()
        .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
        .collect();
    let cluster = format!(
        "cluster {{\n  name: plantd\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
        routes[i],
        urls.join(", ")
    );
    plantd_shared::nats_server::HUB_TEMPLATE
        .replace(
            "server_name: plantd-hub",
            &format!("server_name: plantd-n{i}"),
        )
        .replace("{{extra}}", &cluster)
}

/// One timed request outcome.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    took: Duration,
    ok: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_dies_under_load_and_no_acknowledged_write_is_lost() -> anyhow::Result<()> {
    let routes: Vec<u16> = (0..NODES)
        .map(|_| plantd_shared::nats_server::free_port())
        .collect::<std::io::Result<_>>()?;
    let mut nodes = Vec::new();
    for i in 0..NODES {
        nodes.push(NatsServer::start_with_template(&node_template(i, &routes)).await?);
    }
    let urls = nodes
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",");
    let addrs = nodes
        .iter()
        .map(|n| n.url().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    let client = async_nats::connect(addrs).await?;
    // JetStream answers once the cluster has a meta leader.
    eventually(DEADLINE, || async {
        let info = client.request("$JS.API.INFO", "".into()).await?;
        let info: serde_json::Value = serde_json::from_slice(&info.payload)?;
        anyhow::ensure!(info.get("error").is_none(), "no meta leader yet: {info}");
        Ok(())
    })
    .await?;

    let data = tempfile::tempdir()?;
    let settings = [
        format!("nats_url={urls}"),
        format!("data_dir={}", data.path().display()),
        "kv_replicas=3".into(),
        "log_ship=false".into(),
    ];
    let args = |sets: &[String]| {
        sets.iter()
            .flat_map(|s| ["--set".to_string(), s.clone()])
            .collect::<Vec<_>>()
    };
    let mut state = ChildProcess::spawn(bin_path("plantd-state"), args(&settings), no_env())?;
    let echo_sets = [format!("nats_url={urls}"), "log_ship=false".to_string()];
    let mut echo = ChildProcess::spawn(bin_path("plantd-echo"), args(&echo_sets), no_env())?;
    wait_for_instances(&client, "state", 1, &mut [&mut state]).await?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;
    // Short: a request in flight on the killed node is lost and only its timeout ends it.
    let timeout = Duration::from_secs(2);
    let _: ScopeCreateResponse = call::request(
        &client,
        &subjects::state::scope_op("create", SCOPE),
        &ScopeCreateRequest::default(),
        Encoding::Protobuf,
        timeout,
    )
    .await?;
    let js = async_nats::jetstream::new(client.clone());
    let bucket = eventually(DEADLINE, || async {
        let kv = js.get_key_value("plantd-state").await?;
        let info = kv.status().await?;
        anyhow::ensure!(
            info.info.config.num_replicas == 3,
            "bucket not at R3: {}",
            info.info.config.num_replicas
        );
        Ok(kv)
    })
    .await?;

    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (client, stop, samples, acked) =
            (client.clone(), stop.clone(), samples.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            // Paced, so the R3 mirror (several times slower than SQLite in a debug build on
            // two cores) keeps up and the test stays bounded; 64 writers × 20/s.
            let mut pace = tokio::time::interval(PACE);
            while !stop.load(Ordering::SeqCst) {
                pace.tick().await;
                n += 1;
                let (key, value) = (format!("w{w:02}-{n:06}"), format!("value-{w}-{n}"));
                let request = SetRequest {
                    key: key.clone(),
                    value: value.clone(),
                    ..Default::default()
                };
                let began = Instant::now();
                let reply: Result<SetResponse, _> = call::request(
                    &client,
                    &subjects::state::key_op("set", SCOPE),
                    &request,
                    Encoding::Protobuf,
                    timeout,
                )
                .await;
                let ok = reply.is_ok();
                samples.lock().expect("samples").push(Sample {
                    at: began,
                    took: began.elapsed(),
                    ok,
                });
                if ok {
                    acked.lock().expect("acked").push((key, value));
                }
            }
        }));
    }
    let echoes = Arc::new(Mutex::new((0u64, 0u64)));
    tasks.push(tokio::spawn({
        let (client, stop, echoes) = (client.clone(), stop.clone(), echoes.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                let reply: Result<EchoReply, _> = call::request(
                    &client,
                    &subjects::module_op("echo", "echo"),
                    &EchoRequest {
                        message: "x".into(),
                    },
                    Encoding::Protobuf,
                    timeout,
                )
                .await;
                let mut counts = echoes.lock().expect("echoes");
                if reply.is_ok() {
                    counts.0 += 1
                } else {
                    counts.1 += 1
                }
            }
        }
    }));

    tokio::time::sleep(Duration::from_secs(2)).await;
    // Kill the node that leads the bucket's stream: the hardest case for the R3 mirror.
    let leader = bucket
        .status()
        .await?
        .info
        .cluster
        .and_then(|c| c.leader)
        .unwrap_or_default();
    let victim = (0..NODES)
        .find(|i| leader == format!("plantd-n{i}"))
        .unwrap_or(0);
    let killed_at = Instant::now();
    nodes[victim].kill()?;
    println!(
        "killed plantd-n{victim} (the bucket's leader was {leader:?}) under {WRITERS} writers"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await?;
    }

    let samples = samples.lock().expect("samples").clone();
    let acked = acked.lock().expect("acked").clone();
    let failed = samples.iter().filter(|s| !s.ok).count();
    let mut during: Vec<Duration> = samples
        .iter()
        .filter(|s| s.ok && s.at >= killed_at && s.at < killed_at + Duration::from_secs(2))
        .map(|s| s.took)
        .collect();
    during.sort_unstable();
    let p99 = during
        .get(during.len().saturating_sub(1).min(during.len() * 99 / 100))
        .copied()
        .unwrap_or_default();
    let after = samples
        .iter()
        .filter(|s| s.ok && s.at > killed_at + Duration::from_secs(2))
        .count();
    let (echo_ok, echo_failed) = *echoes.lock().expect("echoes");
    println!(
        "writes: {} acknowledged, {failed} failed or timed out (outcome unknown); {} in the 2 s after the kill, p99 {p99:?}; {after} after that; echo {echo_ok} ok, {echo_failed} failed",
        acked.len(),
        during.len()
    );
    assert!(after > 0, "writes continue on the surviving nodes");
    assert!(echo_ok > 0);

    // Every acknowledged write is in SQLite (the truth) and in the R3 bucket.
    use futures::StreamExt as _;
    let reads = futures::stream::iter(acked.iter().cloned())
        .map(|(key, value)| {
            let client = client.clone();
            async move {
                let got: Result<GetResponse, _> = call::request(
                    &client,
                    &subjects::state::key_op("get", SCOPE),
                    &GetRequest { key: key.clone() },
                    Encoding::Protobuf,
                    Duration::from_secs(10),
                )
                .await;
                got.map(|g| g.value == value)
                    .with_context(|| format!("get {key}"))
            }
        })
        .buffer_unordered(WRITERS)
        .collect::<Vec<_>>()
        .await;
    let mut missing_sqlite = 0;
    for read in reads {
        if !read? {
            missing_sqlite += 1;
        }
    }
    let wanted: std::collections::HashSet<String> = acked
        .iter()
        .map(|(k, _)| plantd_state::kvkey::encode(SCOPE, k))
        .collect();
    let mirror_wait = Instant::now();
    let mirrored = eventually(Duration::from_secs(60), || async {
        let mut keys = bucket.keys().await?;
        let mut found = std::collections::HashSet::new();
        while let Some(key) = keys.next().await {
            found.insert(key?);
        }
        let missing = wanted.difference(&found).count();
        anyhow::ensure!(
            missing == 0,
            "{missing} acknowledged writes not in the bucket yet"
        );
        Ok(found.len())
    })
    .await?;
    println!(
        "after the kill: {} of {} acknowledged writes read back from state, all {} in the R3 bucket (mirror caught up {:?} after the reads); lost: {missing_sqlite}",
        acked.len() - missing_sqlite,
        acked.len(),
        mirrored,
        mirror_wait.elapsed()
    );
    assert_eq!(missing_sqlite, 0, "no acknowledged write lost");
    Ok(())
}
