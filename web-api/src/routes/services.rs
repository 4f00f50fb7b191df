//! `services`: discovery (`$SRV.INFO|STATS`) on the person's connection, and each instance's
//! three-state health.
//!
//! Health comes from the instance itself: every plantd service advertises its `/healthz` URL
//! in its metadata (`health_url`), and the bridge reads it. An instance that answers
//! discovery but whose health endpoint the bridge cannot reach is `degraded` (it serves, but
//! nobody can see its checks from here); one without a health endpoint is `healthy` with
//! that said as the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use plantd_shared::micro::gather::gather;
use plantd_shared::micro::protocol::{InfoResponse, StatsResponse, valid_name};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::{AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::routes::ErrorBody;
use crate::session::Session;

/// How long reading one instance's `/healthz` may take.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(800);

/// One endpoint of an instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// Endpoint name.
    pub name: String,
    /// Subject it serves.
    pub subject: String,
    /// Queue group.
    pub queue_group: String,
}

/// Health of one instance.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct HealthView {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    /// Why, when not healthy (or where the status came from).
    pub reason: String,
}

/// One running instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// Version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Its endpoints.
    pub endpoints: Vec<EndpointView>,
    /// Its health.
    pub health: HealthView,
}

/// Instances.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServicesReply {
    /// Every instance, sorted by name then id.
    pub services: Vec<ServiceView>,
}

/// Counters of one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointStatsView {
    /// Endpoint name.
    pub name: String,
    /// Subject.
    pub subject: String,
    /// Requests answered, errors included.
    pub num_requests: u64,
    /// Requests answered with an error.
    pub num_errors: u64,
    /// Mean handling time, nanoseconds.
    pub average_processing_time: u64,
    /// `<code>:<message>` of the last error, empty if none.
    pub last_error: String,
}

/// Counters of one instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceStatsView {
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// When it started (RFC 3339).
    pub started: String,
    /// Per endpoint.
    pub endpoints: Vec<EndpointStatsView>,
}

/// Counters of every instance of a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsReply {
    /// Per instance.
    pub stats: Vec<InstanceStatsView>,
}

/// Health of one instance, with its checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceHealthView {
    /// Instance id.
    pub id: String,
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    /// Why.
    pub reason: String,
    /// The instance's own checks (`/healthz` body's `checks`), when read.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
}

/// Health of every instance of a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReply {
    /// Per instance.
    pub instances: Vec<InstanceHealthView>,
}

/// Every running instance, with its health.
#[utoipa::path(get, path = "/api/v1/services", operation_id = "list_services", tag = "services", security(("bearer" = [])),
    responses(
        (status = 200, description = "Instances", body = ServicesReply),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(session): Caller,
) -> ApiResult<Json<ServicesReply>> {
    Ok(Json(ServicesReply {
        services: instances(&state, &session, None).await?,
    }))
}

/// The instances of one service.
#[utoipa::path(get, path = "/api/v1/services/{name}", operation_id = "service_info", tag = "services", security(("bearer" = [])),
    params(("name" = String, Path, description = "Service name")),
    responses(
        (status = 200, description = "Its instances", body = ServicesReply),
        (status = 400, description = "Not a service name", body = ErrorBody),
        (status = 404, description = "No instance runs", body = ErrorBody),
    ))]
pub async fn info(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ServicesReply>> {
    checked_name(&name)?;
    let services = instances(&state, &session, Some(&name)).await?;
    if services.is_empty() {
        return Err(not_running(&name));
    }
    Ok(Json(ServicesReply { services }))
}

/// Request counters of every instance of a service.
#[utoipa::path(get, path = "/api/v1/services/{name}/stats", operation_id = "service_stats", tag = "services", security(("bearer" = [])),
    params(("name" = String, Path, description = "Service name")),
    responses(
        (status = 200, description = "Counters", body = StatsReply),
        (status = 400, description = "Not a service name", body = ErrorBody),
        (status = 404, description = "No instance runs", body = ErrorBody),
    ))]
pub async fn stats(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<StatsReply>> {
    checked_name(&name)?;
    let mut found: Vec<StatsResponse> = discover(&state, &session, "STATS", Some(&name)).await?;
    if found.is_empty() {
        return Err(not_running(&name));
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let stats = found
        .into_iter()
        .map(|s| InstanceStatsView {
            name: s.name,
            id: s.id,
            started: s.started,
            endpoints: s
                .endpoints
                .into_iter()
                .map(|e| EndpointStatsView {
                    name: e.name,
                    subject: e.subject,
                    num_requests: e.num_requests,
                    num_errors: e.num_errors,
                    average_processing_time: e.average_processing_time,
                    last_error: e.last_error,
                })
                .collect(),
        })
        .collect();
    Ok(Json(StatsReply { stats }))
}

/// Health of every instance of a service, with its checks.
#[utoipa::path(get, path = "/api/v1/services/{name}/health", operation_id = "service_health", tag = "services", security(("bearer" = [])),
    params(("name" = String, Path, description = "Service name")),
    responses(
        (status = 200, description = "Health per instance", body = HealthReply),
        (status = 400, description = "Not a service name", body = ErrorBody),
        (status = 404, description = "No instance runs", body = ErrorBody),
    ))]
pub async fn health(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<HealthReply>> {
    checked_name(&name)?;
    let mut found: Vec<InfoResponse> = discover(&state, &session, "INFO", Some(&name)).await?;
    if found.is_empty() {
        return Err(not_running(&name));
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let mut instances = Vec::with_capacity(found.len());
    for info in found {
        let (health, checks) = instance_health(&info.metadata).await;
        instances.push(InstanceHealthView {
            id: info.id,
            status: health.status,
            reason: health.reason,
            checks,
        });
    }
    Ok(Json(HealthReply { instances }))
}

/// Every instance (of `name`, if given), with health, sorted.
pub async fn instances(
    state: &AppState,
    session: &Session,
    name: Option<&str>,
) -> ApiResult<Vec<ServiceView>> {
    let mut found: Vec<InfoResponse> = discover(state, session, "INFO", name).await?;
    found.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let healths =
        futures::future::join_all(found.iter().map(|i| instance_health(&i.metadata))).await;
    Ok(found
        .into_iter()
        .zip(healths)
        .map(|(info, (health, _))| ServiceView {
            name: info.name,
            id: info.id,
            version: info.version,
            description: info.description,
            endpoints: info
                .endpoints
                .into_iter()
                .map(|e| EndpointView {
                    name: e.name,
                    subject: e.subject,
                    queue_group: e.queue_group,
                })
                .collect(),
            health,
        })
        .collect())
}

/// One discovery verb on the person's connection, refusals as 403.
async fn discover<T: serde::de::DeserializeOwned>(
    state: &AppState,
    session: &Session,
    verb: &str,
    name: Option<&str>,
) -> ApiResult<Vec<T>> {
    let subject = plantd_shared::subjects::srv(verb, name, None);
    let timeout = state.config.request_timeout().min(Duration::from_secs(2));
    crate::nats::guarded(session, &subject, async {
        gather(&session.client, verb, name, timeout)
            .await
            .map_err(|e| plantd_shared::call::CallError::Other {
                subject: subject.clone(),
                message: e.to_string(),
            })
    })
    .await
}

fn checked_name(name: &str) -> ApiResult<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::field(
            "name",
            format!("{name:?} is not a service name (letters, digits, '-' and '_')"),
        ))
    }
}

fn not_running(name: &str) -> ApiError {
    ApiError::not_found(format!("no instance of service {name:?} answers"))
}

/// The health of an instance from its `/healthz` (see the module docs), and its checks.
pub async fn instance_health(
    metadata: &BTreeMap<String, String>,
) -> (HealthView, serde_json::Value) {
    let view = |status: &str, reason: String| HealthView {
        status: status.to_string(),
        reason,
    };
    let Some(url) = metadata.get("health_url") else {
        return (
            view(
                "healthy",
                "answers discovery (it has no health endpoint)".into(),
            ),
            serde_json::Value::Null,
        );
    };
    match plantd_shared::health::probe(url, HEALTH_TIMEOUT).await {
        Ok((_, body)) => {
            let status = body
                .get("status")
                .and_then(|s| s.as_str())
                .map(three_state)
                .unwrap_or("degraded");
            let reason = failing_checks(&body);
            let checks = body
                .get("checks")
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            (view(status, reason), checks)
        }
        Err(err) => (
            view(
                "degraded",
                format!(
                    "answers on NATS, but its health endpoint {url} cannot be read from the bridge: {err}"
                ),
            ),
            serde_json::Value::Null,
        ),
    }
}

/// `pass|warn|fail` (or the three names themselves) as the API's three states.
fn three_state(status: &str) -> &'static str {
    match status {
        "pass" | "ok" | "healthy" => "healthy",
        "fail" | "unhealthy" => "unhealthy",
        _ => "degraded",
    }
}

/// The reasons of every check that is not passing, `; ` separated.
fn failing_checks(body: &serde_json::Value) -> String {
    let Some(checks) = body.get("checks").and_then(|c| c.as_object()) else {
        return String::new();
    };
    checks
        .iter()
        .filter(|(_, c)| {
            three_state(c.get("status").and_then(|s| s.as_str()).unwrap_or("")) != "healthy"
        })
        .map(|(name, c)| {
            let reason = c.get("reason").and_then(|r| r.as_str()).unwrap_or("");
            format!("{name}: {reason}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_bodies_map_to_three_states_with_reasons() {
        let body = serde_json::json!({"status": "warn", "checks": {
            "nats": {"status": "pass", "reason": ""},
            "mirror": {"status": "warn", "reason": "lag 12"}}});
        assert_eq!(three_state(body["status"].as_str().unwrap()), "degraded");
        assert_eq!(failing_checks(&body), "mirror: lag 12");
        assert_eq!(three_state("fail"), "unhealthy");
        assert_eq!(three_state("pass"), "healthy");
    }

    #[tokio::test]
    async fn an_unreachable_health_endpoint_is_degraded() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let metadata =
            BTreeMap::from([("health_url".to_string(), format!("http://{addr}/healthz"))]);
        let (view, _) = instance_health(&metadata).await;
        assert_eq!(view.status, "degraded");
        assert!(view.reason.contains("cannot be read"), "{}", view.reason);
        let (view, _) = instance_health(&BTreeMap::new()).await;
        assert_eq!(view.status, "healthy");
    }
}
