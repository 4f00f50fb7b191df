//! Finding the workspace's own binaries from inside an integration test.
//!
//! Cargo only sets `CARGO_BIN_EXE_<name>` for binaries of the *same* package as the test, and
//! plantd's binaries live in other packages. They are, however, built into the same target
//! directory as the test executable (`target/<profile>/deps/<test>-<hash>`), so their path is
//! derived from `current_exe()`. Cargo does not build other packages' binaries for `cargo test
//! -p plantd-tests`; the panic message says which command does.

use std::path::PathBuf;

/// Environment variable naming the directory that holds the workspace binaries, for running the
/// tests against binaries built elsewhere (another profile, an install prefix).
pub const BIN_DIR_ENV: &str = "PLANTD_BIN_DIR";

/// Path of the workspace binary `name` (e.g. `"plantd-echo"`, `"plant"`): the file of that name
/// in `$PLANTD_BIN_DIR` if set, else next to the test executable's profile directory.
///
/// # Panics
///
/// If the binary does not exist: a test cannot do anything useful without it, and the message
/// says to run `cargo build --workspace --bins` first.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => profile_dir(),
    };
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary `{name}` not found at {}: run `cargo build --workspace --bins` first \
         (or set {BIN_DIR_ENV} to the directory holding it)",
        path.display()
    );
    path
}

/// `target/<profile>`, from the test executable at `target/<profile>/deps/<test>-<hash>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap_or_else(|err| panic!("cannot locate the running test executable: {err}"));
    let mut dir = exe
        .parent()
        .unwrap_or_else(|| panic!("test executable {} has no parent dir", exe.display()))
        .to_path_buf();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.pop();
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_is_the_parent_of_deps() {
        let dir = profile_dir();
        assert!(dir.join("deps").is_dir(), "{} has no deps/", dir.display());
    }

    #[test]
    #[should_panic(expected = "cargo build --workspace --bins")]
    fn missing_binary_says_how_to_build_it() {
        bin_path("plantd-no-such-binary");
    }
}
