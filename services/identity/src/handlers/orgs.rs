//! `plantd.identity.admin.org.{create,get,list}` and `…admin.role.{assign,unassign}`.
//!
//! Role changes revoke the user's live JWTs (they carry the old permissions) and wait for the
//! server to apply the revocation, like the user changes in [`super::users`]; the user logs in
//! again to get the new permissions. Assigning a binding the user already has changes nothing
//! and revokes nothing. Both reply with the updated `User`.

use plantd_schemas::identity::v1::{
    Org, OrgCreateRequest, OrgGetRequest, OrgListRequest, OrgListResponse, RoleAssignRequest,
    RoleBinding, RoleUnassignRequest, User,
};
use plantd_shared::{ServiceError, micro::RequestContext};

use super::{App, check_name, check_username, store_error, timestamp, user_to_wire};
use crate::claims::unix_now;
use crate::roles::Binding;
use crate::store::users::{self, OrgRecord};

/// `…admin.org.create`.
pub async fn create(
    app: &App,
    _ctx: RequestContext,
    req: OrgCreateRequest,
) -> Result<Org, ServiceError> {
    check_name("name", &req.name)?;
    let name = req.name;
    let record = app
        .store
        .run(move |tx| users::create_org(tx, &name, unix_now()))
        .await
        .map_err(store_error)?;
    tracing::info!(org = %record.name, "org created");
    Ok(org_to_wire(&record))
}

/// `…admin.org.get`.
pub async fn get(app: &App, _ctx: RequestContext, req: OrgGetRequest) -> Result<Org, ServiceError> {
    check_name("name", &req.name)?;
    let name = req.name;
    let record = app
        .store
        .run(move |tx| users::get_org(tx, &name))
        .await
        .map_err(store_error)?;
    Ok(org_to_wire(&record))
}

/// `…admin.org.list`.
pub async fn list(
    app: &App,
    _ctx: RequestContext,
    _req: OrgListRequest,
) -> Result<OrgListResponse, ServiceError> {
    let records = app.store.run(users::list_orgs).await.map_err(store_error)?;
    Ok(OrgListResponse {
        orgs: records.iter().map(org_to_wire).collect(),
    })
}

/// `…admin.role.assign`.
pub async fn assign(
    app: &App,
    _ctx: RequestContext,
    req: RoleAssignRequest,
) -> Result<User, ServiceError> {
    let (username, binding) = checked(&req.username, req.binding.as_ref())?;
    let (role, scope) = (binding.role.name(), binding.scope.clone());
    let (record, revoked) = app
        .store
        .run(move |tx| users::assign_role(tx, &username, role, &scope, unix_now()))
        .await
        .map_err(store_error)?;
    tracing::info!(username = %record.username, role, scope = %binding.scope, revoked, "role assigned");
    app.push_revocations(revoked).await?;
    Ok(user_to_wire(&record))
}

/// `…admin.role.unassign`.
pub async fn unassign(
    app: &App,
    _ctx: RequestContext,
    req: RoleUnassignRequest,
) -> Result<User, ServiceError> {
    let (username, binding) = checked(&req.username, req.binding.as_ref())?;
    let (role, scope) = (binding.role.name(), binding.scope.clone());
    let (record, revoked) = app
        .store
        .run(move |tx| users::unassign_role(tx, &username, role, &scope, unix_now()))
        .await
        .map_err(store_error)?;
    tracing::info!(username = %record.username, role, scope = %binding.scope, revoked, "role unassigned");
    app.push_revocations(revoked).await?;
    Ok(user_to_wire(&record))
}

fn checked(
    username: &str,
    binding: Option<&RoleBinding>,
) -> Result<(String, Binding), ServiceError> {
    check_username(username)?;
    let binding =
        binding.ok_or_else(|| ServiceError::invalid_field("binding", "binding is required"))?;
    Ok((
        username.to_string(),
        Binding::parse(&binding.role, &binding.scope)?,
    ))
}

fn org_to_wire(record: &OrgRecord) -> Org {
    Org {
        name: record.name.clone(),
        created: Some(timestamp(record.created)),
    }
}
