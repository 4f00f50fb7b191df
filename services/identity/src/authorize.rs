//! Evaluating NATS permissions the way nats-server does, for `check-permission`.
//!
//! The server is the enforcer; this only answers "would it allow this?" so the CLI and web UI
//! can explain a refusal before it happens. The rules (nats-server `client.go`): a subject is
//! allowed when the allow list is empty or one of its patterns matches, and no deny pattern
//! matches. Patterns use `*` (one token) and `>` (one or more trailing tokens). A subscription
//! subject may itself contain wildcards; it is allowed only if every subject it can match is
//! (a *subset* match: a `*` in the subject needs `*` or `>` in the pattern, a `>` needs `>`).

use crate::claims::{Permission, Permissions};

/// Publish or subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publish to the subject.
    Publish,
    /// Subscribe to the subject (wildcards allowed).
    Subscribe,
}

impl Action {
    /// `publish`/`pub` or `subscribe`/`sub`.
    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "publish" | "pub" => Some(Action::Publish),
            "subscribe" | "sub" => Some(Action::Subscribe),
            _ => None,
        }
    }
}

/// Whether `permissions` allow `action` on `subject`, and why.
pub fn check(permissions: &Permissions, action: Action, subject: &str) -> (bool, String) {
    let (rules, verb) = match action {
        Action::Publish => (&permissions.publish, "publish"),
        Action::Subscribe => (&permissions.subscribe, "subscribe"),
    };
    evaluate(rules, subject, verb)
}

fn evaluate(rules: &Permission, subject: &str, verb: &str) -> (bool, String) {
    if let Some(deny) = rules.deny.iter().find(|p| overlaps(p, subject)) {
        return (
            false,
            format!("{verb} to {subject:?} is denied by {deny:?}"),
        );
    }
    if rules.allow.is_empty() {
        return (true, format!("{verb} is unrestricted"));
    }
    match rules.allow.iter().find(|p| covers(p, subject)) {
        Some(pattern) => (
            true,
            format!("{verb} to {subject:?} is allowed by {pattern:?}"),
        ),
        None => (false, format!("no {verb} permission matches {subject:?}")),
    }
}

/// Whether `pattern` matches every subject `subject` can stand for.
pub fn covers(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(pt), Some(st)) if pt == st && st != "*" && st != ">" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether `pattern` and `subject` can match a common subject (used for deny lists: a
/// subscription that could receive a denied subject is refused).
fn overlaps(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(pt), Some(st)) if pt == st || pt == "*" || st == "*" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_nats() {
        assert!(covers(
            "plantd.state.get.site1.>",
            "plantd.state.get.site1.a"
        ));
        assert!(covers(
            "plantd.state.get.site1.>",
            "plantd.state.get.site1.a.b"
        ));
        assert!(!covers(
            "plantd.state.get.site1.>",
            "plantd.state.get.site1"
        ));
        assert!(covers("plantd.*.get", "plantd.state.get"));
        assert!(!covers("plantd.*.get", "plantd.state.x.get"));
        assert!(covers(">", "anything.at.all"));
        assert!(!covers("a.b", "a.b.c"));
        assert!(!covers("a.b.c", "a.b"));
    }

    #[test]
    fn wildcard_subjects_need_a_wider_pattern() {
        assert!(covers("plantd.bus.>", "plantd.bus.*"));
        assert!(covers("plantd.bus.>", "plantd.bus.>"));
        assert!(!covers("plantd.bus.x.>", "plantd.bus.>"));
        assert!(!covers("plantd.bus.x", "plantd.bus.*"));
        assert!(covers("plantd.*.x", "plantd.*.x"));
    }

    #[test]
    fn deny_wins_and_empty_allow_is_unrestricted() {
        let rules = Permissions {
            publish: Permission {
                allow: vec![],
                deny: vec!["secret.>".into()],
            },
            ..Permissions::default()
        };
        assert!(check(&rules, Action::Publish, "anything").0);
        assert!(!check(&rules, Action::Publish, "secret.x").0);
        let rules = Permissions {
            subscribe: Permission {
                allow: vec![">".into()],
                deny: vec!["secret.x".into()],
            },
            ..Permissions::default()
        };
        assert!(
            !check(&rules, Action::Subscribe, "secret.*").0,
            "could receive secret.x"
        );
        assert!(check(&rules, Action::Subscribe, "public.*").0);
        let (allowed, reason) = check(&Permissions::default(), Action::Subscribe, "x");
        assert!(allowed, "{reason}");
    }
}
