//! `plant modules ls|deps|graph|drain|replace`: who provides what, what is missing, and
//! draining or replacing an instance without failing a request.
//!
//! The view comes from the module registry (`plantd-registry`, with health and phase), which
//! needs JetStream rights only admins have; anyone else gets the same view from `$SRV.INFO`
//! metadata, without health (shown as `?`). See `plantd_shared::module`.

use std::{collections::BTreeSet, io::Write, time::Duration};

use anyhow::Context as _;
use plantd_shared::{
    micro::protocol::InfoResponse,
    module::{
        drain_subject,
        registry::{self, Declaration},
        spec::{Capability, PROVIDES_METADATA, REQUIRES_METADATA, Requirement, parse_list},
    },
};
use serde::Serialize;

use super::services::gather;
use crate::{context::GlobalArgs, output};

/// Arguments of `plant modules`.
#[derive(Debug, clap::Args)]
pub struct ModulesArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Every module instance: version, health, phase, what it provides and misses.
    Ls,
    /// Each requirement of each instance and who meets it (or MISSING).
    Deps,
    /// The dependency graph: text, or Graphviz DOT with --dot.
    Graph {
        /// Print Graphviz DOT instead of text.
        #[arg(long)]
        dot: bool,
    },
    /// Drain one instance: it stops taking requests, finishes in-flight ones and exits.
    Drain {
        /// Module name.
        name: String,
        /// Instance id (from `plant modules ls`).
        id: String,
    },
    /// Replace instance OLD by NEW: wait until NEW serves healthy, then drain OLD.
    Replace {
        /// Module name.
        name: String,
        /// The instance to retire.
        #[arg(long)]
        old: String,
        /// The instance taking over (already started).
        #[arg(long)]
        new: String,
        /// How long to wait for NEW to be healthy and for OLD to leave.
        #[arg(long, default_value = "60s", value_parser = crate::context::parse_duration)]
        wait: Duration,
    },
}

/// One instance as the commands show it.
#[derive(Debug, Clone, Serialize)]
struct Instance {
    name: String,
    id: String,
    version: String,
    health: String,
    phase: String,
    reason: String,
    provides: Vec<String>,
    requires: Vec<String>,
    health_url: String,
}

impl From<Declaration> for Instance {
    fn from(d: Declaration) -> Instance {
        Instance {
            name: d.name,
            id: d.id,
            version: d.version,
            health: d.health,
            phase: d.phase,
            reason: d.reason,
            provides: d.provides,
            requires: d.requires,
            health_url: d.health_url,
        }
    }
}

/// A requirement and who meets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Dependency {
    module: String,
    id: String,
    requires: String,
    /// `name@version (id)` of every instance that meets it; empty = missing.
    providers: Vec<String>,
}

impl ModulesArgs {
    /// Runs the verb.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let client = global.connect().await?;
        match self.verb {
            Verb::Ls => {
                let instances = instances(&client, global.timeout).await?;
                let rows = instances
                    .iter()
                    .map(|i| {
                        vec![
                            i.name.clone(),
                            i.version.clone(),
                            i.id.clone(),
                            i.health.clone(),
                            i.phase.clone(),
                            i.provides.join(","),
                            i.reason.clone(),
                        ]
                    })
                    .collect();
                let headers = [
                    "NAME", "VERSION", "ID", "HEALTH", "PHASE", "PROVIDES", "REASON",
                ];
                output::render(out, global.output, &instances, &headers, rows)?;
            }
            Verb::Deps => {
                let deps = dependencies(&instances(&client, global.timeout).await?);
                let rows = deps
                    .iter()
                    .map(|d| {
                        let met = if d.providers.is_empty() {
                            "MISSING".to_string()
                        } else {
                            d.providers.join(", ")
                        };
                        vec![d.module.clone(), d.id.clone(), d.requires.clone(), met]
                    })
                    .collect();
                let headers = ["MODULE", "ID", "REQUIRES", "MET BY"];
                output::render(out, global.output, &deps, &headers, rows)?;
            }
            Verb::Graph { dot } => {
                let instances = instances(&client, global.timeout).await?;
                let text = if dot {
                    graph_dot(&instances)
                } else {
                    graph_text(&instances)
                };
                write!(out, "{text}")?;
            }
            Verb::Drain { name, id } => {
                drain(&client, &name, &id, global.timeout).await?;
                writeln!(out, "{name} {id} is draining")?;
            }
            Verb::Replace {
                name,
                old,
                new,
                wait,
            } => {
                replace(&client, &name, &old, &new, wait, global.timeout).await?;
                writeln!(out, "{name}: {new} serves, {old} drained and gone")?;
            }
        }
        Ok(())
    }
}

/// Every instance: from the registry, or from `$SRV.INFO` when the registry cannot be read.
async fn instances(
    client: &async_nats::Client,
    timeout: Duration,
) -> anyhow::Result<Vec<Instance>> {
    let js = async_nats::jetstream::new(client.clone());
    match tokio::time::timeout(timeout, registry::list(&js)).await {
        Ok(Ok(found)) => return Ok(found.into_iter().map(Instance::from).collect()),
        Ok(Err(err)) => tracing::debug!(error = %err, "registry unreadable; using $SRV.INFO"),
        Err(_) => tracing::debug!("registry read timed out; using $SRV.INFO"),
    }
    let mut infos: Vec<InfoResponse> = gather(client, "INFO", None, timeout).await?;
    infos.retain(|i| i.metadata.contains_key(PROVIDES_METADATA));
    infos.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(infos.into_iter().map(from_info).collect())
}

fn from_info(info: InfoResponse) -> Instance {
    let list = |key: &str| -> Vec<String> {
        info.metadata
            .get(key)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Instance {
        provides: list(PROVIDES_METADATA),
        requires: list(REQUIRES_METADATA),
        health_url: info.metadata.get("health_url").cloned().unwrap_or_default(),
        name: info.name,
        id: info.id,
        version: info.version,
        health: "?".into(),
        phase: "serving".into(),
        reason: "health needs registry rights (admin)".into(),
    }
}

/// Each requirement of each instance, with the instances that meet it.
fn dependencies(instances: &[Instance]) -> Vec<Dependency> {
    let mut deps = Vec::new();
    for instance in instances {
        for text in &instance.requires {
            let Ok(requirement) = Requirement::parse(text) else {
                continue;
            };
            let providers = instances
                .iter()
                .filter(|p| p.phase != "draining")
                .flat_map(|p| {
                    let caps =
                        parse_list(&p.provides.join(","), Capability::parse).unwrap_or_default();
                    caps.into_iter()
                        .filter(|c| requirement.is_met_by(c))
                        .map(|c| format!("{}@{} ({} {})", c.name, c.version, p.name, p.id))
                        .collect::<Vec<_>>()
                })
                .collect();
            deps.push(Dependency {
                module: instance.name.clone(),
                id: instance.id.clone(),
                requires: requirement.to_string(),
                providers,
            });
        }
    }
    deps
}

/// Module-level edges: `(module, requirement, Some(provider module) | None)`, deduplicated.
fn edges(instances: &[Instance]) -> BTreeSet<(String, String, Option<String>)> {
    let mut edges = BTreeSet::new();
    for dep in dependencies(instances) {
        if dep.providers.is_empty() {
            edges.insert((dep.module, dep.requires, None));
            continue;
        }
        for provider in dep.providers {
            let module = provider
                .split_once(" (")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            edges.insert((dep.module.clone(), dep.requires.clone(), Some(module)));
        }
    }
    edges
}

fn graph_text(instances: &[Instance]) -> String {
    let modules: BTreeSet<&str> = instances.iter().map(|i| i.name.as_str()).collect();
    let edges = edges(instances);
    let mut text = String::new();
    for module in modules {
        let mine: Vec<_> = edges.iter().filter(|(m, _, _)| m == module).collect();
        if mine.is_empty() {
            text.push_str(&format!("{module}\n"));
        }
        for (_, requirement, provider) in mine {
            match provider {
                Some(p) => text.push_str(&format!("{module} -> {p}  ({requirement})\n")),
                None => text.push_str(&format!("{module} -> MISSING  ({requirement})\n")),
            }
        }
    }
    text
}

fn graph_dot(instances: &[Instance]) -> String {
    let modules: BTreeSet<&str> = instances.iter().map(|i| i.name.as_str()).collect();
    let mut text = String::from("digraph plantd_modules {\n  rankdir=LR;\n");
    for module in modules {
        text.push_str(&format!("  {module:?};\n"));
    }
    for (module, requirement, provider) in edges(instances) {
        match provider {
            Some(p) => text.push_str(&format!("  {module:?} -> {p:?} [label={requirement:?}];\n")),
            None => {
                let missing = format!("missing: {requirement}");
                text.push_str(&format!(
                    "  {missing:?} [shape=box, style=dashed, color=red];\n  {module:?} -> {missing:?} [color=red];\n"
                ));
            }
        }
    }
    text.push_str("}\n");
    text
}

async fn drain(
    client: &async_nats::Client,
    name: &str,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let subject = drain_subject(name, id);
    let request = async_nats::Request::new().timeout(Some(timeout));
    client
        .send_request(subject.clone(), request)
        .await
        .with_context(|| format!("no instance {id} of {name} answered on {subject}"))?;
    Ok(())
}

async fn replace(
    client: &async_nats::Client,
    name: &str,
    old: &str,
    new: &str,
    wait: Duration,
    timeout: Duration,
) -> anyhow::Result<()> {
    anyhow::ensure!(old != new, "--old and --new are the same instance {old}");
    let js = async_nats::jetstream::new(client.clone());
    let deadline = tokio::time::Instant::now() + wait;
    let find =
        |all: &[Declaration], id: &str| all.iter().find(|d| d.name == name && d.id == id).cloned();
    let mut last = String::from("not registered yet");
    loop {
        let all = registry::list(&js)
            .await
            .context("cannot read the module registry (admin creds needed)")?;
        anyhow::ensure!(
            find(&all, old).is_some(),
            "{name} has no instance {old} in the registry"
        );
        match find(&all, new) {
            Some(d) if d.phase == "serving" && d.health == "pass" => break,
            Some(d) => last = format!("{} {} ({})", d.phase, d.health, d.reason),
            None => {}
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{name} {new} did not become healthy within {wait:?}: {last}; {old} left running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drain(client, name, old, timeout).await?;
    loop {
        let all = registry::list(&js).await?;
        if find(&all, old).is_none() {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{name} {old} was asked to drain but is still registered after {wait:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, provides: &[&str], requires: &[&str]) -> Instance {
        Instance {
            name: name.into(),
            id: format!("{name}1"),
            version: "0.1.0".into(),
            health: "pass".into(),
            phase: "serving".into(),
            reason: String::new(),
            provides: provides.iter().map(|s| s.to_string()).collect(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
            health_url: String::new(),
        }
    }

    #[test]
    fn deps_show_who_meets_what_and_what_is_missing() {
        let all = [
            instance("echo", &["echo@0.1.0"], &[]),
            instance("oven", &["oven@1.0.0"], &["echo@^0.1", "clock@^2"]),
        ];
        let deps = dependencies(&all);
        assert_eq!(deps.len(), 2);
        assert_eq!(deps[0].providers, ["echo@0.1.0 (echo echo1)"]);
        assert!(deps[1].providers.is_empty());
        assert_eq!(
            graph_text(&all),
            "echo\noven -> MISSING  (clock@^2)\noven -> echo  (echo@^0.1)\n"
        );
        let dot = graph_dot(&all);
        assert!(dot.starts_with("digraph plantd_modules {"), "{dot}");
        assert!(
            dot.contains("\"oven\" -> \"echo\" [label=\"echo@^0.1\"];"),
            "{dot}"
        );
        assert!(dot.contains("\"missing: clock@^2\" [shape=box"), "{dot}");
    }

    #[test]
    fn a_draining_instance_meets_nothing() {
        let mut echo = instance("echo", &["echo@0.1.0"], &[]);
        echo.phase = "draining".into();
        let all = [echo, instance("oven", &[], &["echo"])];
        assert!(dependencies(&all)[0].providers.is_empty());
    }
}
