//! `plant edge init|status`: make a site bundle from a hub, and see how the links stand.
//!
//! `init` runs on the hub's machine with the admin's creds. It writes a site's data dir: the
//! operator JWT and the account JWTs (so the site's nats-server checks people's JWTs with no
//! hub), the site's own revocable creds from the hub's identity (one per site service, the
//! edge agent, the leaf link), the SYS creds it applies revocations with, and the nats-server
//! snippet with the leaf remote to the hub. Then `plant up --edge SITE --data-dir <that dir>`
//! runs the site. See docs/edge.md.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use plantd_edge::config::valid_site;
use plantd_identity::{bootstrap::Bootstrap, server_config::OperatorMode};
use plantd_schemas::{
    edge::v1::{StatusReply, StatusRequest},
    identity::v1::{
        AccountJwtRequest, AccountJwtResponse, ServiceCredsRequest, ServiceCredsResponse,
    },
};
use plantd_shared::{call, codec::Encoding, subjects};
use serde::{Deserialize, Serialize};

use crate::{context::GlobalArgs, identity_client, output};

/// Arguments of `plant edge`.
#[derive(Debug, clap::Args)]
pub struct EdgeArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create a site's data dir from this hub (admin creds; run on the hub's machine).
    Init {
        /// Site name: its JetStream domain and the first token of its scopes.
        site: String,
        /// The hub's leaf-node URL as the site reaches it (`nats-leaf://hub.example:7422`).
        #[arg(long)]
        hub: String,
        /// The hub's data dir (as for `plant up`).
        #[arg(long, value_name = "DIR", default_value = ".plantd")]
        hub_data_dir: PathBuf,
        /// Where to write the site's data dir.
        #[arg(long, value_name = "DIR")]
        site_dir: PathBuf,
        /// CA certificate (PEM) the site verifies the hub's leaf listener with; needs a
        /// `tls://` hub URL (the hub runs `plant up --leaf-tls-cert/--leaf-tls-key`).
        #[arg(long, value_name = "FILE")]
        hub_ca: Option<PathBuf>,
    },
    /// Link state, lag and backlog per stream (at the hub, or at a site with --site).
    Status {
        /// Ask a site's edge service (connect to the site's server).
        #[arg(long)]
        site: Option<String>,
    },
}

/// What `plant edge init` writes as `<site-dir>/edge.json`; `plant up --edge` reads it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SiteFile {
    /// The site.
    pub site: String,
    /// The hub's leaf-node URL.
    pub hub: String,
}

/// The name of a site's settings file in its data dir.
pub const SITE_FILE: &str = "edge.json";

/// The creds a site gets: `(file name, identity kind)`.
const SITE_CREDS: &[(&str, &str)] = &[
    ("logger", "logger"),
    ("echo", "echo"),
    ("metric", "metric"),
    ("state", "state"),
    ("buses", "buses"),
    ("edge", "edge-agent"),
    ("edge-link", "edge"),
];

impl EdgeArgs {
    /// Runs the verb.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.verb {
            Verb::Init {
                site,
                hub,
                hub_data_dir,
                site_dir,
                hub_ca,
            } => {
                let link = HubLink {
                    url: hub,
                    ca: hub_ca,
                };
                init(global, out, &site, &link, &hub_data_dir, &site_dir).await
            }
            Verb::Status { site } => status(global, out, site.as_deref()).await,
        }
    }
}

/// How a site reaches its hub.
struct HubLink {
    /// The leaf-node URL.
    url: String,
    /// The CA to verify the hub with (TLS).
    ca: Option<PathBuf>,
}

async fn init(
    global: &GlobalArgs,
    out: &mut dyn Write,
    site: &str,
    link: &HubLink,
    hub_data_dir: &Path,
    site_dir: &Path,
) -> anyhow::Result<()> {
    let hub = link.url.as_str();
    anyhow::ensure!(
        link.ca.is_none() || hub.starts_with("tls://"),
        "--hub-ca needs a tls:// hub URL, not {hub:?}"
    );
    anyhow::ensure!(
        valid_site(site),
        "site {site:?}: use lowercase letters, digits and '-', starting with a letter, not `hub`"
    );
    anyhow::ensure!(
        hub.starts_with("nats-leaf://") || hub.starts_with("tls://") || hub.starts_with("nats://"),
        "--hub {hub:?}: give the hub's leaf-node URL, e.g. nats-leaf://hub.example:7422"
    );
    let hub_auth = hub_data_dir.join("auth");
    let setup = Bootstrap::open(&hub_auth)
        .with_context(|| format!("cannot read the hub's set-up in {}", hub_auth.display()))?;
    anyhow::ensure!(
        !site_dir.join("auth").exists(),
        "{} already holds a site; remove it to make a new one",
        site_dir.display()
    );
    let client = global.connect().await?;
    let account: AccountJwtResponse = call::request(
        &client,
        &subjects::identity::admin("account"),
        &AccountJwtRequest {},
        Encoding::Protobuf,
        global.timeout,
    )
    .await
    .context("cannot get the current account jwt from the hub's identity service")?;

    // Everything goes into a staging dir, renamed into place at the end: no half site.
    let site_dir = std::path::absolute(site_dir)?;
    let stage = site_dir.with_extension("new");
    let _ = std::fs::remove_dir_all(&stage);
    let creds_dir = stage.join("auth").join("creds");
    std::fs::create_dir_all(&creds_dir)?;
    set_mode(&stage.join("auth"), 0o700)?;
    set_mode(&creds_dir, 0o700)?;
    for (file, kind) in SITE_CREDS {
        let reply: ServiceCredsResponse = call::request(
            &client,
            &subjects::identity::admin("creds"),
            &ServiceCredsRequest {
                name: format!("{site}-{file}"),
                kind: kind.to_string(),
            },
            Encoding::Protobuf,
            global.timeout,
        )
        .await
        .with_context(|| format!("cannot get the site's {file} creds (kind {kind})"))?;
        identity_client::write_new_private(
            &creds_dir.join(format!("{file}.creds")),
            reply.creds.as_bytes(),
            false,
        )?;
    }
    for (from, to) in [(&setup.creds.sys, "sys"), (&setup.creds.login, "login")] {
        let bytes =
            std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
        identity_client::write_new_private(&creds_dir.join(format!("{to}.creds")), &bytes, false)?;
    }
    let final_auth = site_dir.join("auth");
    std::fs::copy(&setup.operator_jwt, stage.join("auth").join("operator.jwt"))?;
    let sys_jwt = std::fs::read_to_string(&setup.system_account.jwt_path)?;
    let mut snippet = OperatorMode {
        operator_jwt: &final_auth.join("operator.jwt"),
        system_account: &setup.system_account.public_key,
        resolver_dir: &final_auth.join("resolver"),
        preload: &[
            (&setup.system_account.public_key, sys_jwt.trim()),
            (&setup.plantd_account.public_key, account.jwt.trim()),
        ],
    }
    .render()?;
    let tls = match &link.ca {
        Some(ca) => {
            std::fs::copy(ca, stage.join("auth").join("hub-ca.pem"))
                .with_context(|| format!("cannot copy {}", ca.display()))?;
            format!(
                "      tls {{ ca_file: \"{}\" }}\n",
                final_auth.join("hub-ca.pem").display()
            )
        }
        None => String::new(),
    };
    snippet.push_str(&format!(
        "\n# The leaf-node link to the hub (plant edge init).\nleafnodes {{\n  reconnect: 1\n  remotes: [\n    {{\n      url: \"{hub}\"\n      credentials: \"{}\"\n      account: {}\n{tls}    }}\n  ]\n}}\n",
        final_auth.join("creds").join("edge-link.creds").display(),
        setup.plantd_account.public_key
    ));
    std::fs::write(stage.join("auth").join("nats-site.conf"), snippet)?;
    let site_file = SiteFile {
        site: site.to_string(),
        hub: hub.to_string(),
    };
    std::fs::write(
        stage.join(SITE_FILE),
        serde_json::to_vec_pretty(&site_file)?,
    )?;
    std::fs::rename(&stage, &site_dir)
        .with_context(|| format!("cannot create {}", site_dir.display()))?;
    let sites = hub_data_dir.join("edge").join("sites");
    std::fs::create_dir_all(&sites)?;
    std::fs::write(sites.join(site), hub)?;
    writeln!(
        out,
        "site {site}: created {}\n  its server trusts this hub's operator and checks JWTs on its own; leaf link to {hub}\n  run it:  plant up --edge {site} --data-dir {}\n  the hub copies its buses and state once `plant up --leaf-listen ADDR` runs the hub",
        site_dir.display(),
        site_dir.display()
    )?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

async fn status(
    global: &GlobalArgs,
    out: &mut dyn Write,
    site: Option<&str>,
) -> anyhow::Result<()> {
    let client = global.connect().await?;
    let subject = match site {
        Some(site) => plantd_edge::site_status_subject(site),
        None => plantd_edge::hub_status_subject(),
    };
    let reply: StatusReply = call::request(
        &client,
        &subject,
        &StatusRequest {},
        Encoding::Protobuf,
        global.timeout,
    )
    .await
    .with_context(|| format!("no edge service answered on {subject}"))?;
    let mut rows = Vec::new();
    for link in &reply.links {
        let since = link
            .since
            .as_ref()
            .and_then(plantd_shared::timestamp::rfc3339)
            .unwrap_or_default();
        for stream in &link.streams {
            rows.push(vec![
                link.peer.clone(),
                if link.up { "up".into() } else { "down".into() },
                since.clone(),
                stream.name.clone(),
                stream.messages.to_string(),
                stream.lag.to_string(),
                if stream.active_ms < 0 {
                    "-".into()
                } else {
                    format!("{}ms", stream.active_ms)
                },
                stream.error.clone(),
            ]);
        }
    }
    let headers = [
        "PEER", "LINK", "SINCE", "STREAM", "MESSAGES", "LAG", "ACTIVE", "ERROR",
    ];
    output::render(
        out,
        global.output,
        &serde_json::to_value(&reply)?,
        &headers,
        rows,
    )?;
    Ok(())
}

/// Reads a site's `edge.json`.
pub fn read_site_file(site_dir: &Path) -> anyhow::Result<SiteFile> {
    let path = site_dir.join(SITE_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not a site's data dir (no {SITE_FILE}); make one with `plant edge init`",
            site_dir.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}
