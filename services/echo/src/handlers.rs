//! The echo endpoints: `echo` returns the message with a server timestamp, `slow` sleeps a
//! requested, bounded time so callers can test timeouts and graceful drain.

use std::time::Duration;

use plantd_schemas::echo::v1::{EchoReply, EchoRequest, SlowReply, SlowRequest};
use plantd_shared::{ErrorCode, ServiceError, micro::RequestContext, timestamp};

/// Limits and identity shared by the handlers.
#[derive(Debug, Clone)]
pub struct Echo {
    /// Instance name reported in replies (the process' id).
    pub instance: String,
    /// Bound on `slow`.
    pub max_slow_ms: u32,
    /// Bound on `echo`'s message.
    pub max_message_bytes: usize,
}

impl Echo {
    /// `plantd.echo.echo`.
    pub async fn echo(
        &self,
        _ctx: RequestContext,
        req: EchoRequest,
    ) -> Result<EchoReply, ServiceError> {
        if req.message.len() > self.max_message_bytes {
            return Err(ServiceError::new(
                ErrorCode::TooLarge,
                format!(
                    "message is {} bytes, the maximum is {}",
                    req.message.len(),
                    self.max_message_bytes
                ),
            )
            .with_field("message"));
        }
        Ok(EchoReply {
            message: req.message,
            timestamp: Some(timestamp::now()),
            instance: self.instance.clone(),
        })
    }

    /// `plantd.echo.slow`.
    pub async fn slow(
        &self,
        _ctx: RequestContext,
        req: SlowRequest,
    ) -> Result<SlowReply, ServiceError> {
        if req.duration_ms > self.max_slow_ms {
            return Err(ServiceError::invalid_field(
                "duration_ms",
                format!(
                    "duration_ms is {}, the maximum is {}",
                    req.duration_ms, self.max_slow_ms
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(u64::from(req.duration_ms))).await;
        Ok(SlowReply {
            slept_ms: req.duration_ms,
            timestamp: Some(timestamp::now()),
            instance: self.instance.clone(),
        })
    }
}
