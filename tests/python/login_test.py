#!/usr/bin/env python3
"""A `plant login` session used by a NATS client that is not ours (nats-py).

The creds file `plant login` writes must be a standard NATS creds file: any client takes it
unchanged. This script logs in by running the `plant` binary (password on stdin), reads the
session's sidecar for the inbox prefix the user is confined to, then connects with nats-py
(`user_credentials=<creds file>`, `inbox_prefix=<prefix>`) and checks, at the server, that:

- a request the user's role allows (`plantd.state.get.<scope>`) is answered;
- a publish it lacks (`plantd.state.set.<scope>`) is refused with a permissions violation;
- subscribing to another user's inbox is refused with a permissions violation;
- the default `_INBOX` prefix is not the user's: a request with it gets no reply.

Usage: login_test.py --plant PATH --server URL --data-dir DIR --user NAME --scope SCOPE --key KEY
The password comes from the environment variable PLANTD_TEST_PASSWORD (not an argument, so it
does not show in `ps`). Prints one line per check; exits 0 when all pass, 1 on the first
failure, 3 when a Python dependency is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from checks import CheckFailed, Violations, expect, missing_module, ok

try:
    import nats
    import nats.errors
except ImportError as err:  # pragma: no cover - environment problem, not a test result
    missing_module(err)

TIMEOUT = 5.0
REFUSAL_WAIT = 3.0


def login(args: argparse.Namespace, config_dir: Path) -> tuple[Path, dict]:
    """Runs `plant login USER --password-stdin` into `config_dir`; returns creds and sidecar."""
    password = os.environ.get("PLANTD_TEST_PASSWORD", "")
    expect(password != "", "PLANTD_TEST_PASSWORD is set")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTD_")}
    env["PLANTD_CONFIG_DIR"] = str(config_dir)
    run = subprocess.run(
        [
            args.plant,
            "--server",
            args.server,
            "login",
            args.user,
            "--password-stdin",
            "--data-dir",
            args.data_dir,
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    expect(run.returncode == 0, f"plant login exits 0 (got {run.returncode}: {run.stderr})")
    expect(password not in run.stdout + run.stderr, "plant login does not print the password")
    creds = config_dir / "user.creds"
    sidecar = json.loads((config_dir / "user.json").read_text(encoding="utf-8"))
    mode = creds.stat().st_mode & 0o777
    expect(mode == 0o600, f"the creds file is 0600 (got {mode:o})")
    text = creds.read_text(encoding="utf-8")
    expect(
        "-----BEGIN NATS USER JWT-----" in text and "-----BEGIN USER NKEY SEED-----" in text,
        "the creds file is a standard NATS creds file",
    )
    ok(f"plant login {args.user}: {creds} (inbox prefix {sidecar['inbox_prefix']})")
    return creds, sidecar


async def check(args: argparse.Namespace, creds: Path, sidecar: dict) -> None:
    violations = Violations(REFUSAL_WAIT)
    on_error, refused = violations.on_error, violations.refused

    prefix = sidecar["inbox_prefix"]
    nc = await nats.connect(
        args.server,
        user_credentials=str(creds),
        inbox_prefix=prefix,
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=TIMEOUT,
    )
    try:
        allowed = f"plantd.state.get.{args.scope}"
        msg = await nc.request(allowed, json.dumps({"key": args.key}).encode(), timeout=TIMEOUT)
        body = json.loads(msg.data)
        expect(body.get("key") == args.key, f"{allowed} answered with the key, got {body}")
        ok(f"allowed: request {allowed} -> {body}")

        denied = f"plantd.state.set.{args.scope}"
        payload = json.dumps({"key": args.key, "value": "nope"}).encode()
        try:
            await nc.request(denied, payload, timeout=REFUSAL_WAIT)
            raise CheckFailed(f"{denied} was answered; the role lacks it")
        except nats.errors.TimeoutError:
            pass
        expect(
            await refused(f'Permissions Violation for Publish to "{denied}"'),
            f"the server refused publish to {denied} (errors seen: {violations})",
        )
        ok(f"refused: publish {denied} (permissions violation)")

        other = "_INBOX_someone-else.>"
        await nc.subscribe(other)
        await nc.flush()
        expect(
            await refused(f'Permissions Violation for Subscription to "{other}"'),
            f"the server refused subscribing to {other} (errors seen: {violations})",
        )
        ok(f"refused: subscribe {other} (permissions violation)")
    finally:
        await nc.close()

    # The same creds with nats-py's default inbox: replies cannot reach the user.
    violations.clear()
    nc = await nats.connect(
        args.server,
        user_credentials=str(creds),
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=TIMEOUT,
    )
    try:
        try:
            await nc.request(allowed, json.dumps({"key": args.key}).encode(), timeout=REFUSAL_WAIT)
            raise CheckFailed("a request with the default _INBOX prefix was answered")
        except nats.errors.TimeoutError:
            pass
        expect(
            await refused("Permissions Violation for Subscription to \"_INBOX."),
            f"the server refused the default _INBOX subscription (errors seen: {violations})",
        )
        ok("refused: default _INBOX prefix (only the session's prefix may be used)")
    finally:
        await nc.close()


def run_as_person(description: str, extra: list[str], check_fn, what: str) -> int:
    """The `main` of a script that logs a person in with `plant login` and runs `check_fn(args,
    creds, sidecar)`: common flags `--plant --server --data-dir --user`, plus `extra` flags."""
    parser = argparse.ArgumentParser(description=description)
    for flag in ["--plant", "--server", "--data-dir", "--user", *extra]:
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plantd-py-person-") as config:
        try:
            creds, sidecar = login(args, Path(config))
            asyncio.run(check_fn(args, creds, sidecar))
        except CheckFailed as failure:
            print(f"FAIL {failure}", flush=True)
            return 1
    print(f"all {what} checks passed", flush=True)
    return 0


def main() -> int:
    return run_as_person(__doc__.split("\n")[0], ["--scope", "--key"], check, "login")


if __name__ == "__main__":
    sys.exit(main())
