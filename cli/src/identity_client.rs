//! The client side of plantd identity: the login session on disk, user proofs, the sealed
//! grant, and reading a password without echo.
//!
//! `plant login` leaves two files in the config dir (`$PLANTD_CONFIG_DIR`, else
//! `~/.config/plantd`), both 0600 in a 0700 dir:
//!
//! - `user.creds`: a standard NATS creds file (JWT + nkey seed), so `nats --creds`, nats-py
//!   or any other client can use the session unchanged;
//! - `user.json`, the *sidecar*: who logged in, until when, and the inbox prefix the server
//!   lets this user subscribe to. A client that keeps the default `_INBOX` cannot receive
//!   replies, so [`crate::context`] sets `custom_inbox_prefix` from the sidecar of whatever
//!   creds file it uses.
//!
//! Files are written to a temp file in the same dir and renamed into place, so a crash never
//! leaves half a creds file. The seed is generated here and never leaves the machine: the
//! identity service only sees the public key, and seals the grant to a curve key made for this
//! one login. Nothing here prints or logs a seed, a password or a JWT.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plantd_schemas::identity::v1::{RoleBinding, UserProof};
use plantd_shared::creds::Creds;
use serde::{Deserialize, Serialize};

/// Overrides the config dir (tests, several sessions side by side).
pub const CONFIG_DIR_ENV: &str = "PLANTD_CONFIG_DIR";
/// The session's creds file in the config dir.
pub const SESSION_CREDS: &str = "user.creds";

/// The config dir: `$PLANTD_CONFIG_DIR`, else `$HOME/.config/plantd`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither PLANTD_CONFIG_DIR nor HOME is set: nowhere to keep the login session")?;
    Ok(PathBuf::from(home).join(".config").join("plantd"))
}

/// Where `plant login` writes the session's creds file.
pub fn session_creds_path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join(SESSION_CREDS))
}

/// The sidecar of a creds file: the same path with the extension `json`.
pub fn sidecar_path(creds: &Path) -> PathBuf {
    creds.with_extension("json")
}

/// What the sidecar records about a login session. No secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// Who logged in.
    pub username: String,
    /// The inbox prefix the session must use (`_INBOX_<username>`).
    pub inbox_prefix: String,
    /// The user's public nkey (`U…`), the key the JWT is bound to.
    pub public_key: String,
    /// Expiry of the JWT, Unix seconds (`None`: does not expire).
    pub expires_unix: Option<i64>,
    /// The same as RFC 3339, for people reading the file.
    pub expires: Option<String>,
    /// Roles at login.
    pub roles: Vec<Role>,
    /// The server the session was obtained from.
    pub server: String,
}

/// A role on a scope pattern (empty scope: everywhere).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Role {
    /// Role name.
    pub role: String,
    /// Scope pattern, e.g. `site1.>`.
    pub scope: String,
}

impl From<&RoleBinding> for Role {
    fn from(b: &RoleBinding) -> Role {
        Role {
            role: b.role.clone(),
            scope: b.scope.clone(),
        }
    }
}

impl Role {
    /// `role` or `role@scope`.
    pub fn label(&self) -> String {
        if self.scope.is_empty() {
            self.role.clone()
        } else {
            format!("{}@{}", self.role, self.scope)
        }
    }
}

/// `role@scope, …` (or `-` for none).
pub fn roles_label(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "-".to_string();
    }
    roles.iter().map(Role::label).collect::<Vec<_>>().join(", ")
}

impl Session {
    /// Whether the JWT has expired.
    pub fn expired(&self) -> bool {
        self.expires_unix.is_some_and(|exp| exp <= unix_now())
    }
}

/// Reads the sidecar of `creds`, if there is one.
pub fn read_sidecar(creds: &Path) -> anyhow::Result<Option<Session>> {
    let path = sidecar_path(creds);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let session = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a plantd session sidecar", path.display()))?;
    Ok(Some(session))
}

/// Writes a session: the creds file and its sidecar, both 0600, each atomically.
pub fn write_session(
    creds_path: &Path,
    jwt: &str,
    seed: &str,
    session: &Session,
) -> anyhow::Result<()> {
    let dir = creds_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    write_private(creds_path, Creds::render(jwt, seed).as_bytes())?;
    let mut json = serde_json::to_vec_pretty(session)?;
    json.push(b'\n');
    write_private(&sidecar_path(creds_path), &json)
}

/// Removes a session's creds file and sidecar; `true` if the creds file existed.
pub fn remove_session(creds_path: &Path) -> anyhow::Result<bool> {
    let existed = remove_if_exists(creds_path)?;
    remove_if_exists(&sidecar_path(creds_path))?;
    Ok(existed)
}

fn remove_if_exists(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Creates `dir` (and parents); a dir created here is 0700.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// Writes `bytes` to `path` with mode 0600: a temp file in the same dir (created 0600), synced,
/// then renamed over `path`.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".plant-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes a new file with mode 0600; refuses to replace one unless `force`.
pub fn write_new_private(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    if !force && path.symlink_metadata().is_ok() {
        anyhow::bail!("{} exists; pass --force to replace it", path.display());
    }
    write_private(path, bytes)
}

/// A proof that the holder of `creds` makes a request on `subject` now: the JWT plus an
/// ed25519 signature over `"<subject>\n<timestamp_ms>"`, base64url without padding.
pub fn proof(creds: &Creds, subject: &str) -> anyhow::Result<UserProof> {
    let timestamp_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_millis(),
    )
    .context("the clock is too far in the future")?;
    let message = format!("{subject}\n{timestamp_ms}");
    let signature = creds
        .sign(message.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot sign the request proof: {e}"))?;
    Ok(UserProof {
        jwt: creds.jwt.clone(),
        timestamp_ms,
        signature: URL_SAFE_NO_PAD.encode(signature),
    })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Where a secret (password) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// The first line of stdin.
    Stdin,
    /// A prompt on the terminal, without echo.
    Prompt,
}

/// Reads a secret: the first line of stdin, or from the terminal without echo. With
/// `confirm`, the prompt asks twice and the answers must match.
pub fn read_secret(source: SecretSource, prompt: &str, confirm: bool) -> anyhow::Result<String> {
    let secret = match source {
        SecretSource::Stdin => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            trim_newline(line)
        }
        SecretSource::Prompt => {
            let first = prompt_hidden(prompt)?;
            if confirm {
                let again = prompt_hidden("again: ")?;
                anyhow::ensure!(first == again, "the passwords do not match");
            }
            first
        }
    };
    anyhow::ensure!(!secret.is_empty(), "the password is empty");
    Ok(secret)
}

/// Reads a line from the terminal with echo (e.g. a username).
pub fn prompt_visible(prompt: &str) -> anyhow::Result<String> {
    let mut tty = open_tty()?;
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let mut line = String::new();
    std::io::BufReader::new(tty).read_line(&mut line)?;
    Ok(trim_newline(line))
}

/// Reads a line from `/dev/tty` with echo off, restoring the terminal afterwards.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let mut tty = open_tty()?;
    let original = tcgetattr(&tty).context("cannot read the terminal settings")?;
    let mut silent = original.clone();
    silent.local_flags.remove(LocalFlags::ECHO);
    silent.local_flags.insert(LocalFlags::ECHONL);
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    tcsetattr(&tty, SetArg::TCSAFLUSH, &silent).context("cannot turn terminal echo off")?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let restored = tcsetattr(&tty, SetArg::TCSAFLUSH, &original);
    read.context("cannot read the password from the terminal")?;
    restored.context("cannot restore the terminal settings")?;
    Ok(trim_newline(line))
}

fn open_tty() -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to prompt on; pass --password-stdin and pipe the password")
}

fn trim_newline(mut line: String) -> String {
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_with_private_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("cfg").join(SESSION_CREDS);
        let user = nkeys::KeyPair::new_user();
        let session = Session {
            username: "alice".into(),
            inbox_prefix: "_INBOX_alice".into(),
            public_key: user.public_key(),
            expires_unix: Some(unix_now() + 60),
            expires: None,
            roles: vec![Role {
                role: "viewer".into(),
                scope: "site1.>".into(),
            }],
            server: "nats://127.0.0.1:4222".into(),
        };
        write_session(&creds, "eyJ.a.b", &user.seed().unwrap(), &session).unwrap();
        for path in [&creds, &sidecar_path(&creds)] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        let dir_mode = std::fs::metadata(creds.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(Creds::read(&creds).unwrap().jwt, "eyJ.a.b");
        let back = read_sidecar(&creds).unwrap().unwrap();
        assert_eq!(back, session);
        assert!(!back.expired());
        assert_eq!(roles_label(&back.roles), "viewer@site1.>");
        let sidecar = std::fs::read_to_string(sidecar_path(&creds)).unwrap();
        assert!(!sidecar.contains(&user.seed().unwrap()));
        assert!(remove_session(&creds).unwrap());
        assert!(read_sidecar(&creds).unwrap().is_none());
        assert!(!remove_session(&creds).unwrap());
    }

    #[test]
    fn proofs_sign_subject_and_timestamp() {
        let user = nkeys::KeyPair::new_user();
        let creds = Creds::parse(&Creds::render("eyJ.x.y", &user.seed().unwrap())).unwrap();
        let proof = proof(&creds, "plantd.identity.whoami").unwrap();
        assert_eq!(proof.jwt, "eyJ.x.y");
        let signature = URL_SAFE_NO_PAD.decode(&proof.signature).unwrap();
        let message = format!("plantd.identity.whoami\n{}", proof.timestamp_ms);
        user.verify(message.as_bytes(), &signature).unwrap();
        assert!(
            user.verify(b"plantd.identity.logout\n0", &signature)
                .is_err()
        );
    }

    #[test]
    fn newlines_are_trimmed_but_spaces_kept() {
        assert_eq!(trim_newline("pw \r\n".into()), "pw ");
        assert_eq!(trim_newline("pw".into()), "pw");
    }
}
