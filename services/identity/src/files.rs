//! Writing and reading the secret files of a set-up: private directories, seeds and creds.
//!
//! Seeds are the keys to the whole deployment, so the rules are enforced in one place: secret
//! directories are 0700 and secret files 0600 whatever the umask, files are created fresh
//! (`create_new`, never through an existing file or symlink), and a seed file readable by
//! anyone but its owner is refused on read. Errors name the file, never its content.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nkeys::KeyPair;

use crate::bootstrap::BootstrapError;

/// Mode of directories holding secrets.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of files holding secrets (seeds, creds).
pub const SECRET_FILE_MODE: u32 = 0o600;
/// Mode of public files (JWTs, the server config snippet).
pub const PUBLIC_FILE_MODE: u32 = 0o644;

/// Creates `path` (and missing parents) and sets it to 0700.
pub fn create_private_dir(path: &Path) -> Result<(), BootstrapError> {
    fs::create_dir_all(path).map_err(|e| io("create directory", path, e))?;
    fs::set_permissions(path, Permissions::from_mode(PRIVATE_DIR_MODE))
        .map_err(|e| io("set permissions of", path, e))
}

/// Writes a new file with exactly `mode`; fails if it exists.
pub fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), BootstrapError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| io("create", path, e))?;
    // The umask may have removed bits from `mode` (never added any); make it exact.
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| io("set permissions of", path, e))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", path, e))
}

/// Reads an nkey seed file written by the bootstrap, refusing it if group or others may read it.
pub fn read_seed(path: &Path) -> Result<KeyPair, BootstrapError> {
    let meta = fs::metadata(path).map_err(|e| io("read", path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(BootstrapError::SeedPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(|e| io("read", path, e))?;
    KeyPair::from_seed(text.trim()).map_err(|_| BootstrapError::BadSeed {
        path: path.to_path_buf(),
    })
}

/// An IO error on `path` while doing `action`.
pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> BootstrapError {
    BootstrapError::Io {
        action,
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_0600_new_and_seeds_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("keys");
        create_private_dir(&private).unwrap();
        let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, PRIVATE_DIR_MODE);

        let key = KeyPair::new_account();
        let path = private.join("a.nk");
        write_new(&path, &key.seed().unwrap(), SECRET_FILE_MODE).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SECRET_FILE_MODE);
        assert_eq!(read_seed(&path).unwrap().public_key(), key.public_key());
        assert!(write_new(&path, "again", SECRET_FILE_MODE).is_err());

        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        let err = read_seed(&path).unwrap_err();
        assert!(matches!(err, BootstrapError::SeedPermissions { .. }));
        assert!(!err.to_string().contains(&key.seed().unwrap()));
    }
}
