//! Operator mode for `plant up`: the hub trusts only JWTs of this data dir's operator, and
//! every service connects with its own least-privilege creds (DESIGN.md, "Security model").
//!
//! The set-up lives in `<data-dir>/auth`. On first run `plant up` creates it with the identity
//! bootstrap (`plantd_identity::init`, what `plant admin init` runs); afterwards it is reused,
//! so creds handed out earlier keep working across restarts. Only the bootstrap services' own
//! creds are re-issued, when this version grants them other permissions than the set-up holds
//! (an upgrade), before any service starts. The server gets the
//! bootstrap's snippet (`auth/nats-operator.conf`: operator, system account, full resolver,
//! preloaded account JWTs) through the template's `{{extra}}` slot. `plant up --no-auth`
//! skips all of this and runs today's open server.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plantd_identity::bootstrap::{AUTH_DIR, Bootstrap};

/// The operator-mode set-up `plant up` runs with.
#[derive(Debug, Clone)]
pub struct UpAuth {
    /// `<data-dir>/auth`, absolute.
    pub auth_dir: PathBuf,
    /// The nats-server snippet.
    pub snippet: String,
    /// Whether this run created the set-up.
    pub created: bool,
    /// The services whose creds this run re-issued with this version's permissions.
    pub refreshed: Vec<&'static str>,
}

impl UpAuth {
    /// Uses `<data_dir>/auth`, creating it on first run. `data_dir` must be absolute.
    pub fn prepare(data_dir: &Path) -> anyhow::Result<UpAuth> {
        let auth_dir = data_dir.join(AUTH_DIR);
        let created = if auth_dir.exists() {
            false
        } else {
            plantd_identity::init(data_dir, false)
                .context("cannot create the operator-mode set-up (plant admin init)")?;
            true
        };
        let broken = || {
            format!(
                "{} is not a usable identity set-up (recreate it with `plant admin init --force \
                 --data-dir {}`, which re-keys everything, or run `plant up --no-auth`)",
                auth_dir.display(),
                data_dir.display()
            )
        };
        let setup = Bootstrap::open(&auth_dir).with_context(broken)?;
        let refreshed = setup.refresh_service_creds().with_context(broken)?;
        let snippet = std::fs::read_to_string(&setup.server_config)
            .with_context(|| format!("cannot read {}", setup.server_config.display()))
            .with_context(broken)?;
        Ok(UpAuth {
            auth_dir,
            snippet,
            created,
            refreshed,
        })
    }

    /// An edge site's set-up in `<site_dir>/auth`, as `plant edge init` wrote it: the site's
    /// own creds and its server snippet (operator, preloaded accounts, leaf remote).
    pub fn site(site_dir: &Path) -> anyhow::Result<UpAuth> {
        let auth_dir = site_dir.join(AUTH_DIR);
        let conf = auth_dir.join("nats-site.conf");
        let snippet = std::fs::read_to_string(&conf).with_context(|| {
            format!(
                "cannot read {}: make the site with `plant edge init`",
                conf.display()
            )
        })?;
        std::fs::create_dir_all(auth_dir.join("resolver"))?;
        Ok(UpAuth {
            auth_dir,
            snippet,
            created: false,
            refreshed: Vec::new(),
        })
    }

    /// The creds file of bootstrap user `name` (`admin`, `echo`, `state`, `identity`, …).
    pub fn creds(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.auth_dir.join("creds").join(format!("{name}.creds"));
        anyhow::ensure!(
            path.is_file(),
            "no creds for {name} at {}: the set-up in {} predates it; recreate it with \
             `plant admin init --force` (this re-keys everything) or run `plant up --no-auth`",
            path.display(),
            self.auth_dir.display()
        );
        Ok(path)
    }
}
