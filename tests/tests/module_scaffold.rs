//! `plant module new` end to end: scaffold a module into a copy of this workspace, build and
//! test it with cargo, run it, and find it with `plant modules ls` and a request.
//!
//! The copy holds the tracked files of this checkout (`git ls-files`), so the scaffolded crate
//! builds against exactly this SDK and `Cargo.lock`, offline. Under cargo-nextest (which builds
//! before it runs tests and holds no cargo lock while they run) the copy builds in this run's
//! own target dir, reusing every compiled dependency; under plain `cargo test`, whose lock is
//! held while tests run, it builds in `<target>/scaffold` instead (slower the first time).

mod foundation;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use foundation::{DEADLINE, no_env, plant};
use plantd_tests::{ChildProcess, NatsServer, eventually};

/// The checkout this test belongs to.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The target dir of this run: `<target>/<profile>/deps/<this test>`.
fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .context("test executable is not in <target>/<profile>/deps")
}

/// Copies the tracked files of the checkout into `to`.
fn copy_checkout(to: &Path) -> anyhow::Result<usize> {
    let root = repo_root();
    let listed = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("cannot run git ls-files (this test needs a git checkout)")?;
    anyhow::ensure!(listed.status.success(), "git ls-files failed");
    let mut copied = 0;
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name)?;
        let (from, dest) = (root.join(name), to.join(name));
        if !from.is_file() {
            continue; // deleted in the work tree but not yet committed
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&from, &dest).with_context(|| format!("cannot copy {name}"))?;
        copied += 1;
    }
    Ok(copied)
}

#[tokio::test]
async fn a_scaffolded_module_builds_passes_its_tests_and_registers() -> anyhow::Result<()> {
    let copy = tempfile::tempdir()?;
    let workspace = copy.path();
    let files = copy_checkout(workspace)?;
    let manifest_before = std::fs::read_to_string(workspace.join("Cargo.toml"))?;
    let ws = workspace.to_str().context("UTF-8 temp dir")?;

    let bad = plant(&["module", "new", "Oven_1", "--workspace", ws]).await?;
    assert!(
        !bad.ok && bad.stderr.contains("lowercase"),
        "{}",
        bad.stderr
    );
    let made = plant(&["module", "new", "oven", "--workspace", ws]).await?;
    assert!(made.ok, "{}", made.stderr);
    println!(
        "plant module new oven ({files} files copied):\n{}",
        made.stdout
    );
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml"))?;
    assert!(manifest.contains("\"services/oven\""), "{manifest}");
    let again = plant(&["module", "new", "oven", "--workspace", ws]).await?;
    assert!(
        !again.ok && again.stderr.contains("already exists"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("Cargo.toml"))?,
        manifest,
        "a refused scaffold changes nothing"
    );
    assert_ne!(manifest, manifest_before);

    let target = if std::env::var_os("NEXTEST").is_some() {
        target_dir()?
    } else {
        target_dir()?.join("scaffold")
    };
    for verb in ["build", "test"] {
        let started = std::time::Instant::now();
        let status = tokio::process::Command::new(env!("CARGO"))
            .args([verb, "--offline", "-p", "plantd-oven"])
            .current_dir(workspace)
            .env("CARGO_TARGET_DIR", &target)
            .kill_on_drop(true)
            .status()
            .await?;
        println!(
            "cargo {verb} -p plantd-oven: {status} in {:?}",
            started.elapsed()
        );
        assert!(
            status.success(),
            "cargo {verb} of the scaffolded module failed"
        );
    }

    let server = NatsServer::start().await?;
    let binary = target.join("debug").join("plantd-oven");
    let _oven = ChildProcess::spawn(
        &binary,
        [
            "--set".to_string(),
            format!("nats_url={}", server.url()),
            "--set".into(),
            "log_ship=false".into(),
        ],
        no_env(),
    )?;
    let url = server.url();
    let url = url.as_str();
    let listed = eventually(DEADLINE, || async move {
        let ls = plant(&["--server", url, "modules", "ls"]).await?;
        anyhow::ensure!(
            ls.stdout.contains("oven@0.1.0") && ls.stdout.contains("pass"),
            "{}",
            ls.stdout
        );
        Ok(ls.stdout)
    })
    .await?;
    println!("plant modules ls:\n{listed}");
    let hello = plant(&[
        "--server",
        url,
        "req",
        "plantd.oven.hello",
        r#"{"name":"plant"}"#,
    ])
    .await?;
    assert!(
        hello.ok && hello.stdout.contains("hello, plant"),
        "{}{}",
        hello.stdout,
        hello.stderr
    );
    Ok(())
}
