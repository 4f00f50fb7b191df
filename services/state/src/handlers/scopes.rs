//! `scope.create`, `scope.delete` and `scope.list`.

use plantd_schemas::state::v1::{
    ScopeCreateRequest, ScopeCreateResponse, ScopeDeleteRequest, ScopeDeleteResponse, ScopeInfo,
    ScopeListRequest, ScopeListResponse,
};
use plantd_shared::{ServiceError, micro::RequestContext, subjects::state::SCOPE_OP_PREFIX_TOKENS};

use super::{StateApp, convert};

/// `plantd.state.scope.create.<scope>`: idempotent.
pub async fn create(
    app: &StateApp,
    ctx: RequestContext,
    _req: ScopeCreateRequest,
) -> Result<ScopeCreateResponse, ServiceError> {
    let scope = StateApp::scope_of(&ctx, SCOPE_OP_PREFIX_TOKENS)?;
    let outcome = app
        .writer
        .scope_create(&scope)
        .await
        .map_err(convert::store)?;
    Ok(ScopeCreateResponse {
        scope,
        created: outcome.created,
    })
}

/// `plantd.state.scope.delete.<scope>`: deletes the scope's keys (mirrored as deletes).
pub async fn delete(
    app: &StateApp,
    ctx: RequestContext,
    _req: ScopeDeleteRequest,
) -> Result<ScopeDeleteResponse, ServiceError> {
    let scope = StateApp::scope_of(&ctx, SCOPE_OP_PREFIX_TOKENS)?;
    let outcome = app
        .writer
        .scope_delete(&scope)
        .await
        .map_err(convert::store)?;
    Ok(ScopeDeleteResponse {
        scope,
        existed: outcome.existed,
        deleted_keys: outcome.deleted_keys,
    })
}

/// `plantd.state.scope.list`: every scope with its key count.
pub async fn list(
    app: &StateApp,
    _ctx: RequestContext,
    _req: ScopeListRequest,
) -> Result<ScopeListResponse, ServiceError> {
    let scopes = app.reader.scope_list().await.map_err(convert::store)?;
    Ok(ScopeListResponse {
        scopes: scopes
            .into_iter()
            .map(|s| ScopeInfo {
                name: s.name,
                key_count: s.key_count,
                created: convert::timestamp(s.created),
            })
            .collect(),
    })
}
