#!/usr/bin/env python3
"""The confused-deputy attack of issue #9, tried with nats-py as a person would.

A person (`operator@site1`, logged in with `plant login`) tries to make the server, or a
service, publish onto subjects it may not publish to, while the admin watches those subjects:

- a push consumer on site1's keys whose deliver subject is `plantd.state.set.site2` (and one
  whose deliver group is the state service's queue group) — refused at the server, nothing
  delivered;
- a JetStream direct get whose reply subject is `plantd.state.set.site2` — refused;
- a state `get` whose reply subject is `plantd.state.set.site2`: the state service answers
  there (NATS lets any requester name a reply subject), and that reply is a valid-looking
  SetRequest for site2 — but it has no reply subject, so the state service never applies it:
  site2's key keeps its value;
- a request whose reply subject is another person's inbox prefix: nothing arrives there that
  the person chose (only the service's reply, which is its own JSON);
- the legitimate way works: a watch of site1 asked of the state service is delivered to
  `$PLANTD.watch.site1.<token>`, and subscribing to a site2 watch subject is refused.

Usage: watch_attack_test.py --plant PATH --server URL --data-dir DIR --user NAME
       --admin-creds FILE
The password comes from PLANTD_TEST_PASSWORD. Exits 0 when all checks pass, 1 on the first
failure, 3 when a Python dependency is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from checks import CheckFailed, Violations, expect, missing_module, ok

try:
    import nats
    import nats.errors
except ImportError as err:  # pragma: no cover - environment problem, not a test result
    missing_module(err)

from login_test import run_as_person  # noqa: E402  (after the dependency check)

TIMEOUT = 5.0
QUIET = 2.0
SITE2_SET = "plantd.state.set.site2"


def consumer_create(name: str, deliver: str, group: str | None) -> tuple[str, bytes]:
    config = {
        "name": name,
        "deliver_subject": deliver,
        "filter_subject": "$KV.plantd-state.site1.>",
        "ack_policy": "none",
        "inactive_threshold": 2_000_000_000,
    }
    if group:
        config["deliver_group"] = group
    subject = f"$JS.API.CONSUMER.CREATE.KV_plantd-state.{name}.$KV.plantd-state.site1.>"
    return subject, json.dumps({"stream_name": "KV_plantd-state", "config": config}).encode()


async def check(args: argparse.Namespace, creds: Path, sidecar: dict) -> None:
    violations = Violations(QUIET)
    on_error, refused = violations.on_error, violations.refused

    admin = await nats.connect(args.server, user_credentials=args.admin_creds,
                               allow_reconnect=False, connect_timeout=TIMEOUT)
    person = await nats.connect(args.server, user_credentials=str(creds),
                                inbox_prefix=sidecar["inbox_prefix"], error_cb=on_error,
                                allow_reconnect=False, connect_timeout=TIMEOUT)
    try:
        before = json.loads((await admin.request(
            "plantd.state.get.site2", b'{"key":"k"}', timeout=TIMEOUT)).data)
        # Everything that lands on site2's set subject or another person's inbox, from now on.
        landed: list[str] = []

        async def record(msg) -> None:
            landed.append(f"{msg.subject} reply={(msg.reply or None)!r} data={msg.data[:80]!r}")

        await admin.subscribe(SITE2_SET, cb=record)
        await admin.subscribe("_INBOX_someone-else.>", cb=record)
        await admin.flush()

        for name, deliver, group in [("attack_foreign", SITE2_SET, None),
                                     ("attack_group", "plantd.state.set.site1", "state")]:
            subject, body = consumer_create(name, deliver, group)
            try:
                await person.request(subject, body, timeout=QUIET)
                raise CheckFailed(f"{subject} was answered for a person")
            except nats.errors.TimeoutError:
                pass
            expect(await refused(f'Permissions Violation for Publish to "{subject}"'),
                   f"the server refused {name} (errors seen: {violations})")
            ok(f"refused: consumer {name} delivering to {deliver}"
               + (f" in group {group}" if group else ""))

        direct = "$JS.API.DIRECT.GET.KV_plantd-state.$KV.plantd-state.site1.k"
        await person.publish(direct, b"", reply=SITE2_SET)
        await person.flush()
        expect(await refused(f'Permissions Violation for Publish to "{direct}"'),
               f"the server refused a direct get (errors seen: {violations})")
        ok("refused: direct get with its reply pointed at plantd.state.set.site2")

        # A state get of site1 whose reply is aimed at site2's set: the reply arrives there
        # (NATS allows it), looks like {"key":"k","value":…}, and must not be applied.
        await person.publish("plantd.state.get.site1", b'{"key":"k"}', reply=SITE2_SET)
        await person.publish("plantd.state.get.site1", b'{"key":"k"}',
                             reply="_INBOX_someone-else.x")
        await person.flush()
        await asyncio.sleep(QUIET)
        reflected = [m for m in landed if m.startswith(SITE2_SET)]
        expect(all("reply=None" in m for m in reflected),
               f"a message with a reply subject reached {SITE2_SET}: {reflected}")
        expect(not any("$JS.ACK" in m for m in landed),
               f"a JetStream delivery reached a foreign subject: {landed}")
        after = json.loads((await admin.request(
            "plantd.state.get.site2", b'{"key":"k"}', timeout=TIMEOUT)).data)
        expect(after == before, f"site2 changed: {before} -> {after}")
        ok(f"not applied: {len(reflected)} reflected reply(ies) on {SITE2_SET}, site2 unchanged "
           f"(version {after.get('version')})")

        # The legitimate way: the state service creates the watch, delivered to a subject only
        # site1's readers may hear.
        token = "pytoken1"
        deliveries: asyncio.Queue = asyncio.Queue()

        async def delivered(msg) -> None:
            deliveries.put_nowait(msg)

        sub = await person.subscribe(f"$PLANTD.watch.site1.{token}", cb=delivered)
        await person.flush()
        reply = json.loads((await person.request(
            "plantd.state.watch.site1",
            json.dumps({"token": token, "from": "current"}).encode(), timeout=TIMEOUT)).data)
        expect(reply.get("deliver_subject") == f"$PLANTD.watch.site1.{token}", f"{reply}")
        msg = await asyncio.wait_for(deliveries.get(), TIMEOUT)
        expect(msg.subject == "$KV.plantd-state.site1.k", f"delivered {msg.subject}")
        expect(msg.reply.startswith("$JS.ACK.KV_plantd-state." + reply["consumer"] + "."),
               f"reply subject {msg.reply}")
        await sub.unsubscribe()
        ok(f"allowed: watch of site1 through the state service ({reply['consumer']})")

        bad = json.loads((await person.request(
            "plantd.state.watch.site1", json.dumps({"token": "a.b"}).encode(),
            timeout=TIMEOUT)).data)
        expect(bad.get("code") == 400 and bad.get("field") == "token", f"{bad}")
        ok("refused: a token that is not one subject token (400, field token)")

        await person.subscribe("$PLANTD.watch.site2.x")
        await person.flush()
        expect(await refused('Permissions Violation for Subscription to "$PLANTD.watch.site2.x"'),
               f"the server refused listening to a site2 watch (errors seen: {violations})")
        ok("refused: subscribe to a site2 watch delivery")
    finally:
        await person.close()
        await admin.close()


def main() -> int:
    return run_as_person(__doc__.split("\n")[0], ["--admin-creds"], check, "attack")


if __name__ == "__main__":
    sys.exit(main())
