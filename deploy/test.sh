#!/usr/bin/env bash
# README command 2: install what is missing, then run every check and test.
#
#   bash deploy/test.sh
#
# 1. the pinned nats-server and Python test tools (deploy/install-deps.sh);
# 2. formatting and lints: `cargo fmt --check`, `cargo clippy --workspace --all-targets -D warnings`;
# 3. every binary, so end-to-end tests can start them (`cargo build --workspace --bins`);
# 4. every test: unit tests beside the code and the end-to-end tests in tests/, which start
#    their own nats-server on free loopback ports. cargo-nextest runs them when installed
#    (parallel test binaries), else `cargo test`.
# One build profile (dev) throughout. `.ci/run` calls exactly this script.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> %s\n' "$*" >&2; }

step "installing missing dependencies"
bash deploy/install-deps.sh
# Binaries pip installed into a user-site bin dir must be found by the tests too.
user_bin="$(python3 -c 'import site; print(site.USER_BASE + "/bin")' 2>/dev/null || true)"
[[ -n "$user_bin" ]] && export PATH="$PATH:$user_bin"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --workspace --bins"
cargo build --workspace --bins

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast --profile ci
else
    cargo test --workspace --no-fail-fast
fi
