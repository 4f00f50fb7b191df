//! NATS creds files (user JWT + nkey seed) and the auth callback that reads them.
//!
//! async-nats' `credentials_file()` reads the file once, so a client whose JWT expired loops
//! on the stale one forever (NATS-PITFALLS.md §5.3). plantd instead signs each connect's nonce
//! from the file as it is *now* ([`auth_options`]), so a renewed creds file is picked up on the
//! next reconnect. Seeds are secrets: they are never logged, never put in an error message,
//! and a creds file readable by group or others is refused.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a creds file could not be used. Messages name the file, never its content.
#[derive(Debug, Error)]
pub enum CredsError {
    /// The file could not be read.
    #[error("cannot read creds file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is readable by group or others.
    #[error(
        "creds file {path} has mode {mode:o}; it holds a secret and must be 0600 (chmod 600 it)"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A section is missing or malformed.
    #[error("creds file {path} has no {what}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Which section is missing.
        what: &'static str,
    },
    /// The seed is not a valid user nkey seed (the seed itself is not shown).
    #[error("creds file {path} holds an invalid nkey seed")]
    BadSeed {
        /// The file.
        path: PathBuf,
    },
}

/// A parsed creds file. `Debug` hides the seed.
#[derive(Clone)]
pub struct Creds {
    /// The user JWT.
    pub jwt: String,
    seed: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("seed", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Creds {
    /// Reads and checks a creds file.
    pub fn read(path: &Path) -> Result<Creds, CredsError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| CredsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CredsError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| CredsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Creds::parse(&text).map_err(|what| CredsError::Malformed {
            path: path.to_path_buf(),
            what,
        })
    }

    /// Parses the text of a creds file (the armoured blocks `nsc` and `plant` write).
    pub fn parse(text: &str) -> Result<Creds, &'static str> {
        let jwt = block_after(text, "BEGIN NATS USER JWT").ok_or("user JWT block")?;
        let seed = block_after(text, "BEGIN USER NKEY SEED").ok_or("user nkey seed block")?;
        Ok(Creds {
            jwt: jwt.to_string(),
            seed: seed.to_string(),
        })
    }

    /// Signs a server nonce with the seed.
    pub fn sign(&self, nonce: &[u8]) -> Result<Vec<u8>, &'static str> {
        let key = nkeys::KeyPair::from_seed(&self.seed).map_err(|_| "invalid nkey seed")?;
        key.sign(nonce).map_err(|_| "signing failed")
    }

    /// Renders a creds file (JWT and seed armoured the way NATS tools expect).
    pub fn render(jwt: &str, seed: &str) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        )
    }
}

/// The first non-empty line after the line containing `marker`.
fn block_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let mut lines = text.lines().skip_while(|l| !l.contains(marker));
    lines.next()?;
    lines
        .map(str::trim)
        .find(|l| !l.is_empty())
        .filter(|l| !l.starts_with("---"))
}

/// Connect options authenticating with the creds file at `path`, re-read on every connect.
pub fn auth_options(path: PathBuf) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::with_auth_callback(move |nonce| {
        let path = path.clone();
        async move {
            let creds = Creds::read(&path).map_err(async_nats::AuthError::new)?;
            let signature = creds.sign(&nonce).map_err(async_nats::AuthError::new)?;
            let mut auth = async_nats::Auth::new();
            auth.jwt = Some(creds.jwt);
            auth.signature = Some(signature);
            Ok(auth)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rendered_creds_and_signs() {
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().unwrap();
        let text = Creds::render("eyJ.header.sig", &seed);
        let creds = Creds::parse(&text).unwrap();
        assert_eq!(creds.jwt, "eyJ.header.sig");
        let sig = creds.sign(b"nonce").unwrap();
        user.verify(b"nonce", &sig).unwrap();
        assert!(!format!("{creds:?}").contains(&seed));
    }

    #[test]
    fn refuses_world_readable_and_malformed_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.creds");
        let seed = nkeys::KeyPair::new_user().seed().unwrap();
        std::fs::write(&path, Creds::render("jwt", &seed)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Creds::read(&path).unwrap_err();
        assert!(matches!(err, CredsError::Permissions { .. }));
        assert!(!err.to_string().contains(&seed));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Creds::read(&path).is_ok());
        std::fs::write(&path, "nothing here").unwrap();
        assert!(matches!(
            Creds::read(&path),
            Err(CredsError::Malformed { .. })
        ));
    }
}
