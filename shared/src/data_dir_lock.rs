//! One owner per data dir: an exclusive advisory lock held for the life of the process.
//!
//! Two nats-servers on one JetStream store, or two state services on one SQLite database, each
//! mirroring into its own server, corrupt nothing at once but diverge for good. So `plant up`
//! locks its data dir and every service locks its own data dir **before anything opens a
//! store**, and a second start is refused at once, naming the holder's PID and the dir.
//!
//! The lock is `flock(2)` on `<dir>/.lock` (std's `File::try_lock`), not the file's existence:
//! the kernel drops it when the holder exits, however it exits, so a file left behind by a
//! crashed run never blocks the next start. The holder writes its PID and role into the file
//! after taking the lock, only so that a refused start can say who holds it. `plant up` and the
//! services it starts lock different dirs (`<data>` and `<data>/<service>`), so a parent never
//! blocks its children.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    path::{Path, PathBuf},
};

/// Name of the lock file inside a locked dir.
pub const LOCK_FILE: &str = ".lock";

/// Exit code of a process refused because its data dir is taken (`EX_TEMPFAIL`: try again
/// once the other instance has stopped).
pub const EXIT_LOCKED: i32 = 75;

/// Why a data dir could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "data dir {} is in use by {holder}: only one {role} may run on it; stop that one or choose another data dir",
        dir.display()
    )]
    Held {
        /// The data dir.
        dir: PathBuf,
        /// What wanted it (`plant up`, `state`, …).
        role: String,
        /// Who holds it, as the holder wrote it (`pid 123 (plant up)`), or `another process`.
        holder: String,
    },
    /// The dir or its lock file could not be created or locked.
    #[error("cannot lock data dir {}: {source}", dir.display())]
    Io {
        /// The data dir.
        dir: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

/// A held data-dir lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    dir: PathBuf,
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed and locks it for `role` (a name for messages, e.g. `plant up`
    /// or `state`); fails at once, without waiting, if another process holds it.
    pub fn acquire(dir: impl AsRef<Path>, role: &str) -> Result<DataDirLock, LockError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |source| LockError::Io {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    holder: holder_of(&mut file),
                    dir,
                    role: role.to_string(),
                });
            }
            Err(TryLockError::Error(err)) => return Err(io(err)),
        }
        let stamp = format!("pid {} ({role})\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(stamp.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(DataDirLock { dir, _file: file })
    }

    /// The locked dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What the holder wrote into the lock file (its first line), or `another process`.
fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let line = text.lines().next().unwrap_or("").trim();
    let plausible = line.starts_with("pid ") && line.len() <= 200;
    if plausible {
        line.to_string()
    } else {
        "another process".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data, "plant up").unwrap();
        assert_eq!(first.dir(), data);
        // flock is per open file description, so a second open in this process conflicts too.
        let err = DataDirLock::acquire(&data, "plant up").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {} (plant up)", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&data.display().to_string()), "{text}");
        drop(first);
        DataDirLock::acquire(&data, "state").expect("free again once the holder is gone");
    }

    #[test]
    fn a_stale_lock_file_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "pid 999999 (plant up)\n").unwrap();
        let lock = DataDirLock::acquire(dir.path(), "state").unwrap();
        let stamp = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(stamp, format!("pid {} (state)\n", std::process::id()));
        drop(lock);
    }

    #[test]
    fn junk_in_the_lock_file_is_not_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = DataDirLock::acquire(dir.path(), "state").unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "\u{1b}[31mnot a pid").unwrap();
        let err = DataDirLock::acquire(dir.path(), "state").unwrap_err();
        assert!(err.to_string().contains("another process"), "{err}");
    }
}
