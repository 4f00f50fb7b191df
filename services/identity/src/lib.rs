//! plantd identity: who may connect to the hub and what they may do there.
//!
//! The hub nats-server runs in operator mode (DESIGN.md, "Security model"): it trusts one
//! operator key, knows accounts through signed account JWTs kept by its `full` resolver, and
//! admits a client only with a user JWT signed for one of those accounts plus a signature of
//! its connect nonce by the user's nkey. This crate is the identity service that issues and
//! revokes those JWTs, and the groundwork it stands on:
//!
//! - [`jwt`], [`claims`]: NATS JWT encoding and verification and the claim shapes, every
//!   limit explicit (an omitted limit is 0 and locks users out, NATS-PITFALLS.md §5.1);
//! - [`permissions`], [`issue`], [`bootstrap`], [`server_config`], [`files`]: the service
//!   presets, issuing creds, and `init` (operator, accounts, signing keys, bootstrap creds);
//! - the service ([`run`]): [`store`] (users, orgs, roles, sessions, revocations in SQLite),
//!   [`roles`] (role bindings → NATS permissions), [`password`] (argon2id), [`ratelimit`],
//!   [`grant`] (person JWTs, sealed login replies), [`proof`] (user proofs), [`authorize`]
//!   (permission checks), [`revocation`] (pushing the account JWT) and [`handlers`].
//!
//! docs/identity.md describes the whole design and its limits.
#![forbid(unsafe_code)]

pub mod authorize;
pub mod bootstrap;
pub mod claims;
pub mod client;
pub mod config;
pub mod files;
pub mod grant;
pub mod handlers;
pub mod issue;
pub mod jwt;
pub mod password;
pub mod permissions;
pub mod proof;
pub mod ratelimit;
pub mod revocation;
pub mod roles;
pub mod server_config;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plantd_shared::{
    connection::{StartMode, connect},
    data_dir_lock::DataDirLock,
    health::Status,
    micro::ServiceBuilder,
    process::{ServeError, ServiceProcess},
    shutdown::Shutdown,
    subjects::identity::SERVICE,
};

pub use bootstrap::{Bootstrap, BootstrapError, init};
pub use config::IdentityConfig;

/// How long an admin change waits for the server to confirm its revocations.
const REVOCATION_WAIT: Duration = Duration::from_secs(10);

/// Runs the identity service until `shutdown`: reads the bootstrap's keys, opens the store,
/// starts the account updater (which pushes the account JWT once at start), serves the
/// endpoints, and on shutdown drains requests and stops the updater.
pub async fn run(config: IdentityConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    ServeError::check_config(&config.problems())?;
    // Before anything opens the database or says it is up: one identity per data dir.
    let _lock = DataDirLock::acquire(&config.data_dir, SERVICE)?;
    let process = ServiceProcess::start(SERVICE, &config.common, shutdown.clone()).await?;
    let setup_dir = Bootstrap::open(&PathBuf::from(&config.auth_dir)).map_err(setup)?;
    let signing = setup_dir
        .load_key(bootstrap::Key::PlantdSigning)
        .map_err(setup)?;
    let operator_signing = setup_dir
        .load_key(bootstrap::Key::OperatorSigning)
        .map_err(setup)?;
    if signing.public_key() != setup_dir.plantd_account.signing_key
        || operator_signing.public_key() != setup_dir.operator_signing_key
    {
        return Err(setup(format!(
            "the signing seeds in {} do not belong to its account and operator JWTs",
            setup_dir.auth_dir.display()
        )));
    }
    let store = open_store(&config.data_dir).await?;
    let sys = connect(
        &config.common.nats_url,
        Some(setup_dir.creds.sys.clone()),
        "plantd-identity-sys",
        StartMode::RetryInBackground,
        None,
    )
    .await?;

    process
        .health
        .set("account", Status::Degraded, "account jwt not pushed yet");
    let updater_shutdown = Shutdown::new();
    let (updater, updater_task) = revocation::AccountUpdater::start(
        revocation::Pusher {
            store: store.clone(),
            sys,
            account: setup_dir.plantd_account.public_key.clone(),
            account_signing_key: setup_dir.plantd_account.signing_key.clone(),
            operator_signing_key: operator_signing,
            prune_margin: i64::try_from(config.clock_skew_secs).unwrap_or(i64::MAX),
            check_every: (config.account_check_secs > 0)
                .then(|| Duration::from_secs(config.account_check_secs)),
            health: process.health.clone(),
        },
        updater_shutdown.clone(),
    );

    let app = Arc::new(handlers::App {
        store,
        passwords: password::Passwords::new(config.max_concurrent_hashes)
            .await
            .map_err(|e| setup(e.message))?,
        issuer: grant::Issuer::new(
            setup_dir.plantd_account.public_key.clone(),
            signing,
            config.user_jwt_ttl(),
            config.state_bucket.clone(),
        ),
        verifier: proof::ProofVerifier {
            account: setup_dir.plantd_account.public_key.clone(),
            signing_keys: vec![setup_dir.plantd_account.signing_key.clone()],
            skew_ms: i64::try_from(config.clock_skew_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        },
        updater,
        user_limiter: ratelimit::RateLimiter::per_minute(config.login_rate_per_user),
        client_limiter: ratelimit::RateLimiter::per_minute(config.login_rate_per_client),
        min_password_len: config.min_password_len,
        state_bucket: config.state_bucket.clone(),
        revocation_wait: REVOCATION_WAIT,
    });
    let builder = ServiceBuilder::new(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Users, organizations and roles; issues and revokes NATS user JWTs")
        .metadata("account", setup_dir.plantd_account.public_key.clone());
    let served = process.serve(handlers::register(builder, app)).await;

    updater_shutdown.trigger();
    let _ = updater_task.await;
    served.map(|_| ())
}

async fn open_store(data_dir: &str) -> Result<store::Store, ServeError> {
    let data_dir = PathBuf::from(data_dir);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
        let path = data_dir.join("identity.db");
        store::Store::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
    })
    .await
    .map_err(|e| setup(format!("store start-up task failed: {e}")))?
    .map_err(setup)
}

fn setup(err: impl std::fmt::Display) -> ServeError {
    ServeError::Setup(err.to_string())
}
