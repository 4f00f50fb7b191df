//! What `plant up` does differently for edge links: a hub that accepts sites' leaf nodes
//! (`--leaf-listen`), or a site (`--edge SITE`) running from the data dir `plant edge init`
//! made.
//!
//! A hub adds a leaf-node listener (`no_advertise`, so a site keeps the address it was given,
//! e.g. through a relay or NAT) and runs `plantd-edge` for the registered sites with the admin's
//! creds (it creates streams that source across domains). A site runs its own nats-server
//! (server name `plantd-edge-<site>`, JetStream domain `<site>`, operator mode with the hub's
//! operator and accounts preloaded, a leaf remote to the hub) and every service but identity,
//! each with the site's own creds, plus `plantd-edge` as the site's agent. People log in
//! through the hub while the link is up; the creds they get keep working at the site while it
//! is down (docs/edge.md, "Logging in at a site").

use std::path::Path;

use super::{UpArgs, auth::UpAuth, children::ServiceSpec};
use crate::commands::edge::read_site_file;

/// The edge link service as `plant up` starts it.
pub const EDGE: ServiceSpec = ServiceSpec {
    name: "edge",
    binary: "plantd-edge",
    has_data: false,
    needs_auth: false,
    module: false,
};

/// How this `plant up` takes part in edge links.
#[derive(Debug, Clone)]
pub enum Role {
    /// A hub without sites.
    Plain,
    /// A hub accepting sites' leaf nodes on `listen`.
    Hub {
        /// The leaf-node listen address.
        listen: String,
        /// The listener's TLS certificate and key, if sites link over TLS.
        tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
        /// Where `plant edge init` registers sites.
        sites_dir: std::path::PathBuf,
    },
    /// Site `site`.
    Site {
        /// The site.
        site: String,
    },
}

impl Role {
    /// The role `args` ask for; a site must match its data dir.
    pub fn of(args: &UpArgs, data_dir: &Path) -> anyhow::Result<Role> {
        if let Some(site) = &args.edge {
            let file = read_site_file(data_dir)?;
            anyhow::ensure!(
                &file.site == site,
                "{} holds site {:?}, not {site:?}",
                data_dir.display(),
                file.site
            );
            return Ok(Role::Site { site: site.clone() });
        }
        Ok(match &args.leaf_listen {
            Some(listen) => {
                let sites_dir = data_dir.join("edge").join("sites");
                std::fs::create_dir_all(&sites_dir)?;
                let tls = match (&args.leaf_tls_cert, &args.leaf_tls_key) {
                    (Some(cert), Some(key)) => Some((absolute_file(cert)?, absolute_file(key)?)),
                    _ => None,
                };
                Role::Hub {
                    listen: listen.clone(),
                    tls,
                    sites_dir,
                }
            }
            None => Role::Plain,
        })
    }

    /// Whether this is a site.
    pub fn is_site(&self) -> bool {
        matches!(self, Role::Site { .. })
    }

    /// The services to start: a site has no identity (people log in through the hub); a hub
    /// with leaf nodes and a site add the edge service.
    pub fn services(&self, selected: Vec<&'static ServiceSpec>) -> Vec<&'static ServiceSpec> {
        let mut specs: Vec<_> = match self {
            Role::Site { .. } => selected.into_iter().filter(|s| !s.needs_auth).collect(),
            _ => selected,
        };
        if !matches!(self, Role::Plain) {
            specs.push(&EDGE);
        }
        specs
    }

    /// The user `plant up` itself connects as: the admin at a hub, the site's agent at a site.
    pub fn admin_user(&self) -> &'static str {
        if self.is_site() { "edge" } else { "admin" }
    }

    /// The nats-server template: the hub's, renamed for a site.
    pub fn template(&self) -> Option<String> {
        match self {
            Role::Site { site, .. } => Some(
                plantd_shared::nats_server::HUB_TEMPLATE
                    .replace(
                        "server_name: plantd-hub",
                        &format!("server_name: plantd-edge-{site}"),
                    )
                    .replace("domain: hub", &format!("domain: {site}")),
            ),
            _ => None,
        }
    }

    /// Server configuration beyond operator mode: the hub's leaf-node listener.
    pub fn server_config(&self) -> String {
        match self {
            Role::Hub { listen, tls, .. } => {
                let tls = tls.as_ref().map_or(String::new(), |(cert, key)| {
                    format!(
                        "  tls {{\n    cert_file: \"{}\"\n    key_file: \"{}\"\n  }}\n",
                        cert.display(),
                        key.display()
                    )
                });
                format!(
                    "\n# Edge sites' leaf-node links (plant up --leaf-listen).\nleafnodes {{\n  listen: \"{listen}\"\n  no_advertise: true\n{tls}}}\n"
                )
            }
            _ => String::new(),
        }
    }

    /// The edge service's settings.
    pub fn edge_settings(&self, auth: Option<&UpAuth>) -> anyhow::Result<Vec<String>> {
        let auth = auth.ok_or_else(|| anyhow::anyhow!("edge links need operator mode"))?;
        Ok(match self {
            Role::Site { site, .. } => vec![
                format!("nats_creds={}", auth.creds("edge")?.display()),
                "role=site".into(),
                format!("site={site}"),
                format!("sys_creds={}", auth.creds("sys")?.display()),
            ],
            Role::Hub { sites_dir, .. } => vec![
                format!("nats_creds={}", auth.creds("admin")?.display()),
                "role=hub".into(),
                format!("sites_dir={}", sites_dir.display()),
            ],
            Role::Plain => Vec::new(),
        })
    }
}

/// `path` made absolute, refused if it is not a readable file or cannot go into a nats-server
/// config string.
fn absolute_file(path: &Path) -> anyhow::Result<std::path::PathBuf> {
    let path =
        std::fs::canonicalize(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let text = path.to_string_lossy();
    anyhow::ensure!(
        path.is_file() && !text.contains(['"', '\\', '\n']),
        "{} must be a file whose path has no '\"', '\\' or line break",
        path.display()
    );
    Ok(path)
}
