//! The state endpoints, wired to the store. One file per family: [`keys`] (get, set, delete,
//! list), [`scopes`] (scope create, delete, list) and [`watch`] (a KV watch created for the
//! caller); [`convert`] maps store types and errors to the wire in one place.
//!
//! Key operations listen on `plantd.state.<op>.>` and take the scope from the subject tail,
//! so a NATS permission on `plantd.state.get.site1.>` grants reads of site1's subtree.

mod convert;
mod keys;
mod scopes;
pub mod watch;

use std::sync::Arc;

use plantd_shared::{
    ServiceError, app_endpoint,
    micro::{RequestContext, ServiceBuilder},
    subjects::state as subj,
};

use crate::store::{Reader, WriteHandle};

/// What every handler shares.
pub struct StateApp {
    /// Group-committing writer.
    pub writer: WriteHandle,
    /// Read pool.
    pub reader: Reader,
    /// The KV bucket watches are created on.
    pub kv: WatchBucket,
}

/// Where [`watch`] creates watch consumers.
pub struct WatchBucket {
    /// JetStream, with the state service's own rights.
    pub js: async_nats::jetstream::Context,
    /// The KV bucket the mirror fills.
    pub bucket: String,
}

impl StateApp {
    /// The scope of a key-operation or scope-operation subject (the store validates it).
    fn scope_of(ctx: &RequestContext, prefix_tokens: usize) -> Result<String, ServiceError> {
        ctx.subject_tail(prefix_tokens)
            .map(str::to_string)
            .ok_or_else(|| ServiceError::invalid_field("scope", "the subject names no scope"))
    }
}

/// Adds every state endpoint to `builder`.
pub fn register(builder: ServiceBuilder, app: Arc<StateApp>) -> ServiceBuilder {
    let b = app_endpoint!(builder, &app, "get", subj::key_op_all("get"), keys::get);
    let b = app_endpoint!(b, &app, "set", subj::key_op_all("set"), keys::set);
    let b = app_endpoint!(b, &app, "delete", subj::key_op_all("delete"), keys::delete);
    let b = app_endpoint!(b, &app, "list", subj::key_op_all("list"), keys::list);
    let b = app_endpoint!(
        b,
        &app,
        "scope-create",
        subj::scope_op_all("create"),
        scopes::create
    );
    let b = app_endpoint!(
        b,
        &app,
        "scope-delete",
        subj::scope_op_all("delete"),
        scopes::delete
    );
    let b = app_endpoint!(b, &app, "watch", subj::key_op_all("watch"), watch::watch);
    app_endpoint!(b, &app, "scope-list", subj::scope_list(), scopes::list)
}
