//! The web UI and the API docs page, embedded in the binary: a plant network may have no
//! internet, so nothing is fetched at run time. The pages load only their own scripts and
//! styles (no inline code), which lets the Content-Security-Policy be `default-src 'self'`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// One embedded asset: path, content type, bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../ui/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../ui/style.css"),
    },
    Asset {
        path: "/api/v1/docs",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../ui/docs.html"),
    },
    Asset {
        path: "/docs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/docs.js"),
    },
];

/// The paths the UI is served on.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

/// The response for an asset path (the router only routes [`paths`] here).
pub fn serve(path: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return crate::error::ApiError::not_found(format!("no page {path}")).into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
