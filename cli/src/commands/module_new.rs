//! `plant module new NAME`: scaffold a module crate that builds, passes its tests, and shows
//! up in `plant modules ls` when run.
//!
//! The crate goes to `services/NAME` of the enclosing Cargo workspace (found from the current
//! directory, or `--workspace`) and is added to its `members`. It is the shape of the echo
//! module on the SDK: settings, one typed endpoint with a unit-tested handler, `run`. Nothing
//! is written if anything is wrong (bad name, crate already there, no workspace), and the
//! crate directory is written in full before the workspace is edited.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

/// Arguments of `plant module`.
#[derive(Debug, clap::Args)]
pub struct ModuleArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create `services/NAME`, a module crate, and add it to the workspace.
    New {
        /// Module name: lowercase letters, digits and '-', starting with a letter.
        name: String,
        /// The workspace root (default: the nearest parent with a [workspace] Cargo.toml).
        #[arg(long, value_name = "DIR")]
        workspace: Option<PathBuf>,
    },
}

const TEMPLATES: [(&str, &str); 3] = [
    (
        "Cargo.toml",
        include_str!("module_template/Cargo.toml.tmpl"),
    ),
    ("src/main.rs", include_str!("module_template/main.rs.tmpl")),
    ("src/lib.rs", include_str!("module_template/lib.rs.tmpl")),
];

impl ModuleArgs {
    /// Runs the verb.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let Verb::New { name, workspace } = self.verb;
        check_name(&name)?;
        let root = match workspace {
            Some(dir) => dir,
            None => find_workspace(&std::env::current_dir()?)?,
        };
        let manifest = root.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let member = format!("services/{name}");
        let edited = add_member(&text, &member)
            .with_context(|| format!("{} is not a workspace manifest", manifest.display()))?;
        let dir = root.join(&member);
        anyhow::ensure!(!dir.exists(), "{} already exists", dir.display());
        write_crate(&dir, &name)?;
        std::fs::write(&manifest, edited)
            .with_context(|| format!("cannot add {member} to {}", manifest.display()))?;
        writeln!(
            out,
            "created {} (crate plantd-{name}) and added it to the workspace\n\
             build and test:  cargo test -p plantd-{name}\n\
             run:             cargo run -p plantd-{name} -- --set nats_url=nats://127.0.0.1:4222\n\
             see it:          plant modules ls",
            dir.display()
        )?;
        Ok(())
    }
}

/// A module name that is also a good crate name and subject token.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 32;
    anyhow::ensure!(
        ok,
        "name {name:?}: use 1-32 lowercase letters, digits and '-', starting with a letter"
    );
    Ok(())
}

fn find_workspace(start: &Path) -> anyhow::Result<PathBuf> {
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("[workspace]")) {
            return Ok(dir.to_path_buf());
        }
    }
    anyhow::bail!(
        "no Cargo workspace above {}; run inside the plantd checkout or pass --workspace",
        start.display()
    )
}

/// The manifest with `member` appended to `[workspace] members`; `None` when there is no
/// such list.
fn add_member(manifest: &str, member: &str) -> Option<String> {
    let start = manifest.find("[workspace]")?;
    let list = start + manifest[start..].find("members")?;
    let open = list + manifest[list..].find('[')?;
    let close = open + manifest[open..].find(']')?;
    let body = manifest[open + 1..close].trim_end();
    let separator = if body.trim().is_empty() || body.ends_with(',') {
        ""
    } else {
        ","
    };
    Some(format!(
        "{}{separator}\n    \"{member}\",\n{}",
        &manifest[..open + 1 + body.len()],
        &manifest[close..]
    ))
}

fn render(template: &str, name: &str) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{ident}}", &name.replace('-', "_"))
        .replace("{{env}}", &name.replace('-', "_").to_ascii_uppercase())
}

fn write_crate(dir: &Path, name: &str) -> anyhow::Result<()> {
    let staging = dir.with_extension("new");
    let _ = std::fs::remove_dir_all(&staging);
    for (path, template) in TEMPLATES {
        let file = staging.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&file, render(template, name))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    std::fs::rename(&staging, dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_and_subject_safe() {
        for good in ["oven", "oven-2", "a"] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            "Oven",
            "2oven",
            "oven.x",
            "oven_x",
            "oven-",
            &"a".repeat(33),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_member_is_appended_to_the_list() {
        let manifest = "[workspace]\nresolver = \"3\"\nmembers = [\n    \"shared\",\n    \"cli\",\n]\n\n[workspace.package]\n";
        let edited = add_member(manifest, "services/oven").unwrap();
        assert_eq!(
            edited,
            "[workspace]\nresolver = \"3\"\nmembers = [\n    \"shared\",\n    \"cli\",\n    \"services/oven\",\n]\n\n[workspace.package]\n"
        );
        let inline = add_member("[workspace]\nmembers = [\"a\"]\n", "b").unwrap();
        assert_eq!(inline, "[workspace]\nmembers = [\"a\",\n    \"b\",\n]\n");
        assert!(add_member("[package]\nname = \"x\"\n", "b").is_none());
    }

    #[test]
    fn templates_fill_every_placeholder() {
        for (_, template) in TEMPLATES {
            let text = render(template, "oven-driver");
            assert!(!text.contains("{{"), "{text}");
        }
        assert!(render(TEMPLATES[1].1, "oven-driver").contains("plantd_oven_driver::MODULE"));
        assert!(render(TEMPLATES[2].1, "oven-driver").contains("PLANTD_OVEN_DRIVER_"));
    }
}
