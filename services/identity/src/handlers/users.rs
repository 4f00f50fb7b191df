//! `plantd.identity.admin.user.{create,get,update,delete,list}`.
//!
//! Only admins can publish here (subject permission). Changes that invalidate a user's JWTs —
//! a new password, disabling, deleting — revoke its live sessions in the same transaction and
//! then wait until the server has applied the new account JWT, so when the reply arrives the
//! old JWTs are already refused and their connections closed. `create`, `get`, `update` reply
//! with the `User`.

use plantd_schemas::identity::v1::{
    User, UserCreateRequest, UserDeleteRequest, UserDeleteResponse, UserGetRequest,
    UserListRequest, UserListResponse, UserUpdateRequest,
};
use plantd_shared::{ServiceError, micro::RequestContext};

use super::{App, check_name, check_username, store_error, user_to_wire};
use crate::claims::unix_now;
use crate::roles::Binding;
use crate::store::users::{self, UserUpdate};

/// `…admin.user.create`.
pub async fn create(
    app: &App,
    _ctx: RequestContext,
    req: UserCreateRequest,
) -> Result<User, ServiceError> {
    check_username(&req.username)?;
    check_password(app, &req.password)?;
    let org = optional_org(&req.org)?;
    let mut roles = Vec::new();
    for binding in &req.roles {
        let b = Binding::parse(&binding.role, &binding.scope)?;
        let pair = (b.role.name().to_string(), b.scope);
        if !roles.contains(&pair) {
            roles.push(pair);
        }
    }
    let hash = app.passwords.hash(req.password).await?;
    let username = req.username;
    let record = app
        .store
        .run(move |tx| users::create_user(tx, &username, &hash, org.as_deref(), &roles, unix_now()))
        .await
        .map_err(store_error)?;
    tracing::info!(username = %record.username, "user created");
    Ok(user_to_wire(&record))
}

/// `…admin.user.get`.
pub async fn get(
    app: &App,
    _ctx: RequestContext,
    req: UserGetRequest,
) -> Result<User, ServiceError> {
    check_username(&req.username)?;
    let username = req.username;
    let record = app
        .store
        .run(move |tx| users::get_user(tx, &username))
        .await
        .map_err(store_error)?;
    Ok(user_to_wire(&record))
}

/// `…admin.user.update`: unset fields stay; an empty `org` removes the org.
pub async fn update(
    app: &App,
    _ctx: RequestContext,
    req: UserUpdateRequest,
) -> Result<User, ServiceError> {
    check_username(&req.username)?;
    let org = match &req.org {
        Some(org) => Some(optional_org(org)?),
        None => None,
    };
    let password_hash = match req.password {
        Some(password) => {
            check_password(app, &password)?;
            Some(app.passwords.hash(password).await?)
        }
        None => None,
    };
    let update = UserUpdate {
        password_hash,
        disabled: req.disabled,
        org,
    };
    let username = req.username;
    let (record, revoked) = app
        .store
        .run(move |tx| users::update_user(tx, &username, &update, unix_now()))
        .await
        .map_err(store_error)?;
    tracing::info!(username = %record.username, disabled = record.disabled, revoked, "user updated");
    app.push_revocations(revoked).await?;
    Ok(user_to_wire(&record))
}

/// `…admin.user.delete`.
pub async fn delete(
    app: &App,
    _ctx: RequestContext,
    req: UserDeleteRequest,
) -> Result<UserDeleteResponse, ServiceError> {
    check_username(&req.username)?;
    let username = req.username.clone();
    let (existed, revoked) = app
        .store
        .run(move |tx| users::delete_user(tx, &username, unix_now()))
        .await
        .map_err(store_error)?;
    tracing::info!(username = %req.username, existed, revoked, "user deleted");
    app.push_revocations(revoked).await?;
    Ok(UserDeleteResponse { existed })
}

/// `…admin.user.list`.
pub async fn list(
    app: &App,
    _ctx: RequestContext,
    _req: UserListRequest,
) -> Result<UserListResponse, ServiceError> {
    let records = app
        .store
        .run(users::list_users)
        .await
        .map_err(store_error)?;
    Ok(UserListResponse {
        users: records.iter().map(user_to_wire).collect(),
    })
}

fn check_password(app: &App, password: &str) -> Result<(), ServiceError> {
    let len = password.chars().count();
    if len < app.min_password_len {
        return Err(ServiceError::invalid_field(
            "password",
            format!(
                "password must be at least {} characters",
                app.min_password_len
            ),
        ));
    }
    if len > 1024 {
        return Err(ServiceError::invalid_field(
            "password",
            "password must be at most 1024 characters",
        ));
    }
    Ok(())
}

/// `""` → no org; anything else must be a valid name.
fn optional_org(org: &str) -> Result<Option<String>, ServiceError> {
    if org.is_empty() {
        return Ok(None);
    }
    check_name("org", org)?;
    Ok(Some(org.to_string()))
}
