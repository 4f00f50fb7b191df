//! Endpoint handlers: typed on the outside, erased on the inside.
//!
//! A service writes `async fn get(ctx, GetRequest) -> Result<GetResponse, ServiceError>`;
//! [`typed`] wraps it into a [`Handler`] that decodes the payload in the request's encoding
//! and encodes the reply in the same one, so no service repeats decode/encode/error mapping.

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::{
    codec::{Encoding, WireMessage},
    error::ServiceError,
};

/// What a handler knows about its request besides the payload. `Default` is an empty
/// subject in JSON, for handler unit tests.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The subject the request was sent to (e.g. `plantd.state.get.site1`).
    pub subject: String,
    /// The request's encoding; the reply uses it too.
    pub encoding: Encoding,
    /// The request's headers.
    pub headers: Option<async_nats::HeaderMap>,
}

impl RequestContext {
    /// The subject tokens after the first `prefix_tokens`: the scope of a state request.
    pub fn subject_tail(&self, prefix_tokens: usize) -> Option<&str> {
        crate::subjects::tail(&self.subject, prefix_tokens)
    }
}

/// An erased handler: payload in, encoded reply (or error) out.
pub type Handler = Arc<
    dyn Fn(RequestContext, Bytes) -> BoxFuture<'static, Result<Bytes, ServiceError>> + Send + Sync,
>;

/// Wraps a typed async handler into a [`Handler`].
pub fn typed<Req, Resp, F, Fut>(handler: F) -> Handler
where
    Req: WireMessage,
    Resp: WireMessage,
    F: Fn(RequestContext, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ServiceError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    Arc::new(move |ctx: RequestContext, payload: Bytes| {
        let handler = Arc::clone(&handler);
        Box::pin(async move {
            let encoding = ctx.encoding;
            let request: Req = encoding.decode(&payload)?;
            let response = handler(ctx, request).await?;
            Ok(encoding.encode(&response))
        })
    })
}
