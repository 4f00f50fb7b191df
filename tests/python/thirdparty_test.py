#!/usr/bin/env python3
"""plantd seen by a third-party NATS client (nats-py), the way a `nats` CLI user sees it.

Nothing here uses plantd code: only nats-py and the public wire contract (DESIGN.md). It checks
that discovery (`$SRV.PING`, `$SRV.INFO.echo`, `$SRV.STATS.echo`) replies validate against the
NATS maintainers' micro v1 JSON schemas (tests/schemas/micro-v1/, checked with `jsonschema`,
formats included), that a plain JSON request to `plantd.echo.echo` works and a bad one gets the
ADR-32 error reply, and that a value set through the state service shows up in a watch of the
`plantd-state` KV bucket made with nats-py's own KV API.

Usage: thirdparty_test.py --server nats://127.0.0.1:PORT
Expects echo and state to be running (tests/tests/thirdparty.rs starts them). Prints one line
per check; exits 0 when all pass, 1 on the first failure, 3 when a Python dependency is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from checks import CheckFailed, expect, missing_module, ok

try:
    import jsonschema
    import nats
    import nats.errors
except ImportError as err:  # pragma: no cover - environment problem, not a test result
    missing_module(err)

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "micro-v1"
TIMEOUT = 5.0
WATCH_DEADLINE = 10.0


def load_validators() -> dict:
    """One draft-07 validator per verb, checking formats (date-time) too."""
    validators = {}
    for verb in ("ping", "info", "stats"):
        schema = json.loads((SCHEMAS / f"{verb}_response.json").read_text(encoding="utf-8"))
        jsonschema.Draft7Validator.check_schema(schema)
        checker = jsonschema.Draft7Validator.FORMAT_CHECKER
        validators[verb] = jsonschema.Draft7Validator(schema, format_checker=checker)
    expect(
        "date-time" in jsonschema.Draft7Validator.FORMAT_CHECKER.checkers,
        "jsonschema can check date-time formats (rfc3339-validator installed)",
    )
    return validators


def validate(validators: dict, verb: str, document: dict, subject: str) -> None:
    errors = sorted(validators[verb].iter_errors(document), key=lambda e: list(e.path))
    if errors:
        details = "; ".join(f"{'/'.join(map(str, e.path)) or '$'}: {e.message}" for e in errors)
        raise CheckFailed(f"{subject} reply violates {verb}_response.json: {details}: {document}")


def error_code(msg) -> str | None:
    return (msg.headers or {}).get("Nats-Service-Error-Code")


def expect_success(msg, subject: str) -> dict:
    code = error_code(msg)
    expect(
        code is None,
        f"{subject} succeeded (got error {code}: {(msg.headers or {}).get('Nats-Service-Error')})",
    )
    return json.loads(msg.data) if msg.data else {}


async def gather(nc, subject: str, expected: int) -> list:
    """Every reply to one request on `subject`, like `nats req --replies=0`: stops once
    `expected` replies came and a short quiet period passed, or after TIMEOUT."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, b"", reply=inbox)
    await nc.flush()
    replies = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            msg = await sub.next_msg(timeout=remaining)
        except nats.errors.TimeoutError:
            break
        replies.append(json.loads(msg.data))
        if len(replies) == expected:
            deadline = min(deadline, time.monotonic() + 0.2)
    await sub.unsubscribe()
    return replies


async def check_discovery(nc, validators: dict) -> None:
    pings = await gather(nc, "$SRV.PING", 2)
    for ping in pings:
        validate(validators, "ping", ping, "$SRV.PING")
    names = sorted(p.get("name") for p in pings)
    expect(names == ["echo", "state"], f"$SRV.PING answered by echo and state, got {names}")
    ok(f"$SRV.PING: {len(pings)} replies ({', '.join(names)}), valid against ping_response.json")

    msg = await nc.request("$SRV.INFO.echo", b"", timeout=TIMEOUT)
    info = json.loads(msg.data)
    validate(validators, "info", info, "$SRV.INFO.echo")
    subjects = sorted(e["subject"] for e in info.get("endpoints") or [])
    expect(
        subjects == ["plantd.echo.echo", "plantd.echo.slow"],
        f"$SRV.INFO.echo lists the echo endpoints, got {subjects}",
    )
    ok(f"$SRV.INFO.echo: endpoints {subjects}, valid against info_response.json")


async def check_echo(nc, validators: dict) -> None:
    msg = await nc.request("plantd.echo.echo", b'{"message":"from python"}', timeout=TIMEOUT)
    body = expect_success(msg, "plantd.echo.echo")
    expect(body.get("message") == "from python", f"echo returns the message, got {body}")
    expect(bool(body.get("instance")), f"echo names its instance, got {body}")
    ok(f"plantd.echo.echo JSON request: {body}")

    msg = await nc.request("plantd.echo.echo", b'{"message":', timeout=TIMEOUT)
    code = error_code(msg)
    expect(code == "400", f"malformed JSON gets Nats-Service-Error-Code 400, got {code}")
    expect(
        bool((msg.headers or {}).get("Nats-Service-Error")),
        "malformed JSON gets a Nats-Service-Error text",
    )
    body = json.loads(msg.data)
    expect(body.get("code") == 400 and body.get("message"), f"error body has code 400: {body}")
    ok(f"plantd.echo.echo malformed JSON: 400, {body['message']!r}")

    msg = await nc.request("$SRV.STATS.echo", b"", timeout=TIMEOUT)
    stats = json.loads(msg.data)
    validate(validators, "stats", stats, "$SRV.STATS.echo")
    echo = next((e for e in stats["endpoints"] if e["name"] == "echo"), None)
    expect(echo is not None, f"$SRV.STATS.echo has the echo endpoint: {stats}")
    # The instance counts a request just after replying; poll briefly for the second one.
    deadline = time.monotonic() + TIMEOUT
    while (echo["num_requests"], echo["num_errors"]) != (2, 1) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        msg = await nc.request("$SRV.STATS.echo", b"", timeout=TIMEOUT)
        stats = json.loads(msg.data)
        echo = next(e for e in stats["endpoints"] if e["name"] == "echo")
    expect(
        (echo["num_requests"], echo["num_errors"]) == (2, 1)
        and echo["last_error"].startswith("400:"),
        f"$SRV.STATS.echo counts 2 requests, 1 error (400): {echo}",
    )
    ok(
        f"$SRV.STATS.echo: {echo['num_requests']} requests, {echo['num_errors']} error, "
        "valid against stats_response.json"
    )


async def check_state_watch(nc) -> None:
    msg = await nc.request("plantd.state.scope.create.py", b"", timeout=TIMEOUT)
    body = expect_success(msg, "plantd.state.scope.create.py")
    expect(body.get("scope") == "py", f"scope create names the scope: {body}")
    ok(f"plantd.state.scope.create.py: {body}")

    payload = json.dumps({"key": "greeting", "value": "hello"}).encode()
    msg = await nc.request("plantd.state.set.py", payload, timeout=TIMEOUT)
    body = expect_success(msg, "plantd.state.set.py")
    ok(f"plantd.state.set.py greeting=hello: {body}")

    js = nc.jetstream()
    kv = await js.key_value("plantd-state")
    watcher = await kv.watch("py.*", include_history=True)
    deadline = time.monotonic() + WATCH_DEADLINE
    seen = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            expect(
                remaining > 0,
                f"KV watch of plantd-state py.* saw py.greeting=hello within "
                f"{WATCH_DEADLINE:.0f}s (saw {seen})",
            )
            try:
                entry = await watcher.updates(timeout=remaining)
            except nats.errors.TimeoutError:
                continue
            if entry is None:  # end of the initial values; keep watching for live ones
                continue
            seen.append((entry.key, entry.value))
            if entry.key == "py.greeting" and entry.value == b"hello":
                break
    finally:
        await watcher.stop()
    ok(f"KV watch (nats-py js.key_value('plantd-state').watch('py.*')): py.greeting = 'hello'")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="NATS URL, e.g. nats://127.0.0.1:4222")
    args = parser.parse_args()

    validators = load_validators()
    ok(f"loaded micro v1 schemas from {SCHEMAS}")
    nc = await nats.connect(args.server, connect_timeout=TIMEOUT, max_reconnect_attempts=0)
    ok(f"connected to {args.server} with nats-py")
    try:
        await check_discovery(nc, validators)
        await check_echo(nc, validators)
        await check_state_watch(nc)
    except CheckFailed as failure:
        print(f"FAIL {failure}", flush=True)
        return 1
    finally:
        await nc.close()
    print("all third-party checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
