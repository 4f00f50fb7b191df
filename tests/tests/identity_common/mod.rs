//! What the identity end-to-end tests (`identity_matrix`, `identity_cli`) share: a hub started
//! with `plant up` in operator mode (the way a developer runs plantd), the `plant` CLI run as a
//! real process (with a password on stdin and its own config dir, so a developer's login never
//! leaks into a test), logins through `plant login`, and connections that collect the server's
//! asynchronous errors, which is where permission refusals arrive.
//!
//! Each test binary includes this module with `mod identity_common;` and uses a different
//! subset of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::Client;
use plantd_tests::{ChildProcess, Signal, bin_path};
use tempfile::TempDir;
use tokio::sync::mpsc;

/// Patience for anything that should happen "soon" (a hub ready, a CLI call done).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How long a refusal or a delivery may take to show.
pub const PROBE_WAIT: Duration = Duration::from_secs(3);

/// Environment every `plant` child gets: no inherited server, creds or data dir.
const CLEARED_ENV: [&str; 4] = [
    "PLANTD_SERVER",
    "PLANTD_CREDS",
    "PLANTD_DATA_DIR",
    "PLANTD_CONFIG_DIR",
];

/// A `plant up` hub in its own temp data dir; stopped with SIGINT (so it stops its children)
/// when dropped.
pub struct Hub {
    /// The data dir (`--data-dir`).
    pub data_dir: PathBuf,
    /// The NATS URL `plant up` printed.
    pub url: String,
    /// The admin creds path `plant up` printed.
    pub admin_creds: PathBuf,
    /// The web UI and HTTP API URL `plant up` printed (empty with `--no-http`).
    pub http_url: String,
    /// What `plant up` printed up to `ready`.
    pub banner: String,
    up: Option<ChildProcess>,
    _dir: TempDir,
}

impl Hub {
    /// Starts `plant up --port 0 --http-port 0` with `extra` arguments and waits for `ready`.
    pub async fn start(extra: &[&str]) -> anyhow::Result<Hub> {
        let dir = tempfile::Builder::new().prefix("plantd-id-").tempdir()?;
        let data_dir = dir.path().join("data");
        Hub::start_in(dir, data_dir, extra).await
    }

    /// [`Hub::start`] on `data_dir` (inside `dir`, which the hub keeps until dropped): how an
    /// edge site made by `plant edge init` is run (`--edge SITE`).
    pub async fn start_in(dir: TempDir, data_dir: PathBuf, extra: &[&str]) -> anyhow::Result<Hub> {
        let data = data_dir.to_str().context("temp dir is UTF-8")?.to_owned();
        let mut args = vec!["up", "--data-dir", &data, "--port", "0", "--http-port", "0"];
        args.extend_from_slice(extra);
        let mut command = std::process::Command::new(bin_path("plant"));
        command.args(&args);
        for name in CLEARED_ENV {
            command.env_remove(name);
        }
        command.env("PLANTD_CONFIG_DIR", dir.path().join("up-config"));
        let mut up = ChildProcess::spawn_command(command)?;
        let banner = plantd_tests::eventually(DEADLINE, || {
            let out = up.stdout();
            let exited = up.try_wait();
            async move {
                if let Some(status) = exited {
                    return Ok(Err(anyhow::anyhow!("plant up exited early with {status}")));
                }
                anyhow::ensure!(out.lines().any(|l| l.starts_with("ready in ")), "not ready");
                Ok(Ok(out))
            }
        })
        .await
        .and_then(|r| r)
        .map_err(|err| {
            err.context(format!(
                "plant up not ready; stdout:\n{}\nstderr:\n{}",
                up.stdout(),
                up.stderr()
            ))
        })?;
        let url = banner
            .lines()
            .find_map(|l| l.strip_prefix("nats "))
            .and_then(|rest| rest.split_whitespace().next())
            .context("no nats line")?
            .to_owned();
        let admin_creds = banner
            .lines()
            .find_map(|l| l.strip_prefix("admin "))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .map(PathBuf::from)
            .unwrap_or_default();
        let http_url = banner
            .lines()
            .find_map(|l| l.strip_prefix("http "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        Ok(Hub {
            data_dir,
            url,
            admin_creds,
            http_url,
            banner,
            up: Some(up),
            _dir: dir,
        })
    }

    /// `<data>/auth`.
    pub fn auth_dir(&self) -> PathBuf {
        self.data_dir.join("auth")
    }

    /// The creds `plant up` issued to `name` (`echo`, `state`, `identity`, `login`, …).
    pub fn creds(&self, name: &str) -> PathBuf {
        self.auth_dir().join("creds").join(format!("{name}.creds"))
    }

    /// Runs `plant --server <url> <args>` with `config_dir` as its config dir.
    pub async fn plant(
        &self,
        config_dir: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> anyhow::Result<Run> {
        let mut full = vec!["--server", &self.url];
        full.extend_from_slice(args);
        plant(config_dir, &full, stdin).await
    }

    /// Runs `plant --server <url> --creds <admin> <args>`; fails unless it exits 0.
    pub async fn admin(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let creds = self.admin_creds.to_str().context("UTF-8 path")?;
        let mut full = vec!["--creds", creds];
        full.extend_from_slice(args);
        let scratch = tempfile::tempdir()?;
        let run = self.plant(scratch.path(), &full, stdin).await?;
        anyhow::ensure!(run.code == 0, "plant {full:?}: {run}");
        Ok(run.stdout)
    }

    /// Creates `user` with `password` and `roles` (`ROLE` or `ROLE@SCOPE`) as the admin.
    pub async fn create_user(
        &self,
        user: &str,
        password: &str,
        roles: &[&str],
    ) -> anyhow::Result<()> {
        let mut args = vec!["user", "create", user, "--password-stdin"];
        for role in roles {
            args.extend(["--role", role]);
        }
        self.admin(&args, Some(&format!("{password}\n"))).await?;
        Ok(())
    }

    /// Logs `user` in through `plant login --password-stdin` into a fresh config dir.
    pub async fn login(&self, user: &str, password: &str) -> anyhow::Result<Login> {
        let config = tempfile::tempdir()?;
        let data = self.data_dir.to_str().context("UTF-8 path")?;
        let run = self
            .plant(
                config.path(),
                &["login", user, "--password-stdin", "--data-dir", data],
                Some(&format!("{password}\n")),
            )
            .await?;
        anyhow::ensure!(run.code == 0, "plant login {user}: {run}");
        Login::read(config, user)
    }

    /// What the hub's services and nats-server logged so far: `(file, text)`.
    pub fn logs(&self) -> Vec<(PathBuf, String)> {
        let mut files = vec![self.data_dir.join("nats").join("nats-server.log")];
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join("logs")) {
            files.extend(entries.filter_map(Result::ok).map(|e| e.path()));
        }
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
            .collect()
    }

    /// Stops `plant up` with SIGINT and waits; returns whether it exited 0.
    pub async fn stop(mut self) -> anyhow::Result<bool> {
        let mut up = self.up.take().context("already stopped")?;
        up.signal(Signal::SIGINT)?;
        let status = up.wait_with_deadline(DEADLINE).await;
        Ok(status.is_some_and(|s| s.success()))
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut up) = self.up.take()
            && up.signal(Signal::SIGINT).is_ok()
            && up.wait_with_deadline_blocking(DEADLINE).is_none()
        {
            let _ = up.kill();
        }
    }
}

/// A finished `plant` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `plant <args>` with `config_dir` as `PLANTD_CONFIG_DIR` and `stdin` piped in, bounded
/// by [`DEADLINE`].
pub async fn plant(config_dir: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<Run> {
    let mut command = plantd_tests::plant_command(args);
    command.env("PLANTD_CONFIG_DIR", config_dir);
    let output = plantd_tests::run_to_end(command, stdin, DEADLINE)
        .await
        .with_context(|| format!("plant {args:?}"))?;
    Ok(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// A login session written by `plant login` into its own config dir.
pub struct Login {
    /// Who.
    pub user: String,
    /// The config dir `plant login` wrote to.
    pub config: TempDir,
    /// `<config>/user.creds`.
    pub creds: PathBuf,
    /// The sidecar's inbox prefix.
    pub inbox_prefix: String,
    /// The granted JWT.
    pub jwt: String,
    /// The sidecar, as JSON.
    pub sidecar: serde_json::Value,
}

impl Login {
    fn read(config: TempDir, user: &str) -> anyhow::Result<Login> {
        let creds = config.path().join("user.creds");
        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(config.path().join("user.json"))?)?;
        let inbox_prefix = sidecar["inbox_prefix"]
            .as_str()
            .context("sidecar has inbox_prefix")?
            .to_owned();
        let jwt = plantd_shared::creds::Creds::read(&creds)?.jwt;
        Ok(Login {
            user: user.to_owned(),
            config,
            creds,
            inbox_prefix,
            jwt,
            sidecar,
        })
    }

    /// Connects as this user (inbox prefix set), forwarding connection events.
    pub async fn connect(&self, url: &str) -> anyhow::Result<(Client, Events)> {
        connect_with_events(url, &self.creds, Some(&self.inbox_prefix)).await
    }
}

/// The events of one connection.
pub use plantd_tests::Events;

/// Connects with `creds` (and `inbox_prefix`), forwarding every event to the returned channel.
pub async fn connect_with_events(
    url: &str,
    creds: &Path,
    inbox_prefix: Option<&str>,
) -> anyhow::Result<(Client, Events)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut options = plantd_shared::creds::auth_options(creds.to_path_buf())
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
            }
        });
    if let Some(prefix) = inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    let client = options.connect(url).await?;
    Ok((client, rx))
}

/// Words in `text` that look like nkey seeds (`S` + key type + 56 base32 characters).
pub fn seeds_in(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == 58
                && w.starts_with('S')
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        })
        .map(str::to_owned)
        .collect()
}

/// Every seed of a set-up (keys and bootstrap creds) and of `extra` creds files.
pub fn known_seeds(auth_dir: &Path, extra: &[&Path]) -> Vec<String> {
    let mut files: Vec<PathBuf> = ["keys", "creds"]
        .iter()
        .filter_map(|d| std::fs::read_dir(auth_dir.join(d)).ok())
        .flat_map(|entries| entries.filter_map(Result::ok).map(|e| e.path()))
        .collect();
    files.extend(extra.iter().map(|p| p.to_path_buf()));
    let mut seeds: Vec<String> = files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| seeds_in(&t))
        .collect();
    seeds.sort();
    seeds.dedup();
    seeds
}
