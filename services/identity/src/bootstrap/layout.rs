//! Where a set-up's files live, and how a running service finds them again.
//!
//! [`init`](super::init) writes the layout once; the identity service, `plant admin` and
//! `plant up` later [`Bootstrap::open`] the same `auth` directory to learn the public keys and
//! paths without holding any secret. Seeds are only read on demand through
//! [`Bootstrap::load_key`], which refuses a seed file others may read.

use std::fs;
use std::path::{Path, PathBuf};

use nkeys::KeyPair;
use plantd_shared::subjects;

use super::{BootstrapError, PLANTD_ACCOUNT, SYSTEM_ACCOUNT};
use crate::claims::{AccountNats, Claims, OperatorNats};
use crate::files::{io, read_seed};
use crate::{jwt, permissions};

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

    pub(super) fn generate(self) -> KeyPair {
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
    /// Its JWT file (as bootstrapped; the server's resolver holds later updates).
    pub jwt_path: PathBuf,
}

/// The creds files written for the bootstrap users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredsFiles {
    /// plantd admin, unrestricted.
    pub admin: PathBuf,
    /// SYS user that may push and look up account JWTs.
    pub sys: PathBuf,
    /// echo module.
    pub echo: PathBuf,
    /// metric module.
    pub metric: PathBuf,
    /// state service.
    pub state: PathBuf,
    /// identity service.
    pub identity: PathBuf,
    /// bus service.
    pub bus: PathBuf,
    /// logger service.
    pub logger: PathBuf,
    /// The login-only user every `plant login` shares ([`crate::permissions::login_only`]).
    pub login: PathBuf,
    /// The web-api bridge's own user ([`crate::permissions::web_api_bridge`]).
    pub web_api: PathBuf,
}

impl CredsFiles {
    /// The creds paths of a set-up in `auth_dir`.
    pub fn in_dir(auth_dir: &Path) -> CredsFiles {
        CredsFiles {
            admin: creds_path(auth_dir, "admin"),
            sys: creds_path(auth_dir, "sys"),
            echo: creds_path(auth_dir, "echo"),
            metric: creds_path(auth_dir, permissions::METRIC_USER),
            state: creds_path(auth_dir, subjects::state::SERVICE),
            identity: creds_path(auth_dir, subjects::identity::SERVICE),
            bus: creds_path(auth_dir, subjects::bus::SERVICE),
            logger: creds_path(auth_dir, subjects::log::SERVICE),
            login: creds_path(auth_dir, permissions::LOGIN_USER),
            web_api: creds_path(auth_dir, permissions::WEB_API_USER),
        }
    }
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

    /// Reads the set-up [`init`](super::init) wrote in `auth_dir`: the public keys come from
    /// the operator and account JWTs (verified, not trusted blindly), the paths from the layout.
    /// Reads no seed.
    pub fn open(auth_dir: &Path) -> Result<Bootstrap, BootstrapError> {
        let auth_dir = std::path::absolute(auth_dir).map_err(|e| io("resolve", auth_dir, e))?;
        let operator_jwt = auth_dir.join("operator.jwt");
        let operator: Claims<OperatorNats> = read_jwt(&operator_jwt)?;
        let operator_signing_key = first_key(&operator_jwt, &operator.nats.signing_keys)?;
        let account = |name: &str| -> Result<AccountSetup, BootstrapError> {
            let jwt_path = account_path(&auth_dir, name);
            let claims: Claims<AccountNats> = read_jwt(&jwt_path)?;
            if !operator.nats.signing_keys.contains(&claims.iss) {
                return Err(corrupt(
                    &jwt_path,
                    "is not signed by the operator signing key",
                ));
            }
            Ok(AccountSetup {
                signing_key: first_key(&jwt_path, &claims.nats.signing_keys)?,
                public_key: claims.sub,
                jwt_path,
            })
        };
        let system_account = account(SYSTEM_ACCOUNT)?;
        if system_account.public_key != operator.nats.system_account {
            return Err(corrupt(
                &system_account.jwt_path,
                "is not the operator's system account",
            ));
        }
        Ok(Bootstrap {
            plantd_account: account(PLANTD_ACCOUNT)?,
            system_account,
            operator: operator.sub,
            operator_signing_key,
            operator_jwt,
            resolver_dir: auth_dir.join("resolver"),
            server_config: auth_dir.join("nats-operator.conf"),
            creds: CredsFiles::in_dir(&auth_dir),
            auth_dir,
        })
    }
}

fn read_jwt<N: crate::claims::NatsClaim>(path: &Path) -> Result<Claims<N>, BootstrapError> {
    let text = fs::read_to_string(path).map_err(|e| io("read", path, e))?;
    jwt::decode(text.trim()).map_err(|e| corrupt(path, &e.to_string()))
}

fn first_key(path: &Path, keys: &[String]) -> Result<String, BootstrapError> {
    keys.first()
        .cloned()
        .ok_or_else(|| corrupt(path, "lists no signing key"))
}

pub(super) fn corrupt(path: &Path, message: &str) -> BootstrapError {
    BootstrapError::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

pub(super) fn keys_dir(auth_dir: &Path) -> PathBuf {
    auth_dir.join("keys")
}

pub(super) fn account_path(auth_dir: &Path, name: &str) -> PathBuf {
    auth_dir.join("accounts").join(format!("{name}.jwt"))
}

pub(super) fn creds_path(auth_dir: &Path, name: &str) -> PathBuf {
    auth_dir.join("creds").join(format!("{name}.creds"))
}
