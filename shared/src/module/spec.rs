//! What a module declares: the capabilities it provides and those it requires.
//!
//! A capability is a name and a SemVer version (`echo@0.1.0`); a requirement is a capability
//! name and a SemVer range (`echo@^0.1`), with Cargo's range syntax. Both travel in two places:
//! the module's `$SRV` metadata (so anyone who may use discovery sees them, people included)
//! and its registry entry ([`super::registry`]). In metadata they are one string each,
//! comma-separated, because ADR-32 metadata values are strings.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::micro::protocol::valid_name;

/// Metadata key listing what an instance provides (`echo@0.1.0,clock@1.2.0`).
pub const PROVIDES_METADATA: &str = "plantd.provides";

/// Metadata key listing what an instance requires (`state@^0.1`).
pub const REQUIRES_METADATA: &str = "plantd.requires";

/// A declaration that cannot be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// `provides`, `requires`, `name` or `version`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl SpecError {
    fn new(field: &'static str, message: impl Into<String>) -> SpecError {
        SpecError {
            field,
            message: message.into(),
        }
    }
}

/// A capability an instance provides: `name@version`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Capability {
    /// Capability name (`^[a-zA-Z0-9_-]+$`), often the module's name.
    pub name: String,
    /// Its version.
    pub version: semver::Version,
}

impl Capability {
    /// Parses `name@version`.
    pub fn parse(text: &str) -> Result<Capability, SpecError> {
        let (name, version) = split_at(text, "provides")?;
        let version = semver::Version::parse(version).map_err(|err| {
            SpecError::new("provides", format!("{text:?}: version {version:?}: {err}"))
        })?;
        Ok(Capability {
            name: name.to_string(),
            version,
        })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// A capability an instance needs: `name@range`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// Capability name.
    pub name: String,
    /// Versions that satisfy it (Cargo syntax: `^1.2`, `>=1, <3`, `*`).
    pub range: semver::VersionReq,
}

impl Requirement {
    /// Parses `name@range`; a bare `name` means any version.
    pub fn parse(text: &str) -> Result<Requirement, SpecError> {
        let (name, range) = if text.contains('@') {
            split_at(text, "requires")?
        } else {
            (check_name(text.trim(), "requires")?, "*")
        };
        let range = semver::VersionReq::parse(range).map_err(|err| {
            SpecError::new("requires", format!("{text:?}: range {range:?}: {err}"))
        })?;
        Ok(Requirement {
            name: name.to_string(),
            range,
        })
    }

    /// Whether `capability` satisfies this requirement.
    pub fn is_met_by(&self, capability: &Capability) -> bool {
        capability.name == self.name && self.range.matches(&capability.version)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.range)
    }
}

fn split_at<'a>(text: &'a str, field: &'static str) -> Result<(&'a str, &'a str), SpecError> {
    let (name, rest) = text
        .trim()
        .split_once('@')
        .ok_or_else(|| SpecError::new(field, format!("{text:?}: expected name@version")))?;
    Ok((check_name(name, field)?, rest.trim()))
}

fn check_name<'a>(name: &'a str, field: &'static str) -> Result<&'a str, SpecError> {
    if valid_name(name) {
        Ok(name)
    } else {
        Err(SpecError::new(
            field,
            format!("capability name {name:?}: use letters, digits, '-' and '_' only"),
        ))
    }
}

/// Parses a comma-separated list with `parse` (empty text: an empty list).
pub fn parse_list<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, SpecError>,
) -> Result<Vec<T>, SpecError> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse)
        .collect()
}

/// Joins items as the metadata string (`a@1.0.0,b@2.0.0`).
pub fn join_list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What a module is: its name and version (as in `$SRV`) and its dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// Module name: micro service name, queue group, subject token.
    pub name: String,
    /// Module version (SemVer).
    pub version: semver::Version,
    /// What it provides.
    pub provides: Vec<Capability>,
    /// What it requires.
    pub requires: Vec<Requirement>,
}

impl ModuleSpec {
    /// A module `name` at `version` that provides the capability `name@version` and requires
    /// nothing; add more with [`ModuleSpec::provides`] and [`ModuleSpec::requires`].
    pub fn new(name: &str, version: &str) -> Result<ModuleSpec, SpecError> {
        check_name(name, "name")?;
        let version = semver::Version::parse(version)
            .map_err(|err| SpecError::new("version", format!("{version:?}: {err}")))?;
        Ok(ModuleSpec {
            name: name.to_string(),
            provides: vec![Capability {
                name: name.to_string(),
                version: version.clone(),
            }],
            version,
            requires: Vec::new(),
        })
    }

    /// Adds provided capabilities (`name@version`, comma-separated).
    pub fn provides(mut self, list: &str) -> Result<ModuleSpec, SpecError> {
        for capability in parse_list(list, Capability::parse)? {
            if !self.provides.contains(&capability) {
                self.provides.push(capability);
            }
        }
        Ok(self)
    }

    /// Adds requirements (`name@range`, comma-separated).
    pub fn requires(mut self, list: &str) -> Result<ModuleSpec, SpecError> {
        for requirement in parse_list(list, Requirement::parse)? {
            if requirement.name == self.name {
                return Err(SpecError::new(
                    "requires",
                    format!("{requirement}: a module cannot require itself"),
                ));
            }
            self.requires.push(requirement);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_and_requirements_parse_and_match() {
        let cap = Capability::parse("echo@0.1.3").unwrap();
        assert_eq!(cap.to_string(), "echo@0.1.3");
        let req = Requirement::parse("echo@^0.1").unwrap();
        assert!(req.is_met_by(&cap));
        assert!(!Requirement::parse("echo@^0.2").unwrap().is_met_by(&cap));
        assert!(!Requirement::parse("clock@*").unwrap().is_met_by(&cap));
        assert!(Requirement::parse("echo").unwrap().is_met_by(&cap));
        assert!(
            Requirement::parse("echo@>=0.1, <1")
                .unwrap()
                .is_met_by(&cap)
        );
    }

    #[test]
    fn bad_declarations_name_the_field() {
        for (text, field) in [
            ("echo", "provides"),
            ("echo@1.0", "provides"),
            ("ec ho@1.0.0", "provides"),
            ("@1.0.0", "provides"),
        ] {
            assert_eq!(Capability::parse(text).unwrap_err().field, field, "{text}");
        }
        for text in ["echo@", "echo@^x", "a.b@1", "e*@1"] {
            assert_eq!(
                Requirement::parse(text).unwrap_err().field,
                "requires",
                "{text}"
            );
        }
        assert_eq!(ModuleSpec::new("echo", "1").unwrap_err().field, "version");
        assert_eq!(ModuleSpec::new("a.b", "1.0.0").unwrap_err().field, "name");
        let err = ModuleSpec::new("echo", "1.0.0")
            .unwrap()
            .requires("echo@^1")
            .unwrap_err();
        assert!(err.message.contains("itself"), "{err}");
    }

    #[test]
    fn lists_round_trip_through_metadata() {
        let spec = ModuleSpec::new("echo", "0.1.0")
            .unwrap()
            .provides("clock@1.2.0, echo@0.1.0")
            .unwrap()
            .requires("state@^0.1,clock")
            .unwrap();
        let provides = join_list(&spec.provides);
        assert_eq!(provides, "echo@0.1.0,clock@1.2.0");
        assert_eq!(
            parse_list(&provides, Capability::parse).unwrap(),
            spec.provides
        );
        let requires = join_list(&spec.requires);
        assert_eq!(requires, "state@^0.1,clock@*");
        assert_eq!(
            parse_list(&requires, Requirement::parse).unwrap(),
            spec.requires
        );
        assert!(parse_list("", Capability::parse).unwrap().is_empty());
    }
}
