//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa), so it cannot
//! drift from the code: a route without its `#[utoipa::path]` is caught by a test that
//! compares the document's paths with the router's.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
    modifiers(&BearerAuth),
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

/// The document as JSON.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot render the OpenAPI document: {e}\"}}"))
}
