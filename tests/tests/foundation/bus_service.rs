//! A nats-server with one real `plantd-bus` (buses and pipes), for the bus and pipe tests.

use plantd_tests::{ChildProcess, NatsServer};

/// A running server with one bus service (config from `yaml`, or the defaults).
pub struct Buses {
    pub server: NatsServer,
    pub service: ChildProcess,
    pub client: async_nats::Client,
    _dir: tempfile::TempDir,
}

pub async fn start(yaml: Option<&str>) -> anyhow::Result<Buses> {
    let server = NatsServer::start().await?;
    let dir = tempfile::tempdir()?;
    let mut service = match yaml {
        Some(yaml) => {
            let path = dir.path().join("bus.yaml");
            std::fs::write(&path, yaml)?;
            let mut args = vec![
                "--config".to_string(),
                path.display().to_string(),
                "--set".into(),
            ];
            args.push(format!("nats_url={}", server.url()));
            ChildProcess::spawn(plantd_tests::bin_path("plantd-bus"), args, super::no_env())?
        }
        None => super::spawn_service("plantd-bus", &server.url(), &[])?,
    };
    let client = async_nats::connect(server.url()).await?;
    super::wait_for_instances(&client, "buses", 1, &mut [&mut service]).await?;
    Ok(Buses {
        server,
        service,
        client,
        _dir: dir,
    })
}
