//! Rendering a nats-server template the way `plant up` does.
//!
//! Templates in `nats/` are nats-server config with `{{port}}` and `{{data_dir}}` filled by plain
//! string replacement (nats/README.md explains why). The harness appends only what it needs to
//! observe the server (`ports_file_dir`) and what a test asks for, so the configuration under
//! test is the one plantd ships. A placeholder left unfilled on a non-comment line is an error
//! naming it, rather than a server started on a literal `{{…}}`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The workspace's `nats/` dir, where the templates live.
pub(super) fn nats_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nats")
}

/// Fills the template's placeholders and appends the harness's own settings.
pub(super) fn render(
    template: &str,
    port: u16,
    data_dir: &Path,
    ports_dir: &Path,
    extra: &str,
) -> anyhow::Result<String> {
    let data_dir = quotable(data_dir)?;
    let ports_dir = quotable(ports_dir)?;
    let body = template
        .replace("{{port}}", &port.to_string())
        .replace("{{data_dir}}", data_dir)
        // The launcher's own extra configuration slot; the harness appends `extra` below.
        .replace("{{extra}}", "");
    if let Some(line) = body.lines().find(|line| {
        let line = line.trim_start();
        line.contains("{{") && !line.starts_with('#') && !line.starts_with("//")
    }) {
        bail!("template has a placeholder the harness does not fill: {line:?}");
    }
    Ok(format!(
        "{body}\n# added by the plantd-tests harness\nports_file_dir: \"{ports_dir}\"\n{extra}\n"
    ))
}

/// The path as text that can sit inside a double-quoted nats-server config string.
fn quotable(path: &Path) -> anyhow::Result<&str> {
    let text = path
        .to_str()
        .with_context(|| format!("path {} is not UTF-8", path.display()))?;
    if text.contains(['"', '\\', '\n']) {
        bail!("path {text:?} cannot go in a nats-server config string");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_hub_template() {
        let template =
            std::fs::read_to_string(nats_dir().join("hub.conf.template")).expect("template");
        let config = render(
            &template,
            4567,
            Path::new("/d"),
            Path::new("/p"),
            "debug: true",
        )
        .expect("renders");
        assert!(config.contains("listen: 127.0.0.1:4567"), "{config}");
        assert!(config.contains("store_dir: \"/d\""), "{config}");
        assert!(config.contains("ports_file_dir: \"/p\""), "{config}");
        assert!(config.trim_end().ends_with("debug: true"), "{config}");
    }

    #[test]
    fn refuses_unfilled_placeholders_and_unquotable_paths() {
        let err = render(
            "http: {{http_port}}",
            1,
            Path::new("/d"),
            Path::new("/p"),
            "",
        )
        .expect_err("unfilled placeholder");
        assert!(err.to_string().contains("{{http_port}}"), "{err}");
        render("x: 1", 1, Path::new("/d\"x"), Path::new("/p"), "").expect_err("quote in path");
    }
}
