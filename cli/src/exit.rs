//! Exit codes and the one error renderer.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also when stdout was closed early, e.g. `| head`) |
//! | 1 | the service answered with an error, or another failure |
//! | 2 | bad command line (clap) |
//! | 3 | cannot connect to NATS |
//! | 4 | no responders: the service is not running |
//! | 5 | timed out: the outcome is unknown (also a 504 reply: the handler's deadline passed) |
//! | 6 | refused by the server: the credentials lack the permission (nothing was sent on) |
//! | 64 | bad configuration |
//! | 75 | the data dir is in use by another `plant up` (or service); the message names its PID |

use plantd_shared::call::CallError;

/// A service error reply.
pub const SERVICE_ERROR: i32 = 1;
/// NATS unreachable.
pub const CONNECT: i32 = 3;
/// No responders.
pub const NO_RESPONDERS: i32 = 4;
/// Timed out.
pub const TIMED_OUT: i32 = 5;
/// A permission refusal by the server.
pub const REFUSED: i32 = 6;

/// Prints `error: …` and its causes to stderr and returns the exit code.
pub fn report(err: &anyhow::Error) -> i32 {
    if is_broken_pipe(err) {
        return 0;
    }
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("Caused by:\n    {cause}");
    }
    code_of(err)
}

fn code_of(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.downcast_ref::<crate::refusal::Refused>().is_some() {
            return REFUSED;
        }
        if let Some(call) = cause.downcast_ref::<CallError>() {
            return match call {
                CallError::NoResponders { .. } => NO_RESPONDERS,
                CallError::TimedOut { .. } => TIMED_OUT,
                // The service gave up at its handler deadline: as unknown as a timeout.
                CallError::Service(e) if e.code == plantd_shared::ErrorCode::Timeout => TIMED_OUT,
                _ => SERVICE_ERROR,
            };
        }
        if cause
            .downcast_ref::<plantd_shared::connection::ConnectError>()
            .is_some()
        {
            return CONNECT;
        }
        if cause
            .downcast_ref::<plantd_shared::data_dir_lock::LockError>()
            .is_some_and(|e| matches!(e, plantd_shared::data_dir_lock::LockError::Held { .. }))
        {
            return plantd_shared::data_dir_lock::EXIT_LOCKED;
        }
    }
    1
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantd_shared::{ErrorCode, ServiceError};

    #[test]
    fn a_deadline_reply_exits_like_a_timeout_and_other_errors_like_errors() {
        let code = |e: ErrorCode| {
            code_of(&anyhow::Error::new(CallError::Service(ServiceError::new(
                e, "x",
            ))))
        };
        assert_eq!(code(ErrorCode::Timeout), TIMED_OUT);
        assert_eq!(code(ErrorCode::Unavailable), SERVICE_ERROR);
        assert_eq!(code(ErrorCode::BadRequest), SERVICE_ERROR);
    }
}
