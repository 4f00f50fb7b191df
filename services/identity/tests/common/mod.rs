//! The harness of the identity end-to-end tests: a bootstrapped operator-mode hub (as
//! `tests/operator_mode.rs` starts it), the identity service run in-process through
//! [`plantd_identity::run`], and a login client doing what `plant login` does.
//!
//! Each test owns its temp dir, hub and service. Waits poll with a deadline, never a fixed
//! sleep; refusals are paired with a control that differs only in the thing under test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::{Client, ConnectErrorKind, Event};
use nkeys::{KeyPair, XKey};
use plantd_identity::bootstrap::Bootstrap;
use plantd_identity::config::IdentityConfig;
use plantd_identity::{grant, permissions, proof};
use plantd_schemas::identity::v1::{
    Grant, LoginRequest, LoginResponse, RoleBinding, User, UserCreateRequest, UserProof,
};
use plantd_shared::call::{self, CallError};
use plantd_shared::codec::{Encoding, WireMessage};
use plantd_shared::config::CommonConfig;
use plantd_shared::creds::Creds;
use plantd_shared::shutdown::Shutdown;
use plantd_shared::{ServiceError, subjects::identity};
use plantd_tests::{NatsServer, NatsServerOptions};
use tempfile::TempDir;
use tokio::sync::mpsc;

/// Timeout of one request.
pub const REQUEST: Duration = Duration::from_secs(10);
/// How long an expected asynchronous effect may take.
pub const EVENT_WAIT: Duration = Duration::from_secs(10);

/// A hub, its set-up and an identity service running against it.
pub struct Hub {
    pub dir: TempDir,
    pub setup: Bootstrap,
    pub server: NatsServer,
    pub admin: Client,
    shutdown: Shutdown,
    service: Option<tokio::task::JoinHandle<()>>,
}

impl Hub {
    /// Starts a hub and identity with default settings, except generous login rates.
    pub async fn start() -> Hub {
        Hub::start_with(|_| {}).await
    }

    /// Starts a hub and identity with `tweak` applied to its config.
    pub async fn start_with(tweak: impl FnOnce(&mut IdentityConfig)) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let setup = plantd_identity::init(&dir.path().join("data"), false).unwrap();
        let snippet = std::fs::read_to_string(&setup.server_config).unwrap();
        let server = NatsServer::start_with(NatsServerOptions {
            extra_config: Some(snippet),
            ..NatsServerOptions::default()
        })
        .await
        .unwrap();
        let mut config = IdentityConfig {
            common: CommonConfig {
                nats_url: server.url(),
                nats_creds: setup.creds.identity.display().to_string(),
                health_listen: String::new(),
                log_level: "warn".into(),
                ..CommonConfig::default()
            },
            data_dir: dir.path().join("identity").display().to_string(),
            auth_dir: setup.auth_dir.display().to_string(),
            login_rate_per_user: 1000,
            login_rate_per_client: 1000,
            ..IdentityConfig::default()
        };
        tweak(&mut config);
        let shutdown = Shutdown::new();
        let service = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(err) = plantd_identity::run(config, shutdown).await {
                    panic!("identity failed: {err}");
                }
            }
        });
        let admin = plantd_shared::creds::auth_options(setup.creds.admin.clone())
            .connect(server.url())
            .await
            .unwrap();
        let hub = Hub {
            dir,
            setup,
            server,
            admin,
            shutdown,
            service: Some(service),
        };
        plantd_tests::eventually(EVENT_WAIT, || async {
            hub.admin_call::<_, plantd_schemas::identity::v1::UserListResponse>(
                "user.list",
                &plantd_schemas::identity::v1::UserListRequest {},
            )
            .await
        })
        .await
        .expect("identity answers");
        hub
    }

    /// An admin request on `plantd.identity.admin.<op>`.
    pub async fn admin_call<Req: WireMessage, Resp: WireMessage>(
        &self,
        op: &str,
        req: &Req,
    ) -> Result<Resp, CallError> {
        call::request(
            &self.admin,
            &identity::admin(op),
            req,
            Encoding::Json,
            REQUEST,
        )
        .await
    }

    /// Creates `username` with `password` and role bindings `(role, scope)`.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        roles: &[(&str, &str)],
    ) -> User {
        let req = UserCreateRequest {
            username: username.into(),
            password: password.into(),
            org: String::new(),
            roles: roles
                .iter()
                .map(|(role, scope)| RoleBinding {
                    role: (*role).into(),
                    scope: (*scope).into(),
                })
                .collect(),
        };
        self.admin_call("user.create", &req).await.unwrap()
    }

    /// A client on the login-only credential, with the login inbox prefix.
    pub async fn login_client(&self) -> Client {
        plantd_shared::creds::auth_options(self.setup.creds.login.clone())
            .custom_inbox_prefix(permissions::LOGIN_INBOX_PREFIX)
            .connect(self.server.url())
            .await
            .unwrap()
    }

    /// Logs in as `plant login` would: fresh user key and curve key, sealed grant opened,
    /// creds written 0600.
    pub async fn login(&self, username: &str, password: &str) -> Result<Person, ServiceError> {
        let client = self.login_client().await;
        let key = KeyPair::new_user();
        self.login_with(&client, username, password, &key).await
    }

    /// [`login`](Self::login) over `client` with the user key `key`.
    pub async fn login_with(
        &self,
        client: &Client,
        username: &str,
        password: &str,
        key: &KeyPair,
    ) -> Result<Person, ServiceError> {
        let xkey = XKey::new();
        let req = LoginRequest {
            username: username.into(),
            password: password.into(),
            public_key: key.public_key(),
            xkey: xkey.public_key(),
        };
        let reply: LoginResponse = call::request(
            client,
            &identity::op("login"),
            &req,
            Encoding::Json,
            REQUEST,
        )
        .await
        .map_err(service_error)?;
        let grant = grant::open(&reply.sealed_grant, &xkey, &reply.server_xkey).unwrap();
        let creds = self.write_creds(
            &format!("{username}-{}", &key.public_key()[..8]),
            &grant.jwt,
            key,
        );
        Ok(Person {
            key: KeyPair::from_seed(&key.seed().unwrap()).unwrap(),
            grant,
            creds,
            url: self.server.url(),
        })
    }

    /// Writes a creds file (0600) for `jwt` and `key`.
    pub fn write_creds(&self, name: &str, jwt: &str, key: &KeyPair) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.path().join(format!("{name}.creds"));
        std::fs::write(&path, Creds::render(jwt, &key.seed().unwrap())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Stops the service and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.service.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A logged-in person. `Debug` names the user, never the seed.
pub struct Person {
    pub key: KeyPair,
    pub grant: Grant,
    pub creds: PathBuf,
    pub url: String,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("username", &self.grant.username)
            .finish_non_exhaustive()
    }
}

impl Person {
    /// Connects with its creds and inbox prefix; events go to the returned channel.
    pub async fn connect(
        &self,
    ) -> Result<(Client, mpsc::UnboundedReceiver<Event>), async_nats::ConnectError> {
        connect_as(&self.creds, &self.grant.inbox_prefix, &self.url).await
    }

    /// A proof for a request on `subject`, now.
    pub fn proof(&self, subject: &str) -> UserProof {
        proof::sign(&self.grant.jwt, &self.key, subject, proof::now_ms())
    }
}

/// Connects with `creds` and `inbox_prefix`, forwarding events.
pub async fn connect_as(
    creds: &Path,
    inbox_prefix: &str,
    url: &str,
) -> Result<(Client, mpsc::UnboundedReceiver<Event>), async_nats::ConnectError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = plantd_shared::creds::auth_options(creds.to_path_buf())
        .custom_inbox_prefix(inbox_prefix)
        .max_reconnects(Some(3))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
            }
        })
        .connect(url)
        .await?;
    Ok((client, rx))
}

/// Asserts a connection attempt was refused as unauthorized.
pub fn assert_refused<T>(result: Result<T, async_nats::ConnectError>, what: &str) {
    match result {
        Err(err) => assert_eq!(
            err.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {err}"
        ),
        Ok(_) => panic!("{what}: was admitted"),
    }
}

/// Waits for a server error containing `needle` (case-insensitive); panics after
/// [`EVENT_WAIT`].
pub async fn server_error(events: &mut plantd_tests::Events, needle: &str) -> String {
    plantd_tests::server_error(events, needle, EVENT_WAIT)
        .await
        .unwrap_or_else(|| panic!("no server error containing {needle:?} within {EVENT_WAIT:?}"))
}

/// Waits until `client` is no longer connected (the server closed it).
pub async fn disconnected(client: &Client) {
    plantd_tests::eventually(EVENT_WAIT, || async {
        (client.connection_state() != async_nats::connection::State::Connected).then_some(())
    })
    .await
    .expect("the server closed the connection");
}

/// The service error inside a call error (panics on transport errors).
pub fn service_error(err: CallError) -> ServiceError {
    match err {
        CallError::Service(err) => err,
        other => panic!("expected a service error, got {other}"),
    }
}
