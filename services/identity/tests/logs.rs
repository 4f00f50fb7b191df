//! End-to-end: what the identity service logs while handling secrets contains none of them.
//!
//! The test installs a capturing tracing subscriber before the service starts (the service's
//! own `telemetry::init` then keeps it), drives every path that handles a password, a seed or
//! a JWT, and searches the captured text. A control asserts the capture did see the service's
//! log lines, so an empty capture cannot pass. It is alone in its test binary because the
//! subscriber is process-global.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Hub, REQUEST};
use plantd_identity::bootstrap::Key;
use plantd_schemas::identity::v1::{
    LogoutRequest, LogoutResponse, RefreshRequest, RefreshResponse, ServiceCredsRequest,
    ServiceCredsResponse, User, UserUpdateRequest, WhoamiRequest, WhoamiResponse,
};
use plantd_shared::call;
use plantd_shared::codec::Encoding;
use plantd_shared::subjects::identity;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn no_password_seed_or_jwt_is_logged() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(
            "plantd_identity=trace,plantd_shared=trace,async_nats=debug",
        ))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let hub = Hub::start().await;
    let password = "hunter2-very-secret";
    let new_password = "correct-horse-battery";
    hub.create_user("alice", password, &[("operator", "site1")])
        .await;
    let _ = hub.login("alice", "a-wrong-password").await.unwrap_err();
    let alice = hub.login("alice", password).await.unwrap();
    let (client, _events) = alice.connect().await.unwrap();
    let subject = identity::op("whoami");
    let _: WhoamiResponse = call::request(
        &client,
        &subject,
        &WhoamiRequest {
            proof: Some(alice.proof(&subject)),
        },
        Encoding::Json,
        REQUEST,
    )
    .await
    .unwrap();
    let subject = identity::op("refresh");
    let refreshed: RefreshResponse = call::request(
        &client,
        &subject,
        &RefreshRequest {
            proof: Some(alice.proof(&subject)),
        },
        Encoding::Json,
        REQUEST,
    )
    .await
    .unwrap();
    let subject = identity::op("logout");
    let _: LogoutResponse = call::request(
        &client,
        &subject,
        &LogoutRequest {
            proof: Some(alice.proof(&subject)),
        },
        Encoding::Json,
        REQUEST,
    )
    .await
    .unwrap();
    let creds: ServiceCredsResponse = hub
        .admin_call(
            "creds",
            &ServiceCredsRequest {
                name: "echo-2".into(),
                kind: "echo".into(),
            },
        )
        .await
        .unwrap();
    let change = UserUpdateRequest {
        username: "alice".into(),
        password: Some(new_password.into()),
        ..UserUpdateRequest::default()
    };
    let _: User = hub.admin_call("user.update", &change).await.unwrap();

    let logs = capture.text();
    assert!(
        logs.contains("login: jwt issued"),
        "control: the capture saw the service"
    );
    assert!(
        logs.contains("account jwt pushed and verified"),
        "control: and the updater"
    );
    let creds_seed = creds
        .creds
        .lines()
        .find(|l| l.starts_with("SU"))
        .unwrap()
        .to_string();
    let mut secrets = vec![
        ("password", password.to_string()),
        ("wrong password", "a-wrong-password".to_string()),
        ("new password", new_password.to_string()),
        ("user seed", alice.key.seed().unwrap()),
        ("jwt", alice.grant.jwt.clone()),
        ("refreshed jwt", refreshed.grant.unwrap().jwt),
        ("service creds seed", creds_seed),
    ];
    for key in Key::ALL {
        secrets.push((
            "bootstrap seed",
            hub.setup.load_key(key).unwrap().seed().unwrap(),
        ));
    }
    for (what, secret) in secrets {
        assert!(!logs.contains(&secret), "the {what} is in the logs");
        // A JWT's signature alone would be enough to recognize it.
        if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() > 40) {
            assert!(
                !logs.contains(signature),
                "part of the {what} is in the logs"
            );
        }
    }
    println!("checked {} bytes of logs", logs.len());
}
