//! Which of a module's requirements some running instance meets, from `$SRV.INFO`.
//!
//! Requirements are resolved from discovery rather than from the registry: every instance
//! answers `$SRV.INFO` while it serves, with its capabilities in metadata
//! ([`super::spec::PROVIDES_METADATA`]), and needs no JetStream rights to be found. An instance
//! that stops serving (drained, crashed) stops answering, so a requirement it met becomes
//! missing again at the next check.

use std::time::Duration;

use super::spec::{Capability, PROVIDES_METADATA, Requirement, parse_list};
use crate::micro::{gather::gather, protocol::InfoResponse};

/// How long one discovery round waits for the first answer.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_millis(750);

/// The requirements of `requires` that no instance in `instances` provides, keeping order.
/// Instances with unreadable metadata are ignored (they provide nothing plantd can use).
pub fn missing<'a>(
    requires: &'a [Requirement],
    instances: &[InfoResponse],
) -> Vec<&'a Requirement> {
    let provided: Vec<Capability> = instances
        .iter()
        .filter_map(|info| info.metadata.get(PROVIDES_METADATA))
        .filter_map(|list| parse_list(list, Capability::parse).ok())
        .flatten()
        .collect();
    requires
        .iter()
        .filter(|req| !provided.iter().any(|cap| req.is_met_by(cap)))
        .collect()
}

/// Asks every instance for `$SRV.INFO` and returns the requirements none meets.
pub async fn check(
    client: &async_nats::Client,
    requires: &[Requirement],
) -> Result<Vec<Requirement>, async_nats::Error> {
    if requires.is_empty() {
        return Ok(Vec::new());
    }
    let instances: Vec<InfoResponse> = gather(client, "INFO", None, DISCOVERY_TIMEOUT).await?;
    Ok(missing(requires, &instances).into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn instance(provides: &str) -> InfoResponse {
        InfoResponse {
            kind: String::new(),
            name: "x".into(),
            id: "1".into(),
            version: "1.0.0".into(),
            metadata: BTreeMap::from([(PROVIDES_METADATA.to_string(), provides.to_string())]),
            description: String::new(),
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn a_requirement_is_met_by_any_instance_in_range() {
        let requires = parse_list("echo@^0.1, clock@>=2", Requirement::parse).unwrap();
        let none: Vec<InfoResponse> = Vec::new();
        assert_eq!(missing(&requires, &none).len(), 2);
        let some = [instance("echo@0.1.4"), instance("clock@1.9.0")];
        let left: Vec<String> = missing(&requires, &some)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(left, ["clock@>=2"]);
        let all = [instance("echo@0.1.4"), instance("clock@1.9.0,clock@2.0.1")];
        assert!(missing(&requires, &all).is_empty());
    }

    #[test]
    fn unreadable_metadata_provides_nothing() {
        let requires = parse_list("echo", Requirement::parse).unwrap();
        let mut bare = instance("");
        bare.metadata.clear();
        assert_eq!(
            missing(
                &requires,
                &[instance("echo@x"), bare, instance("not a list")]
            )
            .len(),
            1
        );
    }
}
