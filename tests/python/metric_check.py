#!/usr/bin/env python3
"""The metric module seen by third-party tools: nats-py and Prometheus' own text parser.

Nothing here uses plantd code: only nats-py, prometheus_client and the public contract
(schemas/proto/plantd/metric/v1/metric.proto, docs/modules.md). It listens to the samples the
module publishes on the data bus (`plantd.bus.data.<scope>.metric.<host>`, JSON), checks that
their sequence numbers follow each other, asks `plantd.metric.get` for the latest one, checks that
a malformed request gets an ADR-32 400 reply, and parses `GET /metrics` with
`prometheus_client.parser`, the parser Prometheus' Python client ships.

Usage: metric_check.py --server nats://127.0.0.1:PORT --metrics http://127.0.0.1:PORT/metrics
Prints one line per check; exits 0 when all pass, 1 on the first failure, 3 when a Python
dependency is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.request

from checks import CheckFailed, expect, missing_module, ok

try:
    import nats
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as err:  # pragma: no cover - environment problem, not a test result
    missing_module(err)

TIMEOUT = 5.0
SAMPLES = 3
SUBJECT = "plantd.bus.data.*.metric.>"


async def bus_samples(nc) -> str:
    sub = await nc.subscribe(SUBJECT)
    seen = []
    for _ in range(SAMPLES):
        msg = await asyncio.wait_for(sub.next_msg(), TIMEOUT * 2)
        expect(
            (msg.headers or {}).get("Content-Type") == "application/json",
            f"samples are JSON: {msg.headers}",
        )
        seen.append((msg.subject, json.loads(msg.data)))
    await sub.unsubscribe()
    subject, first = seen[0]
    host = first["host"]
    expect(subject.endswith(f".metric.{host}"), f"{subject} names the host {host}")
    for key in ("host_metrics", "process", "nats", "sampled_at", "sequence"):
        expect(key in first, f"a sample has {key}: {first}")
    expect(int(first["host_metrics"]["memory_total_bytes"]) > 0, "memory is measured")
    expect(0.0 <= float(first["host_metrics"]["cpu_busy_ratio"]) <= 1.0, "cpu ratio in 0..1")
    expect(int(first["process"]["rss_bytes"]) > 0, "the module's rss is measured")
    expect(int(first["nats"]["connects"]) >= 1, "connects counts the first connect")
    sequences = [int(sample["sequence"]) for _, sample in seen]
    expect(
        sequences == list(range(sequences[0], sequences[0] + SAMPLES)),
        f"sequences follow each other: {sequences}",
    )
    ok(f"{SAMPLES} samples on {subject}, sequences {sequences}")
    return host


async def get_latest(nc, host: str) -> None:
    reply = await nc.request(
        "plantd.metric.get", b"{}", timeout=TIMEOUT, headers={"Content-Type": "application/json"}
    )
    expect((reply.headers or {}).get("Nats-Service-Error-Code") is None, f"no error: {reply.headers}")
    sample = json.loads(reply.data)["sample"]
    expect(sample["host"] == host, f"get names the host: {sample['host']}")
    ok(f"plantd.metric.get answers sample {sample['sequence']}")
    bad = await nc.request(
        "plantd.metric.get", b"{not json", timeout=TIMEOUT, headers={"Content-Type": "application/json"}
    )
    code = (bad.headers or {}).get("Nats-Service-Error-Code")
    expect(code == "400", f"malformed request is a 400: {bad.headers}")
    ok("a malformed request gets an ADR-32 400 reply")


def prometheus(url: str, host: str) -> None:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        expect(response.status == 200, f"/metrics answers 200, not {response.status}")
        content_type = response.headers.get("Content-Type", "")
        expect(content_type.startswith("text/plain; version=0.0.4"), f"content type {content_type}")
        text = response.read().decode("utf-8")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    wanted = {
        "plantd_host_cpu_busy_ratio": "gauge",
        "plantd_host_memory_available_bytes": "gauge",
        "plantd_host_disk_available_bytes": "gauge",
        "plantd_process_resident_memory_bytes": "gauge",
        # The parser names a counter family without its `_total` suffix.
        "plantd_process_cpu_seconds": "counter",
    }
    # The series every plantd service has (plantd_shared::metrics), labelled by service.
    runtime = {
        "plantd_requests": "counter",
        "plantd_request_duration_seconds": "histogram",
        "plantd_in_flight": "gauge",
        "plantd_nats_reconnects": "counter",
        "plantd_nats_client_in_msgs": "counter",
    }
    for name, kind in runtime.items():
        expect(name in families, f"{name} in /metrics: {sorted(families)}")
        expect(families[name].type == kind, f"{name} is a {kind}, not {families[name].type}")
        for sample in families[name].samples:
            expect(sample.labels.get("service") == "metric", f"{sample} has service=metric")
    get = [
        s for s in families["plantd_requests"].samples if s.labels.get("endpoint") == "get"
    ]
    expect(get and get[0].value >= 2, f"the gets above are counted: {get}")
    for name, kind in wanted.items():
        expect(name in families, f"{name} in /metrics: {sorted(families)}")
        expect(families[name].type == kind, f"{name} is a {kind}, not {families[name].type}")
        for sample in families[name].samples:
            expect(sample.labels.get("host") == host, f"{sample} has host={host}")
    ok(f"/metrics parses with prometheus_client: {len(families)} families, host={host}, the runtime's series too")


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    nc = await nats.connect(args.server, connect_timeout=TIMEOUT, allow_reconnect=False)
    try:
        host = await bus_samples(nc)
        await get_latest(nc, host)
        prometheus(args.metrics, host)
    except (CheckFailed, asyncio.TimeoutError, nats.errors.Error) as err:
        print(f"FAIL {type(err).__name__}: {err}", flush=True)
        return 1
    finally:
        await nc.close()
    print("all metric checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
