#!/usr/bin/env bash
# Builds a release archive: the binaries, shell completions, man pages, systemd units, the
# nats-server template and the docs, as one plantd-<version>-<arch>.tar.gz.
#
#   bash deploy/release.sh [--out DIR] [--bin-dir DIR]
#
# --out      where the archive goes (default: dist/)
# --bin-dir  take the binaries from DIR instead of building them with `cargo build --release`
#            (tests pass their debug build)
# Layout inside (a prefix such as /usr/local): bin/, share/bash-completion/completions/plant,
# share/zsh/site-functions/_plant, share/fish/vendor_completions.d/plant.fish,
# share/man/man1/*.1, lib/systemd/system/, share/plantd/{nats,kubernetes,compose}/,
# share/plantd/Dockerfile, share/doc/plantd/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/dist"
bin_dir=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --bin-dir) bin_dir="$2"; shift 2 ;;
        *) echo "release.sh: unknown argument $1 (use --out DIR, --bin-dir DIR)" >&2; exit 2 ;;
    esac
done
cd "$root"
if [[ -z "$bin_dir" ]]; then
    cargo build --release --workspace --bins
    bin_dir="${CARGO_TARGET_DIR:-$root/target}/release"
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
name="plantd-$version-$(uname -m)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
prefix="$stage/$name"
mkdir -p "$prefix"/{bin,share/bash-completion/completions,share/zsh/site-functions,share/fish/vendor_completions.d,share/man/man1,lib/systemd/system,share/plantd/nats,share/doc/plantd}
binaries=(plant plantd-echo plantd-edge plantd-identity plantd-logger plantd-metric plantd-state plantd-bus plantd-web-api)
for binary in "${binaries[@]}"; do
    [[ -x "$bin_dir/$binary" ]] || { echo "release.sh: $bin_dir/$binary is missing" >&2; exit 1; }
    install -m 0755 "$bin_dir/$binary" "$prefix/bin/"
done
plant="$prefix/bin/plant"
"$plant" completions bash > "$prefix/share/bash-completion/completions/plant"
"$plant" completions zsh > "$prefix/share/zsh/site-functions/_plant"
"$plant" completions fish > "$prefix/share/fish/vendor_completions.d/plant.fish"
"$plant" man --dir "$prefix/share/man/man1" > /dev/null
install -m 0644 deploy/systemd/* "$prefix/lib/systemd/system/"
install -m 0644 nats/hub.conf.template "$prefix/share/plantd/nats/"
cp -r deploy/kubernetes deploy/compose deploy/Dockerfile "$prefix/share/plantd/"
cp -r README.md docs "$prefix/share/doc/plantd/"
mkdir -p "$out"
archive="$out/$name.tar.gz"
tar -C "$stage" -czf "$archive" "$name"
echo "$archive"
