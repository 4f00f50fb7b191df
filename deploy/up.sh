#!/usr/bin/env bash
# README command 1: install what is missing, build, and run a local plantd (`plant up`).
#
#   bash deploy/up.sh [plant up flags…]      e.g. --data-dir /var/tmp/plantd --port 4222
#
# Installs the pinned nats-server (deploy/install-deps.sh), builds every binary in the dev
# profile (the one the tests use, so nothing is built twice), then runs `plant up`, which
# starts nats-server and every service and prints `ready` once each answers. Ctrl-C stops all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash deploy/install-deps.sh
cargo build --workspace --bins
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$target/debug/plant" up "$@"
