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
//! creds/echo.creds     0600    echo service, least privilege (crate::permissions)
//! creds/state.creds    0600    state service, least privilege
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
use crate::files::{
    PUBLIC_FILE_MODE, SECRET_FILE_MODE, create_private_dir, io, read_seed, write_new,
};
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
    /// A seed file does not hold a valid seed (the content is not shown).
    #[error("seed file {path} does not hold a valid nkey seed")]
    BadSeed {
        /// The file.
        path: PathBuf,
    },
}

/// The seeds a set-up keeps in `keys/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Operator identity key (signs the operator JWT only).
    Operator,
    /// Operator signing key (signs account JWTs).
    OperatorSigning,
    /// System account identity key.
    System,
    /// System account signing key (signs SYS users).
    SystemSigning,
    /// plantd account identity key.
    Plantd,
    /// plantd account signing key (signs plantd users).
    PlantdSigning,
}

impl Key {
    /// All keys, in the order they are created.
    pub const ALL: [Key; 6] = [
        Key::Operator,
        Key::OperatorSigning,
        Key::System,
        Key::SystemSigning,
        Key::Plantd,
        Key::PlantdSigning,
    ];

    /// File name under `keys/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Key::Operator => "operator.nk",
            Key::OperatorSigning => "operator-signing.nk",
            Key::System => "sys.nk",
            Key::SystemSigning => "sys-signing.nk",
            Key::Plantd => "plantd.nk",
            Key::PlantdSigning => "plantd-signing.nk",
        }
    }

    fn generate(self) -> KeyPair {
        match self {
            Key::Operator | Key::OperatorSigning => KeyPair::new_operator(),
            _ => KeyPair::new_account(),
        }
    }
}

/// One account of the set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSetup {
    /// Its public key (`A…`).
    pub public_key: String,
    /// Public key of its signing key.
    pub signing_key: String,
    /// Its JWT file.
    pub jwt_path: PathBuf,
}

/// The creds files written for the bootstrap users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredsFiles {
    /// plantd admin, unrestricted.
    pub admin: PathBuf,
    /// SYS user that may push and look up account JWTs.
    pub sys: PathBuf,
    /// echo service.
    pub echo: PathBuf,
    /// state service.
    pub state: PathBuf,
}

/// A set-up on disk: where everything is and the public keys. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// `<data>/auth`.
    pub auth_dir: PathBuf,
    /// Operator public key (`O…`).
    pub operator: String,
    /// Operator signing key public key.
    pub operator_signing_key: String,
    /// The operator JWT file.
    pub operator_jwt: PathBuf,
    /// The system account.
    pub system_account: AccountSetup,
    /// The plantd account.
    pub plantd_account: AccountSetup,
    /// The full resolver's store.
    pub resolver_dir: PathBuf,
    /// The nats-server config snippet (include it, or append it to the hub config).
    pub server_config: PathBuf,
    /// The creds files.
    pub creds: CredsFiles,
}

impl Bootstrap {
    /// Where the seed of `key` is.
    pub fn key_path(&self, key: Key) -> PathBuf {
        keys_dir(&self.auth_dir).join(key.file_name())
    }

    /// Loads the seed of `key` (refused unless 0600).
    pub fn load_key(&self, key: Key) -> Result<KeyPair, BootstrapError> {
        read_seed(&self.key_path(key))
    }
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
    let account_jwt = |name: &str, account: &KeyPair, signing: &KeyPair, limits| {
        let nats = AccountNats::new(limits, vec![signing.public_key()]);
        jwt::encode(
            &Claims::new(name, &account.public_key(), nats),
            operator_signing,
        )
    };
    let sys_jwt = account_jwt(SYSTEM_ACCOUNT, sys, sys_signing, OperatorLimits::system())?;
    let plantd_jwt = account_jwt(
        PLANTD_ACCOUNT,
        plantd,
        plantd_signing,
        OperatorLimits::plantd(),
    )?;

    write_new(&stage.join("operator.jwt"), &operator_jwt, PUBLIC_FILE_MODE)?;
    for (name, jwt) in [(SYSTEM_ACCOUNT, &sys_jwt), (PLANTD_ACCOUNT, &plantd_jwt)] {
        write_new(&account_path(stage, name), jwt, PUBLIC_FILE_MODE)?;
    }

    let users: [(&str, IssuedUser); 4] = [
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
            subjects::state::SERVICE,
            issue_user(
                subjects::state::SERVICE,
                permissions::state_service(STATE_BUCKET),
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
        creds: CredsFiles {
            admin: creds_path(auth_dir, "admin"),
            sys: creds_path(auth_dir, "sys"),
            echo: creds_path(auth_dir, "echo"),
            state: creds_path(auth_dir, subjects::state::SERVICE),
        },
    })
}

fn keys_dir(auth_dir: &Path) -> PathBuf {
    auth_dir.join("keys")
}

fn account_path(auth_dir: &Path, name: &str) -> PathBuf {
    auth_dir.join("accounts").join(format!("{name}.jwt"))
}

fn creds_path(auth_dir: &Path, name: &str) -> PathBuf {
    auth_dir.join("creds").join(format!("{name}.creds"))
}

#[cfg(test)]
mod tests;
