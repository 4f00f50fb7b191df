//! The edge link service: what keeps a hub and its sites in step across leaf-node links.
//!
//! The same binary runs on both sides (`role`):
//!
//! * **at the hub**, for every site: the streams that copy the site's telemetry, events and
//!   state ([`streams::hub_streams`]), a link watcher per site ([`link`]), and
//!   `plantd.edge.status` (link state, lag and backlog per stream);
//! * **at a site**: the stream that copies the hub's commands for it
//!   ([`streams::site_streams`]), a watcher of the link to the hub, the account sync that
//!   applies the hub's revocations to the site's server ([`account_sync`]), and
//!   `plantd.edge.site.<site>.status`.
//!
//! Nothing here carries data itself: JetStream sources do, across domains, losslessly. This
//! service creates them, notices the link coming back and restarts their catch-up at once, and
//! says how far behind they are. See docs/edge.md.
#![forbid(unsafe_code)]

pub mod account_sync;
pub mod config;
pub mod link;
pub mod streams;

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use plantd_schemas::edge::v1::{StatusReply, StatusRequest};
use plantd_shared::{
    micro::ServiceBuilder,
    process::{ServeError, ServiceProcess},
    shutdown::Shutdown,
    subjects,
};

pub use config::EdgeConfig;
use link::Link;

/// Service name (micro name, queue group, subject token).
pub const SERVICE: &str = "edge";

/// The status subject at the hub.
pub fn hub_status_subject() -> String {
    subjects::module_op(SERVICE, "status")
}

/// The status subject at site `site`.
pub fn site_status_subject(site: &str) -> String {
    subjects::module_op(SERVICE, &format!("site.{site}.status"))
}

fn lock(links: &Mutex<Vec<Link>>) -> MutexGuard<'_, Vec<Link>> {
    links
        .lock()
        .expect("links lock is never poisoned: no panics while held")
}

/// Runs the edge service until shutdown.
pub async fn run(config: EdgeConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    ServeError::check_config(&config.problems())?;
    let process = ServiceProcess::start(SERVICE, &config.common, shutdown.clone()).await?;
    let every = Duration::from_millis(config.link_check_ms);
    let links: Arc<Mutex<Vec<Link>>> = Arc::default();
    let watch = {
        let (client, health, shutdown) = (
            process.client.clone(),
            process.health.clone(),
            shutdown.clone(),
        );
        move |link: Link| {
            tokio::spawn(link::watch(
                client.clone(),
                link,
                every,
                health.clone(),
                shutdown.clone(),
            ));
        }
    };
    let (role, subject) = if config.role == "site" {
        let link = Link::new(
            config::HUB_DOMAIN,
            streams::site_streams(&config.site, config::HUB_DOMAIN),
        );
        if !config.sys_creds.is_empty() {
            let sys = plantd_shared::connection::connect(
                &config.common.nats_url,
                Some(config.sys_creds.clone().into()),
                "plantd-edge-sys",
                plantd_shared::connection::StartMode::RetryInBackground,
                None,
            )
            .await?;
            tokio::spawn(account_sync::run(
                process.client.clone(),
                sys,
                link.clone(),
                Duration::from_millis(config.account_sync_ms),
                process.health.clone(),
                shutdown.clone(),
            ));
        }
        watch(link.clone());
        lock(&links).push(link);
        (config.site.clone(), site_status_subject(&config.site))
    } else {
        // Sites are picked up as `plant edge init` registers them.
        let (config, links, shutdown) = (config.clone(), Arc::clone(&links), shutdown.clone());
        tokio::spawn(async move {
            loop {
                for site in config.all_sites() {
                    if lock(&links).iter().any(|l| l.snapshot().peer == site) {
                        continue;
                    }
                    tracing::info!(site = %site, "watching the link to a site");
                    let link = Link::new(&site, streams::hub_streams(&site));
                    watch(link.clone());
                    lock(&links).push(link);
                }
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
        ("hub".to_string(), hub_status_subject())
    };
    let client = process.client.clone();
    let builder = ServiceBuilder::new(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Edge links: streams sourced across them, link state, catch-up")
        .metadata("role", role.clone())
        .endpoint("status", subject, move |_ctx, _req: StatusRequest| {
            let (links, client, role) = (Arc::clone(&links), client.clone(), role.clone());
            async move {
                let mut statuses = Vec::new();
                let current: Vec<Link> = lock(&links).clone();
                for link in current {
                    statuses.push(link.status(&client).await);
                }
                Ok(StatusReply {
                    role,
                    links: statuses,
                })
            }
        });
    process.serve(builder).await?;
    Ok(())
}
