//! End-to-end: a real nats-server in operator mode with the bootstrap's set-up.
//!
//! Each test bootstraps into its own temp dir and starts the hub from `nats/hub.conf.template`
//! with the bootstrap's snippet appended (the configuration plantd ships), then connects over
//! the wire. Refusals are always paired with a control that differs in the one field under
//! test, so a test cannot pass because *everything* is refused. Permission violations arrive
//! asynchronously as `-ERR` lines, surfaced by async-nats as server-error events; tests wait
//! for them with a deadline, never a fixed sleep.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_nats::{Client, ConnectErrorKind, Event};
use futures::{FutureExt as _, StreamExt as _};
use nkeys::KeyPair;
use plantd_identity::bootstrap::{Bootstrap, Key, STATE_BUCKET};
use plantd_identity::claims::{Claims, UserNats, unix_now};
use plantd_identity::issue::issue_claims;
use plantd_identity::{jwt, permissions};
use plantd_shared::connection::{ConnectError, StartMode, connect};
use plantd_shared::creds::Creds;
use plantd_tests::{NatsServer, NatsServerOptions};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// How long an expected asynchronous event may take.
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// A bootstrapped set-up and the hub running it.
struct Hub {
    dir: TempDir,
    setup: Bootstrap,
    server: NatsServer,
}

async fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let setup = plantd_identity::init(&dir.path().join("data"), false).unwrap();
    let snippet = std::fs::read_to_string(&setup.server_config).unwrap();
    let server = NatsServer::start_with(NatsServerOptions {
        extra_config: Some(snippet),
        ..NatsServerOptions::default()
    })
    .await
    .unwrap();
    Hub { dir, setup, server }
}

impl Hub {
    async fn connect(&self, creds: &Path) -> Result<Client, ConnectError> {
        let name = creds.file_stem().unwrap().to_string_lossy().to_string();
        connect(
            &self.server.url(),
            Some(creds.to_path_buf()),
            &name,
            StartMode::FailFast,
            None,
        )
        .await
    }

    /// Connects and forwards every connection event to the returned channel.
    async fn connect_with_events(&self, creds: &Path) -> (Client, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = plantd_shared::creds::auth_options(creds.to_path_buf())
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(event);
                }
            })
            .connect(self.server.url())
            .await
            .unwrap();
        (client, rx)
    }

    /// A plantd user with admin permissions, signed by the plantd signing key, after `tweak`;
    /// written as a creds file. Returns the path and the user's key.
    fn user(&self, name: &str, tweak: impl FnOnce(&mut Claims<UserNats>)) -> (PathBuf, KeyPair) {
        let signing = self.setup.load_key(Key::PlantdSigning).unwrap();
        let user = KeyPair::new_user();
        let nats =
            UserNats::new(permissions::admin()).issued_by(&self.setup.plantd_account.public_key);
        let mut claims = Claims::new(name, &user.public_key(), nats);
        tweak(&mut claims);
        let issued = issue_claims(&claims, &user, &signing).unwrap();
        (self.write_creds(name, &issued.jwt, &user), user)
    }

    fn write_creds(&self, name: &str, jwt: &str, user: &KeyPair) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.path().join(format!("{name}.creds"));
        std::fs::write(&path, Creds::render(jwt, &user.seed().unwrap())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

fn assert_refused(result: Result<Client, ConnectError>, what: &str) {
    match result {
        Err(ConnectError::Connect { source, .. }) => assert_eq!(
            source.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {source}"
        ),
        Err(other) => panic!("{what}: refused for the wrong reason: {other}"),
        Ok(_) => panic!("{what}: was admitted"),
    }
}

/// Waits for a server error containing `needle` (case-insensitive); panics after
/// [`EVENT_WAIT`].
async fn server_error(events: &mut plantd_tests::Events, needle: &str) -> String {
    plantd_tests::server_error(events, needle, EVENT_WAIT)
        .await
        .unwrap_or_else(|| panic!("no server error containing {needle:?} within {EVENT_WAIT:?}"))
}

#[tokio::test]
async fn admin_uses_jetstream_kv_in_the_plantd_account() {
    let hub = hub().await;
    let admin = hub.connect(&hub.setup.creds.admin).await.unwrap();
    let js = jetstream::new(admin);
    let store = js
        .create_key_value(kv::Config {
            bucket: "smoke".into(),
            history: 2,
            ..kv::Config::default()
        })
        .await
        .unwrap();
    let revision = store.put("greeting", "hello".into()).await.unwrap();
    assert_eq!(revision, 1);
    let value = store.get("greeting").await.unwrap().unwrap();
    assert_eq!(value.as_ref(), b"hello");
}

#[tokio::test]
async fn echo_may_answer_requests_but_publish_nothing_else() {
    let hub = hub().await;
    let admin = hub.connect(&hub.setup.creds.admin).await.unwrap();
    let mut leak = admin.subscribe("plantd.state.set.x").await.unwrap();
    admin.flush().await.unwrap();

    let (echo, mut events) = hub.connect_with_events(&hub.setup.creds.echo).await;
    let mut requests = echo.subscribe("plantd.echo.echo").await.unwrap();
    echo.flush().await.unwrap();

    // A denied publish, then a reply: the server handles one connection in order, so once the
    // reply has arrived the denied message would have arrived before it.
    echo.publish("plantd.state.set.x", "sneaky".into())
        .await
        .unwrap();
    let text = server_error(&mut events, "permissions violation for publish").await;
    assert!(text.contains("plantd.state.set.x"), "{text}");

    let responder = {
        let echo = echo.clone();
        tokio::spawn(async move {
            let request = requests.next().await.expect("one request");
            let reply = request.reply.expect("a reply subject");
            echo.publish(reply, request.payload).await.unwrap();
            echo.flush().await.unwrap();
        })
    };
    let response = timeout(EVENT_WAIT, admin.request("plantd.echo.echo", "hi".into()))
        .await
        .expect("echo answered in time")
        .expect("allow_responses lets echo reply");
    assert_eq!(response.payload.as_ref(), b"hi");
    responder.await.unwrap();
    assert!(
        leak.next().now_or_never().is_none(),
        "the denied message was delivered"
    );

    // Replies only: an inbox it was not asked on is refused, and so is listening elsewhere.
    echo.publish("_INBOX.someone", "spoof".into())
        .await
        .unwrap();
    server_error(
        &mut events,
        "permissions violation for publish to \"_inbox.someone\"",
    )
    .await;
    let _denied = echo.subscribe("plantd.state.>").await.unwrap();
    server_error(&mut events, "permissions violation for subscription").await;
}

#[tokio::test]
async fn state_may_use_its_kv_bucket_and_nothing_else() {
    let hub = hub().await;
    let (state, mut events) = hub.connect_with_events(&hub.setup.creds.state).await;
    let js = jetstream::new(state.clone());
    // What the state service's mirror does: open or create the bucket, publish, read back.
    let store = js
        .create_key_value(kv::Config {
            bucket: STATE_BUCKET.into(),
            history: 5,
            storage: jetstream::stream::StorageType::File,
            ..kv::Config::default()
        })
        .await
        .unwrap();
    store.put("site1.k", "v1".into()).await.unwrap();
    let mut stream = js.get_key_value(STATE_BUCKET).await.unwrap().stream;
    let last = stream
        .direct_get_last_for_subject(format!("$KV.{STATE_BUCKET}.site1.k"))
        .await
        .unwrap();
    assert_eq!(last.payload.as_ref(), b"v1");
    assert_eq!(stream.info().await.unwrap().state.messages, 1);

    state.publish("$KV.other.k", "x".into()).await.unwrap();
    server_error(
        &mut events,
        "permissions violation for publish to \"$kv.other.k\"",
    )
    .await;
    state.publish("plantd.echo.echo", "x".into()).await.unwrap();
    server_error(
        &mut events,
        "permissions violation for publish to \"plantd.echo.echo\"",
    )
    .await;
}

#[tokio::test]
async fn sys_user_can_look_up_account_claims() {
    let hub = hub().await;
    let sys = hub.connect(&hub.setup.creds.sys).await.unwrap();
    let plantd = &hub.setup.plantd_account;
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", plantd.public_key);
    let reply = timeout(EVENT_WAIT, sys.request(subject, "".into()))
        .await
        .expect("lookup answered in time")
        .unwrap();
    let expected = std::fs::read_to_string(&plantd.jwt_path).unwrap();
    assert_eq!(String::from_utf8_lossy(&reply.payload), expected);
}

#[tokio::test]
async fn tampered_user_jwts_are_refused() {
    let hub = hub().await;
    let (control, user) = hub.user("tamper", |_| {});
    let jwt = Creds::read(&control).unwrap().jwt;
    hub.connect(&control)
        .await
        .expect("the untampered JWT is admitted");

    let parts: Vec<&str> = jwt.split('.').collect();
    // Rewrite a claim (widen the name) and keep the signature.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["name"] = "someone-else".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    assert_refused(
        hub.connect(&hub.write_creds("forged", &forged, &user))
            .await,
        "forged claims",
    );

    // Flip one byte of the payload.
    let mut payload = b64.decode(parts[1]).unwrap();
    let at = payload.len() / 2;
    payload[at] ^= 0x01;
    let flipped = format!("{}.{}.{}", parts[0], b64.encode(payload), parts[2]);
    assert_refused(
        hub.connect(&hub.write_creds("flipped", &flipped, &user))
            .await,
        "flipped byte",
    );
}

#[tokio::test]
async fn expired_user_jwt_is_refused() {
    let hub = hub().await;
    let now = unix_now();
    let (valid, _) = hub.user("fresh", |c| c.exp = Some(now + 600));
    hub.connect(&valid)
        .await
        .expect("an unexpired JWT is admitted");
    let (expired, _) = hub.user("stale", |c| {
        c.iat = now - 120;
        c.exp = Some(now - 60);
    });
    let jwt = Creds::read(&expired).unwrap().jwt;
    assert!(matches!(
        jwt::decode::<UserNats>(&jwt),
        Err(jwt::JwtError::Expired { .. })
    ));
    assert_refused(hub.connect(&expired).await, "expired JWT");
}

#[tokio::test]
async fn signing_key_user_without_issuer_account_is_refused() {
    let hub = hub().await;
    let (with, _) = hub.user("with", |_| {});
    hub.connect(&with)
        .await
        .expect("issuer_account set: admitted");
    let (without, _) = hub.user("without", |c| c.nats.issuer_account = None);
    assert_refused(hub.connect(&without).await, "no issuer_account");
}

#[tokio::test]
async fn bearer_user_is_refused_by_disallow_bearer() {
    let hub = hub().await;
    let (control, _) = hub.user("control", |_| {});
    hub.connect(&control)
        .await
        .expect("not a bearer token: admitted");
    let (bearer, _) = hub.user("bearer", |c| c.nats.bearer_token = true);
    assert_refused(hub.connect(&bearer).await, "bearer token");
}
