//! Tests of the harness itself: if these fail, no other end-to-end test result means anything.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt as _;
use plantd_tests::{NatsServer, NatsServerOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(10);

fn proc_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn publish_subscribe_round_trip() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    assert!(server.url().ends_with(&format!(":{}", server.port())));
    let client = server.client().await;
    let mut subscriber = client.subscribe("harness.round-trip").await?;
    client.flush().await?;
    client.publish("harness.round-trip", "hello".into()).await?;
    let message = tokio::time::timeout(DEADLINE, subscriber.next())
        .await?
        .expect("subscription open");
    assert_eq!(message.payload, "hello");
    // The template's max_payload reached the server (4MB, not the 1MB default).
    assert_eq!(client.server_info().max_payload, 4 * 1024 * 1024);
    Ok(())
}

#[tokio::test]
async fn parallel_servers_get_their_own_port_and_store() -> anyhow::Result<()> {
    let (a, b) = tokio::try_join!(NatsServer::start(), NatsServer::start())?;
    assert_ne!(a.port(), b.port());
    assert_ne!(a.store_dir(), b.store_dir());
    Ok(())
}

#[tokio::test]
async fn restart_keeps_port_and_jetstream_store() -> anyhow::Result<()> {
    let mut server = NatsServer::start().await?;
    let (port, first_pid) = (server.port(), server.pid());
    let client = server.client().await;
    let js = jetstream::new(client.clone());
    js.create_stream(jetstream::stream::Config {
        name: "HARNESS".to_owned(),
        subjects: vec!["harness.stream.>".to_owned()],
        ..Default::default()
    })
    .await?;
    js.publish("harness.stream.one", "kept".into())
        .await?
        .await?;
    assert!(
        server.store_dir().is_dir(),
        "JetStream store in store_dir()"
    );

    server.restart().await?;
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), first_pid);
    assert!(!proc_exists(first_pid), "old nats-server reaped");

    // The old client reconnects by itself; the stream and its message are still there.
    let mut stream = eventually(DEADLINE, || js.get_stream("HARNESS")).await?;
    let info = stream.info().await?;
    assert_eq!(info.state.messages, 1);
    let message = stream.get_raw_message(1).await?;
    assert_eq!(message.payload, "kept");
    Ok(())
}

#[tokio::test]
async fn kill_then_restart_recovers() -> anyhow::Result<()> {
    let mut server = NatsServer::start().await?;
    let pid = server.pid();
    server.kill()?;
    assert!(!server.is_running());
    assert!(!proc_exists(pid), "killed nats-server reaped");
    assert!(server.try_client().await.is_err(), "nothing listens");
    server.restart().await?;
    assert!(server.is_running());
    let client = server.client().await;
    client.flush().await?;
    Ok(())
}

#[tokio::test]
async fn second_server_on_a_given_store_sees_the_first_ones_streams() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let options = NatsServerOptions {
        data_dir: Some(data.path().to_owned()),
        ..Default::default()
    };
    let mut first = NatsServer::start_with(options.clone()).await?;
    let js = jetstream::new(first.client().await);
    js.create_stream(jetstream::stream::Config {
        name: "CARRIED".to_owned(),
        subjects: vec!["harness.carried".to_owned()],
        ..Default::default()
    })
    .await?;
    first.stop().await?;
    drop(first);
    assert!(data.path().join("jetstream").is_dir(), "caller's dir kept");

    let second = NatsServer::start_with(options).await?;
    let js = jetstream::new(second.client().await);
    js.get_stream("CARRIED").await?;
    Ok(())
}

#[tokio::test]
async fn a_taken_port_fails_fast_with_the_log() -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let options = NatsServerOptions {
        port: Some(taken.local_addr()?.port()),
        ..Default::default()
    };
    let err = NatsServer::start_with(options)
        .await
        .expect_err("port is taken");
    assert!(
        format!("{err:#}").contains("address already in use"),
        "{err:#}"
    );
    Ok(())
}

#[tokio::test]
async fn drop_leaves_no_process() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let pid = server.pid();
    let log = server.log_path();
    assert!(proc_exists(pid));
    drop(server);
    assert!(
        !proc_exists(pid),
        "nats-server {pid} still exists after drop"
    );
    assert!(!log.exists(), "temp dir removed");
    Ok(())
}
