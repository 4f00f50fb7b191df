//! Every NATS subject plantd uses is built here, never with `format!` at a call site.
//!
//! The operation comes before the resource (`plantd.state.get.<scope>`) so that one NATS
//! permission with a wildcard grants one operation on a subtree (DESIGN.md, wire contract).
//! Scope tokens are validated here too, because a bad token would otherwise turn into a
//! wildcard or an invalid subject.

use thiserror::Error;

/// Root token of every plantd subject.
pub const ROOT: &str = "plantd";

/// Prefix of the NATS micro discovery subjects (ADR-32).
pub const SRV_PREFIX: &str = "$SRV";

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScopeError {
    /// The scope was empty.
    #[error("scope must not be empty")]
    Empty,
    /// One dot-separated token was empty (`a..b`, `.a`, `a.`).
    #[error("scope {scope:?} has an empty token")]
    EmptyToken {
        /// The scope as given.
        scope: String,
    },
    /// A token held a wildcard, whitespace or a control character.
    #[error(
        "scope {scope:?} has an invalid character {ch:?} (no '*', '>', whitespace or control characters)"
    )]
    InvalidChar {
        /// The scope as given.
        scope: String,
        /// The first offending character.
        ch: char,
    },
    /// The scope is longer than [`MAX_SCOPE_BYTES`].
    #[error("scope is {len} bytes, the maximum is {MAX_SCOPE_BYTES}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// Longest scope accepted, in bytes.
pub const MAX_SCOPE_BYTES: usize = 256;

/// Checks a scope: one or more dot-separated tokens, none empty, no `*`, `>`, whitespace or
/// control characters. Reverse-DNS names such as `org.plantd.Service1` are valid scopes.
pub fn validate_scope(scope: &str) -> Result<(), ScopeError> {
    if scope.is_empty() {
        return Err(ScopeError::Empty);
    }
    if scope.len() > MAX_SCOPE_BYTES {
        return Err(ScopeError::TooLong { len: scope.len() });
    }
    for token in scope.split('.') {
        if token.is_empty() {
            return Err(ScopeError::EmptyToken {
                scope: scope.to_string(),
            });
        }
        if let Some(ch) = token
            .chars()
            .find(|c| *c == '*' || *c == '>' || c.is_whitespace() || c.is_control())
        {
            return Err(ScopeError::InvalidChar {
                scope: scope.to_string(),
                ch,
            });
        }
    }
    Ok(())
}

/// `plantd.<module>.<op>`: an endpoint of a module such as echo.
pub fn module_op(module: &str, op: &str) -> String {
    [ROOT, module, op].join(".")
}

/// The state service's subjects.
pub mod state {
    use super::ROOT;

    /// Service name of the state service (micro name and queue group).
    pub const SERVICE: &str = "state";

    /// `plantd.state.<op>.<scope>` for a key operation (`get`, `set`, `delete`, `list`).
    pub fn key_op(op: &str, scope: &str) -> String {
        [ROOT, SERVICE, op, scope].join(".")
    }

    /// `plantd.state.<op>.>`: what a state instance subscribes to for a key operation.
    pub fn key_op_all(op: &str) -> String {
        [ROOT, SERVICE, op, ">"].join(".")
    }

    /// `plantd.state.scope.<op>.<scope>` (`create`, `delete`).
    pub fn scope_op(op: &str, scope: &str) -> String {
        [ROOT, SERVICE, "scope", op, scope].join(".")
    }

    /// `plantd.state.scope.<op>.>`.
    pub fn scope_op_all(op: &str) -> String {
        [ROOT, SERVICE, "scope", op, ">"].join(".")
    }

    /// `plantd.state.scope.list`.
    pub fn scope_list() -> String {
        [ROOT, SERVICE, "scope", "list"].join(".")
    }

    /// Where the server delivers the watches of people: `$PLANTD.watch.<scope>.<token>`.
    ///
    /// The state service, never the watcher, names a watch consumer's deliver subject, and
    /// only inside this prefix, which no person may publish to; a person may only *subscribe*
    /// to it for the scopes it may read (docs/identity.md, "Watching state").
    pub const WATCH_DELIVER_PREFIX: &str = "$PLANTD.watch";

    /// `$PLANTD.watch.<scope>.<token>`: the deliver subject of one watch of `scope`.
    pub fn watch_deliver(scope: &str, token: &str) -> String {
        [WATCH_DELIVER_PREFIX, scope, token].join(".")
    }

    /// `$PLANTD.watch.<scope>.>`: every watch delivery of `scope` and the scopes below it.
    pub fn watch_deliver_subtree(scope: &str) -> String {
        if scope.is_empty() {
            [WATCH_DELIVER_PREFIX, ">"].join(".")
        } else {
            [WATCH_DELIVER_PREFIX, scope, ">"].join(".")
        }
    }

    /// Number of subject tokens before the scope in a key operation subject.
    pub const KEY_OP_PREFIX_TOKENS: usize = 3;

    /// Number of subject tokens before the scope in a scope operation subject.
    pub const SCOPE_OP_PREFIX_TOKENS: usize = 4;
}

/// The identity service's subjects.
pub mod identity {
    use super::ROOT;

    /// Service name of the identity service.
    pub const SERVICE: &str = "identity";

    /// `plantd.identity.<op>` (`login`, `refresh`, `logout`, `whoami`, `check-permission`).
    pub fn op(op: &str) -> String {
        [ROOT, SERVICE, op].join(".")
    }

    /// `plantd.identity.admin.<op…>` (`user.create`, `role.assign`, `creds`, …): admin-only,
    /// enforced by subject permission.
    pub fn admin(op: &str) -> String {
        [ROOT, SERVICE, "admin", op].join(".")
    }

    /// `plantd.identity.admin.>`.
    pub fn admin_all() -> String {
        admin(">")
    }
}

/// Bus subjects: traffic on `plantd.bus.<bus>.<scope…>.<topic…>`, and the bus service's own
/// endpoints on `plantd.buses.…` (a separate token, so no bus name can collide with them).
pub mod bus {
    use super::ROOT;

    /// Second token of bus traffic.
    pub const TRAFFIC: &str = "bus";

    /// Service name of the bus service (micro name, queue group, subject token).
    pub const SERVICE: &str = "buses";

    /// `plantd.bus.<bus>.<topic>`: where a message on `bus` with `topic` (scope first) travels.
    pub fn topic(bus: &str, topic: &str) -> String {
        [ROOT, TRAFFIC, bus, topic].join(".")
    }

    /// `plantd.bus.<bus>.>`: everything on `bus` (what its capture stream holds).
    pub fn all(bus: &str) -> String {
        topic(bus, ">")
    }

    /// `plantd.bus.>`: every bus.
    pub fn every_bus() -> String {
        [ROOT, TRAFFIC, ">"].join(".")
    }

    /// `plantd.buses.replay.>`: replays of every bus and scope.
    pub fn replay_all() -> String {
        [ROOT, SERVICE, "replay", ">"].join(".")
    }

    /// Number of subject tokens before the topic.
    pub const TOPIC_PREFIX_TOKENS: usize = 3;

    /// `plantd.buses.info`.
    pub fn info() -> String {
        [ROOT, SERVICE, "info"].join(".")
    }

    /// `plantd.buses.replay.<bus>.<scope>`: ask for a replay of `bus` under `scope`.
    pub fn replay(bus: &str, scope: &str) -> String {
        [ROOT, SERVICE, "replay", bus, scope].join(".")
    }

    /// Number of subject tokens before the bus name in a replay subject.
    pub const REPLAY_PREFIX_TOKENS: usize = 3;

    /// Where the server delivers replays: `$PLANTD.replay.<bus>.<scope>.<token>`. As for state
    /// watches, the bus service names the deliver subject, inside this prefix, which no person
    /// may publish to and a person may subscribe to only for the scopes it may read.
    pub const REPLAY_DELIVER_PREFIX: &str = "$PLANTD.replay";

    /// `$PLANTD.replay.<bus>.<scope>.<token>`.
    pub fn replay_deliver(bus: &str, scope: &str, token: &str) -> String {
        [REPLAY_DELIVER_PREFIX, bus, scope, token].join(".")
    }

    /// The buses a new set-up has (the bus service's default config, and the streams its
    /// bootstrap creds may manage).
    pub const DEFAULT_BUSES: &[&str] = &["control", "data", "event"];

    /// Longest bus name.
    pub const MAX_BUS_NAME: usize = 32;

    /// Checks a bus name: one token of 1 to [`MAX_BUS_NAME`] lower-case letters, digits or `-`
    /// (no `_`: `a-b` and `a_b` would share a stream name).
    pub fn validate_name(name: &str) -> Result<(), String> {
        let valid = !name.is_empty()
            && name.len() <= MAX_BUS_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(())
        } else {
            Err(format!(
                "bus name {name:?}: use 1 to {MAX_BUS_NAME} lower-case letters, digits or '-'"
            ))
        }
    }

    /// Name of the capture stream of `bus`: `PLANTD_BUS_<BUS>` (upper case, `-` as `_`).
    pub fn stream(bus: &str) -> String {
        format!("PLANTD_BUS_{}", bus.to_ascii_uppercase().replace('-', "_"))
    }
}

/// Pipelines: work queues with dead letters (docs/pipelines.md). All pipes share one
/// work-queue stream with one durable consumer per pipe, so the bus service's creds name a
/// fixed set of streams whatever pipes the config defines.
pub mod pipe {
    use super::{ROOT, bus::SERVICE};

    /// Second token of items pushed on a pipe: `plantd.pipe.<pipe>`.
    pub const ITEMS: &str = "pipe";

    /// Second token of dead letters: `plantd.dlq.<pipe>`.
    pub const DEAD_LETTERS: &str = "dlq";

    /// The work-queue stream holding every pipe's items.
    pub const STREAM: &str = "PLANTD_PIPES";

    /// The stream keeping dead letters: the failed item and why.
    pub const DLQ_STREAM: &str = "PLANTD_PIPES_DLQ";

    /// The stream capturing the server's max-deliveries advisories of [`STREAM`], so a dead
    /// letter is not lost when the bus service is down at the moment an item gives out.
    pub const ADVISORY_STREAM: &str = "PLANTD_PIPES_ADVISORIES";

    /// The bus service's durable consumer of [`ADVISORY_STREAM`].
    pub const ADVISORY_CONSUMER: &str = "dead-letterer";

    /// `plantd.pipe.<pipe>`: where items are pushed (and the filter of the pipe's consumer).
    pub fn items(pipe: &str) -> String {
        [ROOT, ITEMS, pipe].join(".")
    }

    /// `plantd.pipe.>`: every pipe.
    pub fn every_pipe() -> String {
        [ROOT, ITEMS, ">"].join(".")
    }

    /// `plantd.dlq.<pipe>`: dead letters of `pipe`.
    pub fn dead_letters(pipe: &str) -> String {
        [ROOT, DEAD_LETTERS, pipe].join(".")
    }

    /// `plantd.dlq.*`: dead letters of every pipe.
    pub fn every_dead_letter() -> String {
        [ROOT, DEAD_LETTERS, "*"].join(".")
    }

    /// The advisory nats-server publishes when an item of `pipe`'s consumer reached its
    /// max deliveries (the consumer is named after the pipe).
    pub fn max_deliveries_advisory(pipe: &str) -> String {
        format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.{pipe}")
    }

    /// `plantd.buses.pipes`: stats of every pipe.
    pub fn stats() -> String {
        [ROOT, SERVICE, "pipes"].join(".")
    }

    /// `plantd.buses.dlq.list.<pipe>`: list dead letters.
    pub fn dlq_list(pipe: &str) -> String {
        [ROOT, SERVICE, "dlq", "list", pipe].join(".")
    }

    /// `plantd.buses.dlq.retry.<pipe>`: push dead letters back onto their pipe.
    pub fn dlq_retry(pipe: &str) -> String {
        [ROOT, SERVICE, "dlq", "retry", pipe].join(".")
    }

    /// `plantd.buses.dlq.>`: every dead-letter operation.
    pub fn dlq_all() -> String {
        [ROOT, SERVICE, "dlq", ">"].join(".")
    }

    /// Number of subject tokens before the pipe name in `dlq_list`/`dlq_retry` subjects.
    pub const DLQ_PREFIX_TOKENS: usize = 4;

    /// A pipe name is one token like a bus name (it names a consumer too).
    pub fn validate_name(name: &str) -> Result<(), String> {
        super::bus::validate_name(name).map_err(|m| m.replacen("bus name", "pipe name", 1))
    }
}

/// Logs: records on `plantd.log.<service>.<level>`, kept and queried by the logger.
pub mod log {
    use super::ROOT;

    /// Second token of log records.
    pub const RECORDS: &str = "log";

    /// Service name of the logger (micro name, queue group, subject token).
    pub const SERVICE: &str = "logger";

    /// The stream keeping every record.
    pub const STREAM: &str = "PLANTD_LOG";

    /// Levels, most severe first: the last subject token of a record.
    pub const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

    /// `plantd.log.<service>.<level>`.
    pub fn record(service: &str, level: &str) -> String {
        [ROOT, RECORDS, service, level].join(".")
    }

    /// `plantd.log.>`: every record.
    pub fn all() -> String {
        [ROOT, RECORDS, ">"].join(".")
    }

    /// `plantd.log.<service>.>`: what `service` may publish.
    pub fn of_service(service: &str) -> String {
        [ROOT, RECORDS, service, ">"].join(".")
    }

    /// `plantd.logger.query`.
    pub fn query() -> String {
        [ROOT, SERVICE, "query"].join(".")
    }

    /// The levels at least as severe as `min` (`warn` → error, warn); `None` for an unknown
    /// level.
    pub fn at_least(min: &str) -> Option<&'static [&'static str]> {
        LEVELS.iter().position(|l| *l == min).map(|i| &LEVELS[..=i])
    }
}

/// `$SRV.<VERB>`, `$SRV.<VERB>.<name>` and `$SRV.<VERB>.<name>.<id>` (ADR-32).
pub fn srv(verb: &str, name: Option<&str>, id: Option<&str>) -> String {
    let mut parts = vec![SRV_PREFIX, verb];
    parts.extend(name);
    parts.extend(id);
    parts.join(".")
}

/// The subject tokens after the first `prefix_tokens` ones, joined back with dots; `None` when
/// the subject has no more tokens than that.
pub fn tail(subject: &str, prefix_tokens: usize) -> Option<&str> {
    let mut rest = subject;
    for _ in 0..prefix_tokens {
        rest = rest.split_once('.')?.1;
    }
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_accept_reverse_dns_and_reject_wildcards() {
        assert!(validate_scope("site1").is_ok());
        assert!(validate_scope("org.plantd.Service1").is_ok());
        assert!(validate_scope("site1.line2.oven").is_ok());
        assert_eq!(validate_scope(""), Err(ScopeError::Empty));
        for bad in ["a..b", ".a", "a."] {
            assert!(matches!(
                validate_scope(bad),
                Err(ScopeError::EmptyToken { .. })
            ));
        }
        for bad in ["a.*", "a.>", "a b", "a\tb", "a\u{0}"] {
            assert!(
                matches!(validate_scope(bad), Err(ScopeError::InvalidChar { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            validate_scope(&"a".repeat(MAX_SCOPE_BYTES + 1)),
            Err(ScopeError::TooLong { .. })
        ));
    }

    #[test]
    fn subjects_put_the_operation_before_the_scope() {
        assert_eq!(
            state::key_op("get", "site1.oven"),
            "plantd.state.get.site1.oven"
        );
        assert_eq!(
            state::scope_op("create", "a"),
            "plantd.state.scope.create.a"
        );
        assert_eq!(state::scope_list(), "plantd.state.scope.list");
        assert_eq!(module_op("echo", "slow"), "plantd.echo.slow");
        assert_eq!(srv("PING", Some("echo"), None), "$SRV.PING.echo");
        assert_eq!(srv("INFO", None, None), "$SRV.INFO");
    }

    #[test]
    fn tail_strips_prefix_tokens() {
        assert_eq!(tail("plantd.state.get.site1.oven", 3), Some("site1.oven"));
        assert_eq!(tail("plantd.state.get", 3), None);
        assert_eq!(tail("plantd.state.get.", 3), None);
    }
}
