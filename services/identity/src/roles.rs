//! Roles and scopes → the NATS permissions in a person's user JWT.
//!
//! The server enforces these, so they are the whole authorization story for people (DESIGN.md,
//! "Security model"). The rules, for a binding of `role` on scope `S` (empty = everywhere;
//! `S` covers itself and every scope below it, `site1.>` is accepted as a synonym of `site1`):
//!
//! | role       | publish                                                            | subscribe      |
//! |------------|--------------------------------------------------------------------|----------------|
//! | `admin`    | `>` (no scope allowed)                                             | `>`            |
//! | `operator` | `plantd.state.{get,set,delete,list,watch}.S[.>]`, `plantd.state.scope.{create,delete}.S[.>]`, `plantd.state.scope.list`, `plantd.bus.*.S[.>]`, `plantd.buses.replay.*.S[.>]`, `plantd.buses.info`, `$SRV.>` | `plantd.bus.*.S[.>]`, `$PLANTD.watch.S.>`, `$PLANTD.replay.*.S.>` |
//! | `viewer`   | `plantd.state.{get,list,watch}.S[.>]`, `plantd.buses.replay.*.S[.>]`, `plantd.buses.info`, `$SRV.>` | `plantd.bus.*.S[.>]`, `$PLANTD.watch.S.>`, `$PLANTD.replay.*.S.>` |
//!
//! A bus topic starts with its scope (`plantd.bus.data.site1.oven.temp`), so the same binding
//! scopes state and buses. With `S` empty, `operator` gets `plantd.state.>` and `viewer`
//! `plantd.state.{get,list,watch}.>`, both `plantd.bus.>` (operators also publish there),
//! `plantd.buses.replay.>`, `$PLANTD.watch.>` and `$PLANTD.replay.>`.
//!
//! **No JetStream API rights for people.** nats-server does not check a push consumer's
//! deliver subject or deliver group against its creator's permissions, and answers every API
//! request (`DIRECT.GET`, `STREAM.INFO`, …) on whatever reply subject the requester names, so a
//! person with consumer-create or API rights could make the server publish KV values it wrote
//! onto subjects it may not publish to (another scope's `set`, a bus, another person's inbox).
//! A person watches state through `plantd.state.watch.S`: the state service creates the
//! consumer with its own rights and delivers it to `$PLANTD.watch.S.<token>`, a prefix no person
//! may publish to and only readers of `S` may subscribe to ([`plantd_state::watch`]).

//! Every person also gets: publish `plantd.identity.{refresh,logout,whoami,check-permission}`
//! and subscribe `_INBOX_<username>.>` — its own inbox and nothing else, so one person cannot
//! read another's replies; the client sets async-nats' `custom_inbox_prefix` to
//! [`inbox_prefix`]. No `allow_responses`: people ask, services answer. Several bindings are
//! unioned (allow lists merged, duplicates dropped).

use std::collections::BTreeSet;

use plantd_shared::{ErrorCode, ServiceError, subjects};

use crate::claims::{Permission, Permissions};

/// A role plantd knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Everything, everywhere.
    Admin,
    /// Read and write state, manage scopes, use buses, in a scope.
    Operator,
    /// Read and watch state, listen on buses, in a scope.
    Viewer,
}

impl Role {
    /// Parses a role name (400 for an unknown one).
    pub fn parse(name: &str) -> Result<Role, ServiceError> {
        match name {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            other => Err(ServiceError::invalid_field(
                "role",
                format!("unknown role {other:?}; roles are admin, operator and viewer"),
            )),
        }
    }

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// A checked binding: role and normalized scope (`""` = everywhere).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    /// The role.
    pub role: Role,
    /// The scope, normalized: no trailing `.>`, `""` for everywhere.
    pub scope: String,
}

impl Binding {
    /// Checks and normalizes a wire binding: a known role, a valid scope (or `""`/`>` for
    /// everywhere, a trailing `.>` dropped), no scope on `admin`.
    pub fn parse(role: &str, scope: &str) -> Result<Binding, ServiceError> {
        let role = Role::parse(role)?;
        let scope = scope.trim();
        let scope = match scope {
            "" | ">" => "",
            s => s.strip_suffix(".>").unwrap_or(s),
        };
        if !scope.is_empty() {
            subjects::validate_scope(scope)
                .map_err(|e| ServiceError::invalid_field("scope", e.to_string()))?;
        }
        if role == Role::Admin && !scope.is_empty() {
            return Err(ServiceError::new(
                ErrorCode::BadRequest,
                "the admin role is not scoped; leave the scope empty",
            )
            .with_field("scope"));
        }
        Ok(Binding {
            role,
            scope: scope.to_string(),
        })
    }
}

/// The inbox prefix of `username`: `_INBOX_<username>`.
pub fn inbox_prefix(username: &str) -> String {
    format!("_INBOX_{username}")
}

/// The permissions of `username` with `bindings`. `_bucket` (the state KV bucket) is no longer
/// needed: people get no JetStream API rights (see the module docs).
pub fn permissions(username: &str, bindings: &[Binding], _bucket: &str) -> Permissions {
    let mut publish = BTreeSet::new();
    let mut subscribe = BTreeSet::new();
    for op in ["refresh", "logout", "whoami", "check-permission"] {
        publish.insert(subjects::identity::op(op));
    }
    subscribe.insert(format!("{}.>", inbox_prefix(username)));
    for binding in bindings {
        grant(binding, &mut publish, &mut subscribe);
    }
    Permissions {
        publish: Permission::allow(publish),
        subscribe: Permission::allow(subscribe),
        resp: None,
    }
}

fn grant(b: &Binding, publish: &mut BTreeSet<String>, sub: &mut BTreeSet<String>) {
    let state = subjects::state::SERVICE;
    match b.role {
        Role::Admin => {
            publish.insert(">".into());
            sub.insert(">".into());
            return;
        }
        Role::Operator if b.scope.is_empty() => {
            publish.insert(subjects::module_op(state, ">"));
        }
        Role::Operator => {
            for op in ["get", "set", "delete", "list", "watch"] {
                publish.extend(in_scope(|s| subjects::state::key_op(op, s), &b.scope));
            }
            for op in ["create", "delete"] {
                publish.extend(in_scope(|s| subjects::state::scope_op(op, s), &b.scope));
            }
            publish.insert(subjects::state::scope_list());
        }
        Role::Viewer if b.scope.is_empty() => {
            publish.extend(["get", "list", "watch"].map(subjects::state::key_op_all));
        }
        Role::Viewer => {
            for op in ["get", "list", "watch"] {
                publish.extend(in_scope(|s| subjects::state::key_op(op, s), &b.scope));
            }
        }
    }
    grant_buses(b, publish, sub);
    grant_pipes(b, publish);
    grant_logs(b, publish);
    publish.insert(subjects::srv(">", None, None));
    sub.insert(subjects::state::watch_deliver_subtree(&b.scope));
}

/// Buses in the binding's scope: topics start with the scope, so `plantd.bus.<any bus>.S[.>]`
/// is read by both roles and published by operators; both may ask the bus service for replays
/// of `S` and hear them on `$PLANTD.replay.<bus>.S.<token>`, and ask for bus info.
fn grant_buses(b: &Binding, publish: &mut BTreeSet<String>, sub: &mut BTreeSet<String>) {
    use subjects::bus;
    let traffic: Vec<String> = if b.scope.is_empty() {
        vec![bus::every_bus()]
    } else {
        in_scope(|s| bus::topic("*", s), &b.scope).to_vec()
    };
    if b.role == Role::Operator {
        publish.extend(traffic.iter().cloned());
    }
    sub.extend(traffic);
    if b.scope.is_empty() {
        publish.insert(bus::replay_all());
        sub.insert(format!("{}.>", bus::REPLAY_DELIVER_PREFIX));
    } else {
        publish.extend(in_scope(|s| bus::replay("*", s), &b.scope));
        sub.insert(bus::replay_deliver("*", &b.scope, ">"));
    }
    publish.insert(bus::info());
}

/// Pipes are plant-wide work queues, not scoped: everyone may read their stats; an unscoped
/// viewer may also list dead letters, and an unscoped operator may push items and retry dead
/// letters. Working on a pipe needs consumer rights people never get (a pull request's reply
/// subject is chosen by the caller, issue #9), so workers are services.
fn grant_pipes(b: &Binding, publish: &mut BTreeSet<String>) {
    use subjects::pipe;
    publish.insert(pipe::stats());
    if !b.scope.is_empty() {
        return;
    }
    match b.role {
        Role::Operator => {
            publish.insert(pipe::every_pipe());
            publish.insert(pipe::dlq_all());
        }
        Role::Viewer => {
            publish.insert(pipe::dlq_list("*"));
        }
        // Admins are granted everything elsewhere.
        Role::Admin => {}
    }
}

/// Logs are plant-wide and may mention any site: unscoped viewers and operators may query them
/// (`plant logs`, which follows by asking again from its cursor); scoped roles may not.
fn grant_logs(b: &Binding, publish: &mut BTreeSet<String>) {
    if b.scope.is_empty() && b.role != Role::Admin {
        publish.insert(subjects::log::query());
    }
}

/// `make(S)` and `make(S.>)`.
fn in_scope(make: impl Fn(&str) -> String, scope: &str) -> [String; 2] {
    [make(scope), make(&format!("{scope}.>"))]
}

#[cfg(test)]
mod tests;
