//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa), so it cannot
//! drift from the code. The errors every operation shares because of the layers around it
//! (401 from the session check, 503 when NATS or the service is away, 504 from the deadline)
//! are added in one place ([`SharedErrors`]) rather than repeated on every handler; the
//! third-party validation (tests/tests/web_openapi.rs) holds the whole document to what the
//! server sends.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes;

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "plantd web-api",
        description = "plantd over HTTP: every call runs on the caller's own NATS connection, so the NATS server enforces the same permissions as for a NATS client. Errors are `{code, message, field}` with the HTTP status equal to `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::auth::login, routes::auth::logout, routes::auth::whoami,
        routes::services::list, routes::services::info, routes::services::stats, routes::services::health,
        routes::watch::health,
        routes::state::scopes, routes::state::create_scope, routes::state::delete_scope,
        routes::state::list, routes::state::get, routes::state::set, routes::state::delete,
        routes::watch::state,
        routes::req::request,
        routes::bus::tail,
        routes::logs::query,
    ),
    modifiers(&BearerAuth, &SharedErrors),
    tags(
        (name = "session", description = "Logging in and out"),
        (name = "services", description = "Running services and their health"),
        (name = "state", description = "Keys and scopes of the state service"),
        (name = "requests", description = "Requests to any subject the caller may publish to"),
        (name = "buses", description = "Live buses"),
        (name = "logs", description = "The logger's records"),
    ),
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme the operations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token of POST /api/v1/login (the bridge's own session token)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Declares on every operation the errors the layers around it can answer with.
struct SharedErrors;

impl SharedErrors {
    fn add(operation: &mut Operation, status: &str, description: &str) {
        let error = Content::new(Some(Ref::from_schema_name("ErrorBody")));
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content("application/json", error)
                        .build(),
                )
            });
    }
}

impl Modify for SharedErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let stream = path.ends_with("/watch") || path.ends_with("/tail");
            // Answered from the session alone, or from the bridge's own health feed.
            let local = path == "/api/v1/logout"
                || path == "/api/v1/whoami"
                || path == "/api/v1/health/watch";
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                if secured {
                    Self::add(
                        operation,
                        "401",
                        "No valid session: no token, a bad one, or the session ended or expired",
                    );
                }
                if operation.request_body.is_some() {
                    Self::add(operation, "413", "The body is over max_body_bytes");
                }
                if !local {
                    Self::add(
                        operation,
                        "500",
                        "A reply the bridge could not read, or another failure of the call",
                    );
                    Self::add(
                        operation,
                        "503",
                        "NATS or the service behind this call is unreachable",
                    );
                }
                if !stream {
                    Self::add(
                        operation,
                        "504",
                        "Not finished within the bridge's deadline (http_timeout_ms); the outcome is unknown",
                    );
                }
            }
        }
    }
}

/// The document as JSON.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot render the OpenAPI document: {e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, &Operation)> {
        doc.paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [&item.get, &item.put, &item.post, &item.delete]
                    .into_iter()
                    .flatten()
                    .map(move |op| (path.clone(), op))
            })
            .collect()
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = ApiDoc::openapi();
        let ops = operations(&doc);
        let mut ids: Vec<&str> = ops
            .iter()
            .map(|(path, op)| {
                op.operation_id
                    .as_deref()
                    .unwrap_or_else(|| panic!("{path} has no operationId"))
            })
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate operationIds: {ids:?}");
    }

    #[test]
    fn each_operation_declares_the_statuses_it_can_answer() {
        let doc = ApiDoc::openapi();
        let declared = |id: &str| -> Vec<String> {
            let (_, op) = operations(&doc)
                .into_iter()
                .find(|(_, op)| op.operation_id.as_deref() == Some(id))
                .unwrap_or_else(|| panic!("no operation {id}"));
            op.responses.responses.keys().cloned().collect()
        };
        let expected: [(&str, &[&str]); 6] = [
            (
                "login",
                &["200", "400", "401", "404", "413", "500", "503", "504"],
            ),
            ("whoami", &["200", "401", "504"]),
            (
                "get_key",
                &["200", "400", "401", "403", "404", "500", "503", "504"],
            ),
            (
                "set_key",
                &[
                    "200", "400", "401", "403", "409", "413", "500", "503", "504",
                ],
            ),
            ("watch_health", &["200", "401"]),
            ("tail_bus", &["200", "400", "401", "403", "500", "503"]),
        ];
        for (id, statuses) in expected {
            assert_eq!(declared(id), statuses.to_vec(), "{id}");
        }
    }
}
