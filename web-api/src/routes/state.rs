//! `state` and `scopes`: the state service's request/reply operations over HTTP.
//!
//! Each handler sends the same protobuf request `plant state …` sends, on the person's own
//! connection, to the same subject (`plantd.state.<op>.<scope>`), so the server's permission
//! check and the service's validation are the ones a NATS caller gets. HTTP only adds the
//! mapping of versions to `ETag`/`If-Match` (compare-and-set) and `If-None-Match: *`
//! (create only). Versions are JSON numbers here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use plantd_schemas::state::v1::{
    DeleteRequest, DeleteResponse, GetRequest, GetResponse, ListRequest, ListResponse,
    ScopeCreateRequest, ScopeCreateResponse, ScopeDeleteRequest, ScopeDeleteResponse,
    ScopeListRequest, ScopeListResponse, SetRequest, SetResponse,
};
use plantd_shared::subjects;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::{AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::nats;
use crate::routes::{ErrorBody, JsonBody, rfc3339};

/// A key's value and versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryReply {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Its version (grows by one per write of the key).
    pub version: u64,
    /// When it was created (RFC 3339).
    pub created: Option<String>,
    /// When it was last written (RFC 3339).
    pub modified: Option<String>,
}

/// A value to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    /// The new value (UTF-8 text; JSON is common).
    pub value: String,
}

/// A write that happened.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetReply {
    /// The key's new version.
    pub version: u64,
    /// When (RFC 3339).
    pub modified: Option<String>,
}

/// A delete that happened.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteReply {
    /// Whether the key existed.
    pub existed: bool,
    /// Its version before the delete (0 if it did not exist).
    pub last_version: u64,
}

/// Which keys to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// At most this many (0: the service's default page).
    #[serde(default)]
    pub limit: u32,
    /// The `next_page_token` of the previous page.
    #[serde(default)]
    pub page_token: String,
}

/// One listed key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListEntryView {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Its version.
    pub version: u64,
    /// When it was last written (RFC 3339).
    pub modified: Option<String>,
}

/// A page of keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListReply {
    /// Keys in order.
    pub entries: Vec<ListEntryView>,
    /// Pass as `page_token` for the next page; empty on the last.
    pub next_page_token: String,
}

/// One scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeView {
    /// Its name.
    pub name: String,
    /// Keys in it.
    pub key_count: u64,
    /// When it was created (RFC 3339).
    pub created: Option<String>,
}

/// Scopes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScopesReply {
    /// Every scope, sorted.
    pub scopes: Vec<ScopeView>,
}

/// A scope creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeCreateReply {
    /// The scope.
    pub scope: String,
    /// False when it existed already.
    pub created: bool,
}

/// A scope deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeDeleteReply {
    /// The scope.
    pub scope: String,
    /// Whether it existed.
    pub existed: bool,
    /// Keys deleted with it.
    pub deleted_keys: u64,
}

/// Checks a scope from the path before it goes into a subject.
fn checked_scope(scope: &str) -> ApiResult<()> {
    subjects::validate_scope(scope).map_err(|e| ApiError::field("scope", e.to_string()))
}

/// Sends `req` to `plantd.state.<op>.<scope>` on the caller's connection.
async fn key_op<Req, Resp>(
    state: &AppState,
    session: &crate::session::Session,
    op: &str,
    scope: &str,
    req: &Req,
) -> ApiResult<Resp>
where
    Req: plantd_shared::codec::WireMessage,
    Resp: plantd_shared::codec::WireMessage,
{
    checked_scope(scope)?;
    let subject = subjects::state::key_op(op, scope);
    nats::request(session, &subject, req, state.config.request_timeout()).await
}

/// The version a precondition header names: `"5"`, `W/"5"` or `5`.
fn version_in(headers: &HeaderMap, name: header::HeaderName) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get(&name) else {
        return Ok(None);
    };
    let field = name.as_str().to_string();
    let text = value
        .to_str()
        .map_err(|_| ApiError::field(&field, "not ASCII"))?
        .trim();
    if text == "*" {
        return Err(ApiError::field(
            &field,
            "`*` is not supported here: send the version you read (ETag), or If-None-Match: * to create",
        ));
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<u64>().map(Some).map_err(|_| {
        ApiError::field(
            &field,
            format!("{text:?} is not a version such as \"3\" (the key's ETag)"),
        )
    })
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Reads one key.
#[utoipa::path(get, path = "/api/v1/state/{scope}/keys/{key}", operation_id = "get_key", tag = "state", security(("bearer" = [])),
    params(("scope" = String, Path, description = "Scope (`site1.line2`)"), ("key" = String, Path, description = "Key")),
    responses(
        (status = 200, description = "The key; `ETag` is its version", body = EntryReply),
        (status = 400, description = "Bad scope or key", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path((scope, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    let resp: GetResponse = key_op(&state, &session, "get", &scope, &GetRequest { key }).await?;
    let version = resp.version;
    let body = EntryReply {
        key: resp.key,
        value: resp.value,
        version,
        created: rfc3339(resp.created.as_ref()),
        modified: rfc3339(resp.modified.as_ref()),
    };
    Ok(([(header::ETAG, etag(version))], Json(body)).into_response())
}

/// Sets one key; `If-Match` makes it a compare-and-set, `If-None-Match: *` a create.
#[utoipa::path(put, path = "/api/v1/state/{scope}/keys/{key}", operation_id = "set_key", tag = "state", security(("bearer" = [])),
    params(
        ("scope" = String, Path, description = "Scope"), ("key" = String, Path, description = "Key"),
        ("If-Match" = Option<String>, Header, description = "Write only if the key is at this version (`\"3\"`)"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: write only if the key does not exist"),
    ),
    request_body = SetBody,
    responses(
        (status = 200, description = "Written; `ETag` is the new version", body = SetReply),
        (status = 400, description = "Bad scope, key, value or header", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
        (status = 409, description = "Version conflict", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    ))]
pub async fn set(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path((scope, key)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SetBody>,
) -> ApiResult<Response> {
    let expected_version = version_in(&headers, header::IF_MATCH)?;
    let create_only = match headers.get(header::IF_NONE_MATCH) {
        None => false,
        Some(v) if v.as_bytes() == b"*" => true,
        Some(_) => {
            return Err(ApiError::field(
                "if-none-match",
                "only `*` (create only) is supported",
            ));
        }
    };
    if create_only && expected_version.is_some() {
        return Err(ApiError::field(
            "if-match",
            "send If-Match or If-None-Match, not both",
        ));
    }
    let req = SetRequest {
        key,
        value: body.value,
        create_only,
        expected_version,
    };
    let resp: SetResponse = key_op(&state, &session, "set", &scope, &req).await?;
    let reply = SetReply {
        version: resp.version,
        modified: rfc3339(resp.modified.as_ref()),
    };
    Ok(([(header::ETAG, etag(resp.version))], Json(reply)).into_response())
}

/// Deletes one key (`If-Match`: only at that version).
#[utoipa::path(delete, path = "/api/v1/state/{scope}/keys/{key}", operation_id = "delete_key", tag = "state", security(("bearer" = [])),
    params(
        ("scope" = String, Path, description = "Scope"), ("key" = String, Path, description = "Key"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the key is at this version"),
    ),
    responses(
        (status = 200, description = "Deleted (or was not there)", body = DeleteReply),
        (status = 400, description = "Bad scope, key or header", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
        (status = 409, description = "Version conflict", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path((scope, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<DeleteReply>> {
    let req = DeleteRequest {
        key,
        expected_version: version_in(&headers, header::IF_MATCH)?,
    };
    let resp: DeleteResponse = key_op(&state, &session, "delete", &scope, &req).await?;
    Ok(Json(DeleteReply {
        existed: resp.existed,
        last_version: resp.last_version,
    }))
}

/// Lists the keys of a scope, a page at a time.
#[utoipa::path(get, path = "/api/v1/state/{scope}", operation_id = "list_keys", tag = "state", security(("bearer" = [])),
    params(("scope" = String, Path, description = "Scope"), ListParams),
    responses(
        (status = 200, description = "A page of keys", body = ListReply),
        (status = 400, description = "Bad scope or parameter", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(scope): Path<String>,
    params: crate::routes::QueryParams<ListParams>,
) -> ApiResult<Json<ListReply>> {
    let params = params.0;
    let req = ListRequest {
        prefix: params.prefix,
        limit: params.limit,
        page_token: params.page_token,
    };
    let resp: ListResponse = key_op(&state, &session, "list", &scope, &req).await?;
    Ok(Json(ListReply {
        entries: resp
            .entries
            .into_iter()
            .map(|e| ListEntryView {
                key: e.key,
                value: e.value,
                version: e.version,
                modified: rfc3339(e.modified.as_ref()),
            })
            .collect(),
        next_page_token: resp.next_page_token,
    }))
}

/// Every scope.
#[utoipa::path(get, path = "/api/v1/scopes", operation_id = "list_scopes", tag = "state", security(("bearer" = [])),
    responses(
        (status = 200, description = "Scopes", body = ScopesReply),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
    ))]
pub async fn scopes(
    State(state): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<ScopesReply>> {
    let subject = subjects::state::scope_list();
    let resp: ScopeListResponse = nats::request(
        &session,
        &subject,
        &ScopeListRequest {},
        state.config.request_timeout(),
    )
    .await?;
    Ok(Json(ScopesReply {
        scopes: resp
            .scopes
            .into_iter()
            .map(|s| ScopeView {
                name: s.name,
                key_count: s.key_count,
                created: rfc3339(s.created.as_ref()),
            })
            .collect(),
    }))
}

/// Creates a scope (idempotent).
#[utoipa::path(put, path = "/api/v1/scopes/{scope}", operation_id = "create_scope", tag = "state", security(("bearer" = [])),
    params(("scope" = String, Path, description = "Scope")),
    responses(
        (status = 200, description = "Created, or existed", body = ScopeCreateReply),
        (status = 400, description = "Bad scope", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
    ))]
pub async fn create_scope(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(scope): Path<String>,
) -> ApiResult<Json<ScopeCreateReply>> {
    checked_scope(&scope)?;
    let subject = subjects::state::scope_op("create", &scope);
    let resp: ScopeCreateResponse = nats::request(
        &session,
        &subject,
        &ScopeCreateRequest {},
        state.config.request_timeout(),
    )
    .await?;
    Ok(Json(ScopeCreateReply {
        scope: resp.scope,
        created: resp.created,
    }))
}

/// Deletes a scope with every key in it.
#[utoipa::path(delete, path = "/api/v1/scopes/{scope}", operation_id = "delete_scope", tag = "state", security(("bearer" = [])),
    params(("scope" = String, Path, description = "Scope")),
    responses(
        (status = 200, description = "Deleted (or was not there)", body = ScopeDeleteReply),
        (status = 400, description = "Bad scope", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
    ))]
pub async fn delete_scope(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(scope): Path<String>,
) -> ApiResult<Json<ScopeDeleteReply>> {
    checked_scope(&scope)?;
    let subject = subjects::state::scope_op("delete", &scope);
    let resp: ScopeDeleteResponse = nats::request(
        &session,
        &subject,
        &ScopeDeleteRequest {},
        state.config.request_timeout(),
    )
    .await?;
    Ok(Json(ScopeDeleteReply {
        scope: resp.scope,
        existed: resp.existed,
        deleted_keys: resp.deleted_keys,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precondition_headers_name_versions() {
        let mut headers = HeaderMap::new();
        assert_eq!(version_in(&headers, header::IF_MATCH).unwrap(), None);
        headers.insert(header::IF_MATCH, HeaderValue::from_static("\"7\""));
        assert_eq!(version_in(&headers, header::IF_MATCH).unwrap(), Some(7));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("W/\"8\""));
        assert_eq!(version_in(&headers, header::IF_MATCH).unwrap(), Some(8));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("soon"));
        let err = version_in(&headers, header::IF_MATCH).unwrap_err();
        assert_eq!(err.0.field.as_deref(), Some("if-match"));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(version_in(&headers, header::IF_MATCH).is_err());
    }
}
