//! `init`: a new operator-mode trust chain for a plantd hub, on disk.
//!
//! What it creates under `<data>/auth/` (DESIGN.md, "Security model"):
//!
//! ```text
//! operator.jwt                 the trust root, self-signed, lists the operator signing key
//! accounts/SYS.jwt             system account (no JetStream), signed by the operator signing key
//! accounts/plantd.jwt          the plantd account (JetStream on, disallow_bearer)
//! keys/*.nk            0600    seeds: operator, operator-signing, sys, sys-signing, plantd,
//!                              plantd-signing (dir 0700; take them offline after set-up)
//! creds/admin.creds    0600    plantd admin, no restrictions
//! creds/sys.creds      0600    SYS user for $SYS.REQ.CLAIMS.UPDATE / LOOKUP
//! creds/echo.creds     0600    echo module, least privilege (crate::permissions)
//! creds/metric.creds   0600    metric module: its registry entries, samples on the data bus
//! creds/state.creds    0600    state service, least privilege
//! creds/identity.creds 0600    identity service: its endpoints and replies only
//! creds/buses.creds    0600    bus service: bus and pipe streams
//! creds/logger.creds   0600    logger: the log stream
//! creds/login.creds    0600    login-only user shared by every `plant login`: publish to
//!                              plantd.identity.login, hear _INBOX_login.> (permissions::login_only)
//! creds/web-api.creds  0600    the web-api bridge: what login.creds may do, plus its own log
//!                              records plantd.log.web-api.> (permissions::web_api_bridge)
//! resolver/            0700    the full resolver's store, filled by nats-server
//! nats-operator.conf           the server config snippet (crate::server_config)
//! ```
//!
//! Accounts are signed by the operator *signing* key and the operator is marked
//! `strict_signing_key_usage`, users by the account signing keys with `issuer_account`, so the
//! operator and account identity seeds are needed only to re-key — they can leave the machine.
//!
//! The set-up is written into a staging directory next to `auth/` and renamed into place, so
//! a failure half-way leaves no half set-up. An existing `auth/` is never touched unless
//! `force`, and then it is replaced whole (its resolver store included: JWTs of the old
//! operator mean nothing to the new one). Seeds are never logged or put in error messages.

use std::fs;
use std::path::{Path, PathBuf};

use nkeys::KeyPair;
use plantd_shared::subjects;
use thiserror::Error;

use crate::claims::{AccountNats, Claims, OperatorLimits, OperatorNats};
use crate::files::{PUBLIC_FILE_MODE, SECRET_FILE_MODE, create_private_dir, io, write_new};
use crate::issue::{IssuedUser, issue_user};
use crate::jwt::{self, JwtError};
use crate::permissions;
use crate::server_config::OperatorMode;

/// Directory under the data dir that holds the set-up.
pub const AUTH_DIR: &str = "auth";
/// Name of the operator.
pub const OPERATOR_NAME: &str = "plantd";
/// Name of the plantd account.
pub const PLANTD_ACCOUNT: &str = "plantd";
/// Name of the system account.
pub const SYSTEM_ACCOUNT: &str = "SYS";
/// The KV bucket the state service user may use (the state service's default).
pub const STATE_BUCKET: &str = "plantd-state";

/// Why a set-up could not be created or read. Never contains a seed.
#[derive(Debug, Error)]
pub enum BootstrapError {
    /// A set-up exists and `force` was not given.
    #[error(
        "{path} already holds an identity set-up; pass force to replace it \
         (this re-keys the whole deployment)"
    )]
    AlreadyInitialized {
        /// The existing `auth` dir.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A path cannot be written into the nats-server config.
    #[error(
        "path {path} cannot be used in a nats-server config \
         (no '\"', '\\' or line breaks, UTF-8 only)"
    )]
    UnsafePath {
        /// The path.
        path: PathBuf,
    },
    /// A JWT could not be built.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// A seed file is readable by others.
    #[error("seed file {path} has mode {mode:o}; it must be 0600")]
    SeedPermissions {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A file of the set-up is not what `init` wrote (unreadable JWT, missing signing key…).
    #[error("{path} {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A seed file does not hold a valid seed (the content is not shown).
    #[error("seed file {path} does not hold a valid nkey seed")]
    BadSeed {
        /// The file.
        path: PathBuf,
    },
}

/// Creates a new set-up in `<data_dir>/auth`; see the module docs. Refuses to replace an
/// existing one unless `force`.
pub fn init(data_dir: &Path, force: bool) -> Result<Bootstrap, BootstrapError> {
    let data_dir = std::path::absolute(data_dir).map_err(|e| io("resolve", data_dir, e))?;
    let auth_dir = data_dir.join(AUTH_DIR);
    if auth_dir.symlink_metadata().is_ok() && !force {
        return Err(BootstrapError::AlreadyInitialized { path: auth_dir });
    }
    fs::create_dir_all(&data_dir).map_err(|e| io("create directory", &data_dir, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".auth-staging-")
        .tempdir_in(&data_dir)
        .map_err(|e| io("create a staging directory in", &data_dir, e))?;
    let bootstrap = write_setup(staging.path(), &auth_dir)?;

    // force: move the old set-up aside (deleted when `old` drops) before swapping in the new.
    let old = match auth_dir.symlink_metadata() {
        Ok(_) => {
            let old = tempfile::Builder::new()
                .prefix(".auth-old-")
                .tempdir_in(&data_dir)
                .map_err(|e| io("create a directory in", &data_dir, e))?;
            fs::rename(&auth_dir, old.path().join(AUTH_DIR))
                .map_err(|e| io("move aside", &auth_dir, e))?;
            Some(old)
        }
        Err(_) => None,
    };
    if let Err(e) = fs::rename(staging.path(), &auth_dir) {
        // Put the old set-up back rather than leave none; `staging` is removed on drop.
        if let Some(old) = &old {
            let _ = fs::rename(old.path().join(AUTH_DIR), &auth_dir);
        }
        return Err(io("move into place", staging.path(), e));
    }
    // Renamed away: nothing is left for the TempDir to delete.
    let _ = staging.keep();
    tracing::info!(
        auth_dir = %auth_dir.display(),
        operator = %bootstrap.operator,
        system_account = %bootstrap.system_account.public_key,
        plantd_account = %bootstrap.plantd_account.public_key,
        "created the operator, accounts and bootstrap creds"
    );
    Ok(bootstrap)
}

/// Writes a whole set-up into `stage`, with every path in it (config snippet, returned
/// [`Bootstrap`]) pointing at `auth_dir`, where it will be moved.
fn write_setup(stage: &Path, auth_dir: &Path) -> Result<Bootstrap, BootstrapError> {
    create_private_dir(stage)?;
    for dir in ["keys", "creds", "resolver", "accounts"] {
        create_private_dir(&stage.join(dir))?;
    }
    let keys: Vec<KeyPair> = Key::ALL.iter().map(|k| k.generate()).collect();
    for (key, pair) in Key::ALL.iter().zip(&keys) {
        let seed = pair.seed().map_err(|e| JwtError::Encode(e.to_string()))?;
        write_new(
            &keys_dir(stage).join(key.file_name()),
            &format!("{seed}\n"),
            SECRET_FILE_MODE,
        )?;
    }
    let [
        operator,
        operator_signing,
        sys,
        sys_signing,
        plantd,
        plantd_signing,
    ] = &keys[..]
    else {
        unreachable!("one key pair per Key::ALL entry");
    };
    let sys_pub = sys.public_key();
    let plantd_pub = plantd.public_key();

    let operator_claims = Claims::new(
        OPERATOR_NAME,
        &operator.public_key(),
        OperatorNats::new(&sys_pub, vec![operator_signing.public_key()]),
    );
    let operator_jwt = jwt::encode(&operator_claims, operator)?;
    let sys_jwt = jwt::encode(
        &system_account_claims(&sys_pub, &sys_signing.public_key()),
        operator_signing,
    )?;
    let plantd_jwt = jwt::encode(
        &plantd_account_claims(&plantd_pub, &plantd_signing.public_key()),
        operator_signing,
    )?;

    write_new(&stage.join("operator.jwt"), &operator_jwt, PUBLIC_FILE_MODE)?;
    for (name, jwt) in [(SYSTEM_ACCOUNT, &sys_jwt), (PLANTD_ACCOUNT, &plantd_jwt)] {
        write_new(&account_path(stage, name), jwt, PUBLIC_FILE_MODE)?;
    }

    let users: [(&str, IssuedUser); 10] = [
        (
            "admin",
            issue_user("admin", permissions::admin(), &plantd_pub, plantd_signing)?,
        ),
        (
            "sys",
            issue_user("sys", permissions::system_updater(), &sys_pub, sys_signing)?,
        ),
        (
            "echo",
            issue_user(
                "echo",
                permissions::echo_service(),
                &plantd_pub,
                plantd_signing,
            )?,
        ),
        (
            permissions::METRIC_USER,
            issue_user(
                permissions::METRIC_USER,
                permissions::metric_service(),
                &plantd_pub,
                plantd_signing,
            )?,
        ),
        (
            subjects::state::SERVICE,
            issue_user(
                subjects::state::SERVICE,
                permissions::state_service(STATE_BUCKET),
                &plantd_pub,
                plantd_signing,
            )?,
        ),
        (
            subjects::identity::SERVICE,
            issue_user(
                subjects::identity::SERVICE,
                permissions::identity_service(),
                &plantd_pub,
                plantd_signing,
            )?,
        ),
        (
            subjects::bus::SERVICE,
            issue_user(
                subjects::bus::SERVICE,
                permissions::bus_service(subjects::bus::DEFAULT_BUSES),
                &plantd_pub,
                plantd_signing,
            )?,
        ),
        (
            subjects::log::SERVICE,
            issue_user(
                subjects::log::SERVICE,
                permissions::logger_service(),
                &plantd_pub,
                plantd_signing,
            )?,
        ),
        (
            permissions::LOGIN_USER,
            issue_user(
                permissions::LOGIN_USER,
                permissions::login_only(),
                &plantd_pub,
                plantd_signing,
            )?,
        ),
        (
            permissions::WEB_API_USER,
            issue_user(
                permissions::WEB_API_USER,
                permissions::web_api_bridge(),
                &plantd_pub,
                plantd_signing,
            )?,
        ),
    ];
    for (name, user) in &users {
        write_new(&creds_path(stage, name), user.creds(), SECRET_FILE_MODE)?;
    }

    let resolver_dir = auth_dir.join("resolver");
    let snippet = OperatorMode {
        operator_jwt: &auth_dir.join("operator.jwt"),
        system_account: &sys_pub,
        resolver_dir: &resolver_dir,
        preload: &[(&sys_pub, &sys_jwt), (&plantd_pub, &plantd_jwt)],
    }
    .render()?;
    write_new(
        &stage.join("nats-operator.conf"),
        &snippet,
        PUBLIC_FILE_MODE,
    )?;

    Ok(Bootstrap {
        auth_dir: auth_dir.to_path_buf(),
        operator: operator.public_key(),
        operator_signing_key: operator_signing.public_key(),
        operator_jwt: auth_dir.join("operator.jwt"),
        system_account: AccountSetup {
            public_key: sys_pub,
            signing_key: sys_signing.public_key(),
            jwt_path: account_path(auth_dir, SYSTEM_ACCOUNT),
        },
        plantd_account: AccountSetup {
            public_key: plantd_pub,
            signing_key: plantd_signing.public_key(),
            jwt_path: account_path(auth_dir, PLANTD_ACCOUNT),
        },
        resolver_dir,
        server_config: auth_dir.join("nats-operator.conf"),
        creds: CredsFiles::in_dir(auth_dir),
    })
}

impl Bootstrap {
    /// Re-issues the creds of the bootstrap services (echo, metric, state, identity, buses,
    /// logger, web-api) whose
    /// permissions differ from what this version grants, or that have none yet (after an upgrade changed
    /// [`permissions`]), so an existing set-up keeps working without `init --force`. Each
    /// is a new user key of the same account, written 0600 beside the old file and renamed
    /// over it. Returns the names re-issued. Call it while those services are stopped: they
    /// read their creds on every (re)connect.
    pub fn refresh_service_creds(&self) -> Result<Vec<&'static str>, BootstrapError> {
        let services = [
            ("echo", permissions::echo_service(), &self.creds.echo),
            (
                permissions::METRIC_USER,
                permissions::metric_service(),
                &self.creds.metric,
            ),
            (
                subjects::state::SERVICE,
                permissions::state_service(STATE_BUCKET),
                &self.creds.state,
            ),
            (
                subjects::identity::SERVICE,
                permissions::identity_service(),
                &self.creds.identity,
            ),
            (
                subjects::bus::SERVICE,
                permissions::bus_service(subjects::bus::DEFAULT_BUSES),
                &self.creds.bus,
            ),
            (
                subjects::log::SERVICE,
                permissions::logger_service(),
                &self.creds.logger,
            ),
            (
                permissions::WEB_API_USER,
                permissions::web_api_bridge(),
                &self.creds.web_api,
            ),
        ];
        let mut refreshed = Vec::new();
        let mut signing_key = None;
        for (name, wanted, path) in services {
            // A service added by an upgrade has no creds yet: issue them.
            let current = if !path.exists() {
                None
            } else {
                Some(
                    plantd_shared::creds::Creds::read(path)
                        .map_err(|e| layout::corrupt(path, &e.to_string()))
                        .and_then(|c| {
                            jwt::decode::<crate::claims::UserNats>(&c.jwt)
                                .map_err(|e| layout::corrupt(path, &e.to_string()))
                        })?,
                )
            };
            if current.is_some_and(|c| c.nats.permissions == wanted) {
                continue;
            }
            let key = match &signing_key {
                Some(key) => key,
                None => signing_key.insert(self.load_key(Key::PlantdSigning)?),
            };
            let user = issue_user(name, wanted, &self.plantd_account.public_key, key)?;
            let fresh = path.with_extension("creds.new");
            let _ = fs::remove_file(&fresh); // left by an interrupted refresh
            write_new(&fresh, user.creds(), SECRET_FILE_MODE)?;
            fs::rename(&fresh, path).map_err(|e| io("replace", path, e))?;
            refreshed.push(name);
        }
        Ok(refreshed)
    }
}

/// The complete claims of the plantd account `account` with its signing key `signing_key`
/// and nothing revoked, issued now: JetStream on, every limit explicit, bearer tokens refused.
/// The one definition both `init` and identity's account updater (which adds revocations and
/// re-signs) build on, so an update can never drop a limit or a signing key (PITFALLS §5.4).
pub fn plantd_account_claims(account: &str, signing_key: &str) -> Claims<AccountNats> {
    let nats = AccountNats::new(OperatorLimits::plantd(), vec![signing_key.to_string()]);
    Claims::new(PLANTD_ACCOUNT, account, nats)
}

/// The complete claims of the system account, issued now (see [`plantd_account_claims`]).
pub fn system_account_claims(account: &str, signing_key: &str) -> Claims<AccountNats> {
    let nats = AccountNats::new(OperatorLimits::system(), vec![signing_key.to_string()]);
    Claims::new(SYSTEM_ACCOUNT, account, nats)
}

mod layout;
#[cfg(test)]
mod tests;

pub use layout::{AccountSetup, Bootstrap, CredsFiles, Key};
use layout::{account_path, creds_path, keys_dir};
