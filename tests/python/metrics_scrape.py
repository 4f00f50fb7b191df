#!/usr/bin/env python3
"""A service's /metrics as Prometheus reads it: parsed by prometheus_client's text parser.

Usage: metrics_scrape.py --url http://127.0.0.1:PORT/metrics --service NAME
       [--family NAME:TYPE ...] [--errors ENDPOINT:CODE ...]
Checks the series every plantd service has (requests, errors by code, the handling-time
histogram with cumulative buckets whose +Inf bucket equals the count, in-flight, NATS client
counters), all labelled `service=NAME`, plus the given families and error codes. Prints one line
per check; exits 0 when all pass, 1 on the first failure, 3 when a Python dependency is missing.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request

from checks import CheckFailed, expect, missing_module, ok

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as err:  # pragma: no cover - environment problem, not a test result
    missing_module(err)

RUNTIME = {
    "plantd_requests": "counter",
    "plantd_request_duration_seconds": "histogram",
    "plantd_in_flight": "gauge",
    "plantd_max_in_flight": "gauge",
    "plantd_nats_reconnects": "counter",
    "plantd_nats_client_in_msgs": "counter",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--family", action="append", default=[])
    parser.add_argument("--errors", action="append", default=[])
    args = parser.parse_args()
    try:
        with urllib.request.urlopen(args.url, timeout=5) as response:
            content_type = response.headers.get("Content-Type", "")
            expect(content_type.startswith("text/plain; version=0.0.4"), f"content type {content_type}")
            text = response.read().decode("utf-8")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        wanted = dict(RUNTIME)
        wanted.update(dict(f.split(":", 1) for f in args.family))
        for name, kind in wanted.items():
            expect(name in families, f"{name} in /metrics: {sorted(families)}")
            expect(families[name].type == kind, f"{name} is a {kind}, not {families[name].type}")
            for sample in families[name].samples:
                expect(sample.labels.get("service") == args.service, f"{sample} has service={args.service}")
        ok(f"{args.service}: {len(families)} families parse, the runtime's {len(RUNTIME)} and {len(args.family)} of its own")
        requests = {s.labels["endpoint"]: s.value for s in families["plantd_requests"].samples if s.name.endswith("_total")}
        expect(any(v > 0 for v in requests.values()), f"requests are counted: {requests}")
        hist = families["plantd_request_duration_seconds"].samples
        for endpoint in requests:
            buckets = [s for s in hist if s.name.endswith("_bucket") and s.labels["endpoint"] == endpoint]
            counts = [s.value for s in buckets]
            expect(counts == sorted(counts), f"{endpoint}: buckets are cumulative: {counts}")
            total = [s.value for s in hist if s.name.endswith("_count") and s.labels["endpoint"] == endpoint]
            expect(buckets[-1].labels["le"] == "+Inf" and counts[-1] == total[0] == requests[endpoint],
                   f"{endpoint}: +Inf bucket = count = requests")
        ok(f"{args.service}: requests {requests}; histograms consistent")
        errors = {(s.labels["endpoint"], s.labels["code"]): s.value
                  for s in families.get("plantd_request_errors", type("E", (), {"samples": []})).samples
                  if s.name.endswith("_total")}
        for pair in args.errors:
            endpoint, code = pair.split(":", 1)
            expect(errors.get((endpoint, code), 0) >= 1, f"{endpoint} errors with code {code} counted: {errors}")
        if args.errors:
            ok(f"{args.service}: errors by code {errors}")
    except (CheckFailed, OSError) as err:
        print(f"FAIL {type(err).__name__}: {err}", flush=True)
        return 1
    print("metrics scrape passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
