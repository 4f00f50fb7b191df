//! A child process that belongs to one test and dies with it.
//!
//! End-to-end tests start service binaries and the `plant` CLI as real processes. Three things
//! make that reliable: output goes to files (a pipe nobody reads fills up and blocks the child;
//! files can be read after the fact and shown when an assertion fails); the child runs in its
//! own temp dir unless told otherwise (so relative paths such as a default SQLite file never
//! land in the source tree or collide between parallel tests); and `Drop` kills *and reaps* it,
//! so a failing test leaves neither a running service nor a zombie behind.
//!
//! It wraps `std::process::Child` rather than tokio's because `Drop` must be able to wait for
//! the process synchronously; the waits that tests call are async polls, so they never block a
//! runtime thread.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::POLL_INTERVAL;

/// A spawned process with captured stdout/stderr, killed and reaped on drop.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    dir: TempDir,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl ChildProcess {
    /// Spawns `program` with `args` and the extra environment `envs` (added to the inherited
    /// environment), working directory [`dir`](Self::dir), stdin closed, stdout and stderr
    /// captured to files.
    ///
    /// ```no_run
    /// # fn demo(url: &str) -> anyhow::Result<()> {
    /// use plantd_tests::{ChildProcess, bin_path};
    /// let echo = ChildProcess::spawn(
    ///     bin_path("plantd-echo"),
    ///     ["--nats-url", url],
    ///     [("RUST_LOG", "debug")],
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn spawn<P, I, A, E, K, V>(program: P, args: I, envs: E) -> anyhow::Result<ChildProcess>
    where
        P: AsRef<OsStr>,
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut command = Command::new(program);
        command.args(args).envs(envs);
        ChildProcess::spawn_command(command)
    }

    /// Spawns a prepared `command`, for what [`spawn`](Self::spawn) does not cover (clearing the
    /// environment, a given working directory). Its stdin, stdout and stderr are replaced as in
    /// `spawn`; its working directory becomes [`dir`](Self::dir) unless the command sets one.
    pub fn spawn_command(mut command: Command) -> anyhow::Result<ChildProcess> {
        let name = Path::new(command.get_program())
            .file_name()
            .map_or_else(|| "child".to_owned(), |n| n.to_string_lossy().into_owned());
        let dir = tempfile::Builder::new()
            .prefix(&format!("plantd-{name}-"))
            .tempdir()
            .context("cannot create a temp dir for a child process")?;
        let stdout_path = dir.path().join("stdout.log");
        let stderr_path = dir.path().join("stderr.log");
        let stdout = File::create(&stdout_path)
            .with_context(|| format!("cannot create {}", stdout_path.display()))?;
        let stderr = File::create(&stderr_path)
            .with_context(|| format!("cannot create {}", stderr_path.display()))?;
        if command.get_current_dir().is_none() {
            command.current_dir(dir.path());
        }
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command
            .spawn()
            .with_context(|| format!("cannot spawn {:?}", command.get_program()))?;
        Ok(ChildProcess {
            name,
            child,
            status: None,
            dir,
            stdout_path,
            stderr_path,
        })
    }

    /// The process id. Stays the same after the process exits (and may then be reused by the
    /// OS, which is why [`signal`](Self::signal) refuses to send to a reaped process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temp dir the process runs in and writes its output to; deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the file that receives the process's stdout.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// Path of the file that receives the process's stderr.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Everything the process wrote to stdout so far (lossy UTF-8).
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything the process wrote to stderr so far (lossy UTF-8); handy in assertion messages.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Sends `signal` to the process (e.g. `SIGTERM` to test graceful shutdown).
    ///
    /// Fails if the process has already been reaped, since its pid may belong to someone else.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        if let Some(status) = self.status {
            anyhow::bail!(
                "cannot send {signal} to {} (pid {}): it already exited with {status}",
                self.name,
                self.pid()
            );
        }
        kill(pid_of(&self.child), signal)
            .with_context(|| format!("cannot send {signal} to {} (pid {})", self.name, self.pid()))
    }

    /// The exit status if the process has exited (reaping it), `None` while it runs.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.child.try_wait() {
                Ok(status) => self.status = status,
                // Only possible if something else reaped our child: report "unknown" as
                // still running rather than invent a status.
                Err(err) => eprintln!("plantd-tests: cannot poll {}: {err}", self.name),
            }
        }
        self.status
    }

    /// `true` until the process has exited.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Waits up to `deadline` for the process to exit, polling without blocking the runtime.
    /// Returns its exit status, or `None` if it is still running at the deadline.
    pub async fn wait_with_deadline(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let start = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if start.elapsed() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// [`wait_with_deadline`](Self::wait_with_deadline) for code outside an async runtime.
    pub fn wait_with_deadline_blocking(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if start.elapsed() >= deadline {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Kills the process with `SIGKILL` and reaps it; returns its exit status. A no-op returning
    /// the known status if it had already exited.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Ok(status);
        }
        kill(pid_of(&self.child), Signal::SIGKILL)
            .with_context(|| format!("cannot kill {} (pid {})", self.name, self.pid()))?;
        let status = self
            .child
            .wait()
            .with_context(|| format!("cannot reap {} (pid {})", self.name, self.pid()))?;
        self.status = Some(status);
        Ok(status)
    }
}

/// How long a dropped child gets to stop after SIGTERM before it is killed.
const DROP_GRACE: Duration = Duration::from_secs(3);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            // SIGTERM first: a `plant up` killed outright leaves its nats-server and services
            // running (seen after a failed assertion), a graceful one stops them. Then kill and
            // reap; errors here mean it is already gone, which is the goal.
            if self.signal(Signal::SIGTERM).is_ok()
                && self.wait_with_deadline_blocking(DROP_GRACE).is_some()
            {
                return;
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The child's pid as nix wants it.
pub(crate) fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("Linux pids fit in i32 (pid_max <= 2^22)"))
}

/// A file's content as text for diagnostics; a read error becomes part of the text.
pub(crate) fn read_lossy(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) => format!("<cannot read {}: {err}>", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_output_and_exit_status() {
        let mut child = ChildProcess::spawn(
            "sh",
            ["-c", "echo out; echo err >&2; pwd; exit 3"],
            [("UNUSED", "1")],
        )
        .expect("sh runs");
        let status = child
            .wait_with_deadline(Duration::from_secs(10))
            .await
            .expect("exits");
        assert_eq!(status.code(), Some(3));
        let dir = child.dir().canonicalize().expect("dir exists");
        assert_eq!(child.stdout(), format!("out\n{}\n", dir.display()));
        assert_eq!(child.stderr(), "err\n");
        assert!(child.signal(Signal::SIGTERM).is_err(), "reaped child");
    }

    #[tokio::test]
    async fn signal_and_drop() {
        let mut child = ChildProcess::spawn("sleep", ["30"], [("A", "B")]).expect("sleep runs");
        assert!(child.is_running());
        assert!(
            child
                .wait_with_deadline(Duration::from_millis(50))
                .await
                .is_none()
        );
        child.signal(Signal::SIGTERM).expect("signal sent");
        let status = child
            .wait_with_deadline(Duration::from_secs(10))
            .await
            .expect("sleep dies on SIGTERM");
        assert!(!status.success());

        let child = ChildProcess::spawn("sleep", ["30"], [("A", "B")]).expect("sleep runs");
        let pid = child.pid();
        drop(child);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "killed and reaped"
        );
    }
}
