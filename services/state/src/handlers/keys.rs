//! `get`, `set`, `delete` and `list` on `plantd.state.<op>.<scope>`.

use plantd_schemas::state::v1::{
    DeleteRequest, DeleteResponse, GetRequest, GetResponse, ListEntry, ListRequest, ListResponse,
    SetRequest, SetResponse,
};
use plantd_shared::{ServiceError, micro::RequestContext, subjects::state::KEY_OP_PREFIX_TOKENS};

use super::{StateApp, convert};

/// `plantd.state.get.<scope>`.
pub async fn get(
    app: &StateApp,
    ctx: RequestContext,
    req: GetRequest,
) -> Result<GetResponse, ServiceError> {
    let scope = StateApp::scope_of(&ctx, KEY_OP_PREFIX_TOKENS)?;
    let entry = app
        .reader
        .get(&scope, &req.key)
        .await
        .map_err(convert::store)?;
    Ok(GetResponse {
        key: entry.key,
        value: entry.value,
        version: entry.version,
        created: convert::timestamp(entry.created),
        modified: convert::timestamp(entry.modified),
    })
}

/// `plantd.state.set.<scope>`.
pub async fn set(
    app: &StateApp,
    ctx: RequestContext,
    req: SetRequest,
) -> Result<SetResponse, ServiceError> {
    let scope = StateApp::scope_of(&ctx, KEY_OP_PREFIX_TOKENS)?;
    let outcome = app
        .writer
        .set(
            &scope,
            &req.key,
            &req.value,
            req.create_only,
            req.expected_version,
        )
        .await
        .map_err(convert::store)?;
    Ok(SetResponse {
        version: outcome.version,
        modified: convert::timestamp(outcome.modified),
    })
}

/// `plantd.state.delete.<scope>`.
pub async fn delete(
    app: &StateApp,
    ctx: RequestContext,
    req: DeleteRequest,
) -> Result<DeleteResponse, ServiceError> {
    let scope = StateApp::scope_of(&ctx, KEY_OP_PREFIX_TOKENS)?;
    let outcome = app
        .writer
        .delete(&scope, &req.key, req.expected_version)
        .await
        .map_err(convert::store)?;
    Ok(DeleteResponse {
        existed: outcome.existed,
        last_version: outcome.last_version,
    })
}

/// `plantd.state.list.<scope>`.
pub async fn list(
    app: &StateApp,
    ctx: RequestContext,
    req: ListRequest,
) -> Result<ListResponse, ServiceError> {
    let scope = StateApp::scope_of(&ctx, KEY_OP_PREFIX_TOKENS)?;
    let page = app
        .reader
        .list(&scope, &req.prefix, req.limit, &req.page_token)
        .await
        .map_err(convert::store)?;
    Ok(ListResponse {
        entries: page
            .entries
            .into_iter()
            .map(|e| ListEntry {
                key: e.key,
                value: e.value,
                version: e.version,
                modified: convert::timestamp(e.modified),
            })
            .collect(),
        next_page_token: page.next_page_token,
    })
}
