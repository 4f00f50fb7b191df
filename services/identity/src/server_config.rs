//! The nats-server configuration snippet that puts a hub in operator mode.
//!
//! It is a snippet, not a whole config, so it composes with `nats/hub.conf.template` (listen
//! address, JetStream store, payload limit) through the template's `{{extra}}` placeholder or
//! the test harness's `extra_config`. What it sets and why (DESIGN.md, "Security model";
//! NATS-PITFALLS.md §5.4):
//!
//! - `operator`: the operator JWT file — the only trust root; every account JWT must be signed by
//!   it or one of its signing keys;
//! - `system_account`: must equal the operator JWT's `system_account`;
//! - `resolver: { type: full, dir, allow_delete: false }`: the server keeps every account JWT in
//!   `dir` and accepts updates through `$SYS.REQ.CLAIMS.UPDATE`, which is how identity will push
//!   revocations and signing-key changes without a restart; deleting accounts is off;
//! - `resolver_preload`: both account JWTs, so a fresh server (empty `dir`) knows them at once.
//!   The full resolver stores a preload only if it is newer than what `dir` holds, so a
//!   restart never rolls back an update pushed since.
//!
//! Paths go inside double-quoted strings; a path with `"`, `\` or a line break is refused
//! rather than escaped, as the hub template does for its data dir.

use std::path::Path;

use crate::bootstrap::BootstrapError;

/// What the snippet needs.
#[derive(Debug, Clone, Copy)]
pub struct OperatorMode<'a> {
    /// The operator JWT file.
    pub operator_jwt: &'a Path,
    /// Public key of the system account.
    pub system_account: &'a str,
    /// The full resolver's directory.
    pub resolver_dir: &'a Path,
    /// `(account public key, account JWT)` to preload.
    pub preload: &'a [(&'a str, &'a str)],
}

impl OperatorMode<'_> {
    /// Renders the snippet.
    pub fn render(&self) -> Result<String, BootstrapError> {
        let operator = quoted(self.operator_jwt)?;
        let dir = quoted(self.resolver_dir)?;
        let mut out = format!(
            "# Operator mode for the plantd hub, written by the plantd identity bootstrap.\n\
             # Trust: only JWTs signed by this operator (or its signing keys) are accepted.\n\
             operator: {operator}\n\
             system_account: {}\n\
             resolver: {{\n  type: full\n  dir: {dir}\n  allow_delete: false\n}}\n\
             resolver_preload: {{\n",
            self.system_account
        );
        for (account, jwt) in self.preload {
            out.push_str(&format!("  {account}: \"{jwt}\"\n"));
        }
        out.push_str("}\n");
        Ok(out)
    }
}

fn quoted(path: &Path) -> Result<String, BootstrapError> {
    let text = path.to_str().ok_or_else(|| unsafe_path(path))?;
    if text.contains(['"', '\\', '\n', '\r']) {
        return Err(unsafe_path(path));
    }
    Ok(format!("\"{text}\""))
}

fn unsafe_path(path: &Path) -> BootstrapError {
    BootstrapError::UnsafePath {
        path: path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_full_resolver_and_preloads() {
        let text = OperatorMode {
            operator_jwt: Path::new("/d/auth/operator.jwt"),
            system_account: "ASYS",
            resolver_dir: Path::new("/d/auth/resolver"),
            preload: &[("ASYS", "eyJ.a.b"), ("APL", "eyJ.c.d")],
        }
        .render()
        .unwrap();
        assert!(text.contains("operator: \"/d/auth/operator.jwt\"\n"));
        assert!(text.contains("system_account: ASYS\n"));
        assert!(text.contains("type: full\n  dir: \"/d/auth/resolver\"\n  allow_delete: false"));
        assert!(text.contains("  ASYS: \"eyJ.a.b\"\n  APL: \"eyJ.c.d\"\n"));
    }

    #[test]
    fn refuses_paths_it_cannot_quote() {
        let mode = OperatorMode {
            operator_jwt: Path::new("/d/a\"b/operator.jwt"),
            system_account: "ASYS",
            resolver_dir: Path::new("/d"),
            preload: &[],
        };
        assert!(matches!(
            mode.render(),
            Err(BootstrapError::UnsafePath { .. })
        ));
    }
}
