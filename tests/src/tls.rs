//! Certificates for tests of TLS listeners (the web-api bridge over HTTPS, edge leaf links).

use std::path::{Path, PathBuf};

/// Makes a self-signed P-256 certificate for 127.0.0.1, valid one day, with `openssl`:
/// `(<dir>/<name>.pem, <dir>/<name>-key.pem)`. The certificate is its own CA.
pub async fn self_signed_cert(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    let made = tokio::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .await?;
    anyhow::ensure!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    Ok((cert, key))
}
