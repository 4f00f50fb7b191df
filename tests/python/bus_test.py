#!/usr/bin/env python3
"""A bus seen by a third-party NATS client (nats-py): publish on it, then replay it.

Nothing here uses plantd code: only nats-py and the public wire contract (docs/buses.md,
schemas/proto/plantd/bus/v1/bus.proto). It publishes messages on the `data` bus with nats-py's
own JetStream publish (each acknowledged by the bus's capture stream `PLANTD_BUS_DATA`), asks
the bus service for a replay with a plain JSON request, follows the push deliveries the way an
ordered consumer would (stream and consumer sequences from the `$JS.ACK.…` reply subject,
heartbeats skipped), and checks that a replay from a sequence gives exactly the rest and that
bad requests get the ADR-32 error reply naming the field.

Usage: bus_test.py --server nats://127.0.0.1:PORT
Expects the bus service to be running (tests/tests/thirdparty.rs starts it). Prints one line
per check; exits 0 when all pass, 1 on the first failure, 3 when a Python dependency is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time

from checks import CheckFailed, expect, missing_module, ok

try:
    import nats
    import nats.errors
except ImportError as err:  # pragma: no cover - environment problem, not a test result
    missing_module(err)

TIMEOUT = 5.0
COUNT = 20
BUS = "data"
SCOPE = "site1"
TOPIC = "py.temp"
SUBJECT = f"plantd.bus.{BUS}.{SCOPE}.{TOPIC}"
STREAM = "PLANTD_BUS_DATA"
REPLAY = f"plantd.buses.replay.{BUS}.{SCOPE}"
# Heartbeats a replay may miss before it is given up on (as plantd's own client does).
MISSED_HEARTBEATS = 3
# How long to keep listening after the last expected delivery, to catch extra ones.
QUIET = 0.5


def error_code(msg) -> str | None:
    return (msg.headers or {}).get("Nats-Service-Error-Code")


def expect_success(msg, subject: str) -> dict:
    code = error_code(msg)
    expect(
        code is None,
        f"{subject} succeeded (got error {code}: {(msg.headers or {}).get('Nats-Service-Error')})",
    )
    return json.loads(msg.data) if msg.data else {}


def header(msg, name: str) -> str | None:
    """A header of `msg`. nats-py keys a status message's `Description` by its `Header` enum,
    not by the string, so compare by value rather than trust the key's hash."""
    for key, value in (msg.headers or {}).items():
        if getattr(key, "value", key) == name:
            return value
    return None


def parse_ack(reply: str | None) -> dict | None:
    """The parts of a JetStream delivery's reply subject:
    `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (9 tokens), or the
    form with domain and account hash after `$JS.ACK` (12 or more); None for anything else."""
    if not reply:
        return None
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    at = 2 if len(tokens) == 9 else 4
    t = tokens[at : at + 6]
    if len(t) < 6:
        return None
    try:
        return {
            "stream": t[0],
            "consumer": t[1],
            "stream_seq": int(t[3]),
            "consumer_seq": int(t[4]),
            "timestamp_nanos": int(t[5]),
        }
    except ValueError:
        return None


async def check_publish(js) -> list[tuple[bytes, int]]:
    published = []
    for i in range(COUNT):
        payload = f"py-{i}".encode()
        ack = await js.publish(SUBJECT, payload, timeout=TIMEOUT)
        expect(ack.stream == STREAM, f"PubAck {i} names stream {STREAM}, got {ack.stream!r}")
        expect(
            not published or ack.seq > published[-1][1],
            f"PubAck sequences increase: {ack.seq} after {published[-1][1] if published else None}",
        )
        published.append((payload, ack.seq))
    seqs = [seq for _, seq in published]
    ok(f"js.publish {COUNT} messages on {SUBJECT}: acked by {STREAM}, seqs {seqs[0]}..{seqs[-1]}")
    return published


async def replay(
    nc, fields: dict, await_heartbeat: bool = False
) -> tuple[dict, list[tuple[bytes, int, str]], int]:
    """One replay, as the contract says: subscribe to `$PLANTD.replay.<bus>.<scope>.<token>`
    first, then ask `plantd.buses.replay.<bus>.<scope>` for it with a JSON ReplayRequest, then
    read the push deliveries until `pending` of them came, and a little longer to see that no
    more come (with `await_heartbeat`, until the consumer's next idle heartbeat, which must say
    that the last delivery sent is the last one seen). Returns the reply, the deliveries
    (payload, stream seq, subject) and how many heartbeats were skipped."""
    token = "py_" + secrets.token_hex(8)
    deliver = f"$PLANTD.replay.{BUS}.{SCOPE}.{token}"
    sub = await nc.subscribe(deliver)
    await nc.flush()
    try:
        request = {"token": token, **fields}
        msg = await nc.request(REPLAY, json.dumps(request).encode(), timeout=TIMEOUT)
        body = expect_success(msg, REPLAY)
        expect(
            body.get("deliver_subject") == deliver,
            f"the replay is delivered to {deliver}: {body}",
        )
        # proto3 JSON: uint64 fields are strings, uint32 numbers.
        pending = int(body["pending"])
        last_seq = int(body["last_seq"])
        heartbeat = float(body.get("heartbeat_secs") or 1)
        consumer = body["consumer"]

        got: list[tuple[bytes, int, str]] = []
        heartbeats = 0
        next_cseq = 1
        done = pending == 0
        deadline = None  # set once done: listen QUIET more for deliveries that should not exist
        while True:
            if done and deadline is None:
                after = heartbeat * MISSED_HEARTBEATS if await_heartbeat else QUIET
                deadline = time.monotonic() + after
            wait = (
                deadline - time.monotonic()
                if deadline is not None
                else heartbeat * MISSED_HEARTBEATS
            )
            if wait <= 0:
                break
            try:
                m = await sub.next_msg(timeout=wait)
            except nats.errors.TimeoutError:
                expect(
                    done,
                    f"replay deliveries keep coming ({len(got)} of {pending} after "
                    f"{MISSED_HEARTBEATS} heartbeats' time without one)",
                )
                expect(
                    not await_heartbeat,
                    f"an idle heartbeat within {MISSED_HEARTBEATS} x {heartbeat:.0f}s of the end",
                )
                break
            if header(m, "Status") == "100" and not m.data:
                # Idle heartbeat or flow control: a status message, not a delivery. (This
                # consumer has no flow control; answer it anyway, as any JetStream client must.)
                description = header(m, "Description") or ""
                if description.startswith("FlowControl") and m.reply:
                    await nc.publish(m.reply, b"")
                stalled = header(m, "Nats-Consumer-Stalled")
                if stalled:
                    await nc.publish(stalled, b"")
                last = header(m, "Nats-Last-Consumer")
                expect(
                    last is None or int(last) < next_cseq,
                    f"a heartbeat says delivery {last} was sent; we saw up to {next_cseq - 1}",
                )
                heartbeats += 1
                if done and await_heartbeat:
                    expect(
                        last is not None and int(last) == len(got),
                        f"the heartbeat after the replay says {len(got)} were sent: {m.headers}",
                    )
                    break
                continue
            ack = parse_ack(m.reply)
            expect(ack is not None, f"a replay delivery has a $JS.ACK reply subject: {m.reply!r}")
            expect(
                (ack["stream"], ack["consumer"]) == (STREAM, consumer),
                f"a delivery of {STREAM}/{consumer}, got {ack}",
            )
            expect(
                ack["consumer_seq"] == next_cseq,
                f"consumer sequence {next_cseq} next, got {ack['consumer_seq']} (a lost delivery)",
            )
            expect(not done, f"no delivery after the {pending} pending: {m.subject} {m.data!r}")
            next_cseq += 1
            got.append((m.data, ack["stream_seq"], m.subject))
            if len(got) == pending or ack["stream_seq"] >= last_seq:
                done = True
        return body, got, heartbeats
    finally:
        await sub.unsubscribe()


def check_deliveries(got, expected: list[tuple[bytes, int]], what: str) -> None:
    payloads = [p for p, _, _ in got]
    expect(
        payloads == [p for p, _ in expected],
        f"{what} gives exactly the published payloads in order: {payloads}",
    )
    seqs = [s for _, s, _ in got]
    expect(
        seqs == [s for _, s in expected],
        f"{what} stream sequences are the PubAck ones: {seqs}",
    )
    expect(
        all(a < b for a, b in zip(seqs, seqs[1:])),
        f"{what} stream sequences increase: {seqs}",
    )
    subjects = {s for _, _, s in got}
    expect(subjects == {SUBJECT}, f"{what} deliveries keep their subject: {subjects}")


async def check_replay(nc, published: list[tuple[bytes, int]]) -> None:
    body, got, heartbeats = await replay(nc, {}, await_heartbeat=True)
    expect(int(body["pending"]) == COUNT, f"the replay of everything has {COUNT} pending: {body}")
    expect(
        int(body["last_seq"]) == published[-1][1],
        f"the replay ends at the last PubAck seq {published[-1][1]}: {body}",
    )
    check_deliveries(got, published, "the replay of everything")
    ok(
        f"{REPLAY} {{token}}: {len(got)} deliveries on {body['deliver_subject']} in order, "
        f"seqs {got[0][1]}..{got[-1][1]}, then {heartbeats} idle heartbeat(s) skipped"
    )

    from_seq = published[10][1]
    body, got, heartbeats = await replay(nc, {"from_seq": from_seq, "topic": "py.*"})
    expect(int(body["pending"]) == COUNT - 10, f"a replay from seq {from_seq}: 10 pending: {body}")
    check_deliveries(got, published[10:], f"the replay from seq {from_seq}")
    ok(
        f"{REPLAY} {{token, from_seq: {from_seq}, topic: py.*}}: exactly the last "
        f"{len(got)}, seqs {got[0][1]}..{got[-1][1]}"
    )


async def check_errors(nc) -> None:
    for payload, field in [
        ({"token": "a.b"}, "token"),
        ({"token": "t", "rate": "2x"}, "rate"),
        ({"token": "t", "from_seq": "soon"}, "from_seq"),
        ({"token": "t", "topic": "a.>.b"}, "topic"),
    ]:
        msg = await nc.request(REPLAY, json.dumps(payload).encode(), timeout=TIMEOUT)
        headers = msg.headers or {}
        code = error_code(msg)
        expect(code == "400", f"{payload} gets Nats-Service-Error-Code 400, got {code}")
        expect(
            bool(headers.get("Nats-Service-Error")),
            f"{payload} gets a Nats-Service-Error text",
        )
        body = json.loads(msg.data)
        expect(
            body.get("code") == 400 and body.get("field") == field and body.get("message"),
            f"{payload} error body has code 400 and field {field!r}: {body}",
        )
        ok(f"{REPLAY} {json.dumps(payload)}: 400, field {field!r}, {body['message']!r}")

    subject = f"plantd.buses.replay.nosuch.{SCOPE}"
    msg = await nc.request(subject, json.dumps({"token": "t"}).encode(), timeout=TIMEOUT)
    code = error_code(msg)
    body = json.loads(msg.data)
    expect(
        code == "404" and body.get("code") == 404 and "nosuch" in body.get("message", ""),
        f"an unknown bus gets 404 naming it, got {code}: {body}",
    )
    ok(f"{subject}: 404, {body['message']!r}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="NATS URL, e.g. nats://127.0.0.1:4222")
    args = parser.parse_args()

    nc = await nats.connect(args.server, connect_timeout=TIMEOUT, max_reconnect_attempts=0)
    ok(f"connected to {args.server} with nats-py")
    try:
        published = await check_publish(nc.jetstream())
        await check_replay(nc, published)
        await check_errors(nc)
    except CheckFailed as failure:
        print(f"FAIL {failure}", flush=True)
        return 1
    finally:
        await nc.close()
    print("all bus checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
