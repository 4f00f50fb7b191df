//! The edge service's settings: which side it runs on and who the other side is.

use plantd_shared::config::CommonConfig;
use serde::{Deserialize, Serialize};

/// The hub's JetStream domain (`jetstream.domain` in `nats/hub.conf.template`).
pub const HUB_DOMAIN: &str = "hub";

/// Configuration of the edge service (`PLANTD_EDGE_<SETTING>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EdgeConfig {
    /// Settings every service has.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// `hub` or `site`.
    pub role: String,
    /// At a site: its name, which is also its JetStream domain.
    pub site: String,
    /// At the hub: the sites, comma-separated.
    pub sites: String,
    /// At the hub: a directory whose file names are more sites (`plant edge init` adds one);
    /// re-read every `link_check_ms`, so a new site is picked up without a restart.
    pub sites_dir: String,
    /// How often the link is probed, in milliseconds.
    pub link_check_ms: u64,
    /// At a site: creds of a SYS-account user of the site's own server, used to apply the
    /// hub's account JWT (revocations) there; empty turns that off.
    pub sys_creds: String,
    /// At a site: how often the hub's account JWT is fetched while the link is up, in ms.
    pub account_sync_ms: u64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            common: CommonConfig::default(),
            role: "hub".into(),
            site: String::new(),
            sites: String::new(),
            sites_dir: String::new(),
            link_check_ms: 1_000,
            sys_creds: String::new(),
            account_sync_ms: 5_000,
        }
    }
}

/// Whether `name` can be a site: a JetStream domain, stream-name part and subject token.
pub fn valid_site(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name != HUB_DOMAIN
}

impl EdgeConfig {
    /// The sites of a hub named in `sites`.
    pub fn site_list(&self) -> Vec<String> {
        self.sites
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The sites of a hub: `sites` plus the valid file names in `sites_dir`, sorted.
    pub fn all_sites(&self) -> Vec<String> {
        let mut sites = self.site_list();
        if !self.sites_dir.is_empty()
            && let Ok(entries) = std::fs::read_dir(&self.sites_dir)
        {
            sites.extend(
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|s| valid_site(s)),
            );
        }
        sites.sort();
        sites.dedup();
        sites
    }

    /// Every bad setting, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let site_rule = "lowercase letters, digits and '-', starting with a letter, not `hub`";
        match self.role.as_str() {
            "hub" => {
                for site in self.site_list() {
                    if !valid_site(&site) {
                        problems.push(format!("sites: {site:?}: use {site_rule}"));
                    }
                }
            }
            "site" => {
                if !valid_site(&self.site) {
                    problems.push(format!("site: {:?}: use {site_rule}", self.site));
                }
            }
            other => problems.push(format!("role: {other:?}: use `hub` or `site`")),
        }
        if self.link_check_ms < 100 {
            problems.push("link_check_ms: use at least 100".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_site_names_are_checked() {
        let hub = EdgeConfig {
            sites: "site1, plant-2".into(),
            ..EdgeConfig::default()
        };
        assert!(hub.problems().is_empty());
        assert_eq!(hub.site_list(), ["site1", "plant-2"]);
        let bad = EdgeConfig {
            role: "site".into(),
            site: "hub".into(),
            link_check_ms: 10,
            ..EdgeConfig::default()
        };
        let problems = bad.problems();
        assert!(problems[0].starts_with("site:") && problems[1].starts_with("link_check_ms"));
        for name in ["Site", "1a", "a.b", "a_b", ""] {
            assert!(!valid_site(name), "{name}");
        }
        let role = EdgeConfig {
            role: "spoke".into(),
            ..EdgeConfig::default()
        };
        assert!(role.problems()[0].starts_with("role:"));
    }
}
