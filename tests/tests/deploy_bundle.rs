//! The deployment bundle, checked offline: the systemd units pass `systemd-analyze verify`
//! for every service instance and score as well hardened (`systemd-analyze security`),
//! `deploy/release.sh` makes one archive with the binaries, completions, man pages and units,
//! and the Kubernetes and compose bundles pass third-party schema validation
//! (tests/python/deploy_check.py: kubernetes-validate, the compose-spec schema).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use plantd_tests::{bin_path, nats_server_binary};

/// The service instances of `plantd@.service` (the binaries' suffixes).
const INSTANCES: [&str; 8] = [
    "logger", "echo", "metric", "state", "bus", "identity", "edge", "web-api",
];

/// The worst `systemd-analyze security` exposure accepted (0 = locked down, 10 = none).
const MAX_EXPOSURE: f64 = 2.0;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .join("deploy")
}

fn systemd_analyze(args: &[&str], units: &[PathBuf]) -> anyhow::Result<std::process::Output> {
    Command::new("systemd-analyze")
        .args(args)
        .args(units)
        .output()
        .context("cannot run systemd-analyze: install systemd (Debian: apt-get install systemd)")
}

#[test]
fn units_verify_and_are_hardened_for_every_service() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let units = deploy_dir().join("systemd");
    let template = std::fs::read_to_string(units.join("plantd@.service"))?;
    let mut checked = Vec::new();
    for instance in INSTANCES {
        // The unit as installed, pointed at this build's binary so `verify` finds it.
        let binary = bin_path(&format!("plantd-{instance}"));
        let unit = dir.path().join(format!("plantd@{instance}.service"));
        std::fs::write(
            &unit,
            template.replace(
                "/usr/local/bin/plantd-%i",
                binary.to_str().context("UTF-8")?,
            ),
        )?;
        checked.push(unit);
    }
    let nats = std::fs::read_to_string(units.join("plantd-nats.service"))?;
    let nats_unit = dir.path().join("plantd-nats.service");
    std::fs::write(
        &nats_unit,
        nats.replace(
            "/usr/local/bin/nats-server",
            nats_server_binary()?.to_str().context("UTF-8")?,
        ),
    )?;
    checked.push(nats_unit);
    let target = dir.path().join("plantd.target");
    std::fs::copy(units.join("plantd.target"), &target)?;
    checked.push(target);

    let verified = systemd_analyze(&["verify"], &checked)?;
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(
        verified.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
    for unit in checked
        .iter()
        .filter(|u| u.extension().is_some_and(|e| e == "service"))
    {
        let security = systemd_analyze(&["security", "--offline=yes"], std::slice::from_ref(unit))?;
        let text = String::from_utf8_lossy(&security.stdout);
        let exposure: f64 = text
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no exposure level in:\n{text}"))?;
        println!(
            "{}: exposure {exposure}",
            unit.file_name().unwrap_or_default().to_string_lossy()
        );
        assert!(
            exposure <= MAX_EXPOSURE,
            "{} exposure {exposure} > {MAX_EXPOSURE}:\n{text}",
            unit.display()
        );
    }
    Ok(())
}

#[test]
fn the_release_archive_holds_binaries_completions_man_pages_and_units() -> anyhow::Result<()> {
    let out = tempfile::tempdir()?;
    let bin_dir = bin_path("plant").parent().context("bin dir")?.to_path_buf();
    let made = Command::new("bash")
        .arg(deploy_dir().join("release.sh"))
        .arg("--out")
        .arg(out.path())
        .arg("--bin-dir")
        .arg(&bin_dir)
        .output()?;
    assert!(
        made.status.success(),
        "release.sh: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let archive = String::from_utf8(made.stdout)?.trim().to_string();
    let listed = Command::new("tar").args(["-tzf", &archive]).output()?;
    let files = String::from_utf8(listed.stdout)?;
    for wanted in [
        "/bin/plant",
        "/bin/plantd-state",
        "/bin/plantd-edge",
        "/share/bash-completion/completions/plant",
        "/share/zsh/site-functions/_plant",
        "/share/fish/vendor_completions.d/plant.fish",
        "/share/man/man1/plant.1",
        "/share/man/man1/plant-edge.1",
        "/lib/systemd/system/plantd@.service",
        "/lib/systemd/system/plantd-nats.service",
        "/lib/systemd/system/plantd.target",
        "/share/plantd/nats/hub.conf.template",
        "/share/plantd/kubernetes/plantd.yaml",
        "/share/plantd/compose/compose.yaml",
        "/share/doc/plantd/docs/deploy.md",
    ] {
        assert!(
            files.lines().any(|f| f.ends_with(wanted)),
            "{archive} holds {wanted}:\n{files}"
        );
    }
    println!("{archive}: {} entries", files.lines().count());
    Ok(())
}

#[tokio::test]
async fn kubernetes_and_compose_bundles_validate() -> anyhow::Result<()> {
    let deploy = deploy_dir();
    plantd_tests::python::run_script(
        "deploy_check.py",
        &[deploy.to_str().context("UTF-8")?],
        &[],
        std::time::Duration::from_secs(120),
        "deploy bundles valid",
        &[],
    )
    .await?;
    Ok(())
}
