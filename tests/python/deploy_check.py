#!/usr/bin/env python3
"""The Kubernetes and compose bundles of deploy/, validated offline by third-party schemas.

- deploy/kubernetes/plantd.yaml: every resource against the Kubernetes 1.30 API schemas,
  strictly (unknown fields fail), with kubernetes-validate; every container has readiness and
  liveness probes on /healthz, runs as non-root with a read-only root and no capabilities.
- deploy/kubernetes/nats-values.yaml: the NATS chart values ask for a 3-node cluster with
  JetStream on volumes (the chart is not fetched offline, so its keys are checked here).
- deploy/compose/compose.yaml: against the compose-spec schema (vendored by check-jsonschema).

Usage: deploy_check.py DEPLOY_DIR. Prints one line per check; exits 0 when all pass, 1 on the
first failure, 3 when a Python dependency is missing.
"""

from __future__ import annotations

import json
import os
import sys

from checks import CheckFailed, expect, missing_module, ok

try:
    import check_jsonschema
    import jsonschema
    import kubernetes_validate
    from ruamel.yaml import YAML
except ImportError as err:  # pragma: no cover - environment problem, not a test result
    missing_module(err)

K8S_VERSION = "1.30.0"


def load_all(path: str) -> list:
    yaml = YAML(typ="safe")
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.load_all(f) if doc]


def kubernetes(deploy: str) -> None:
    docs = load_all(os.path.join(deploy, "kubernetes", "plantd.yaml"))
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        spec = doc.get("spec", {}).get("template", {}).get("spec")
        if not spec:
            continue
        pod = spec.get("securityContext", {})
        expect(pod.get("runAsNonRoot") is True, f"{doc['metadata']['name']}: runAsNonRoot")
        for c in spec["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                expect(c.get(probe, {}).get("httpGet", {}).get("path") == "/healthz",
                       f"{c['name']}: {probe} on /healthz")
            sc = c.get("securityContext", {})
            expect(sc.get("readOnlyRootFilesystem") is True, f"{c['name']}: read-only root")
            expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{c['name']}: no capabilities")
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    ok(f"plantd.yaml: {len(docs)} resources valid against Kubernetes {K8S_VERSION} (strict): {', '.join(kinds)}")
    values = load_all(os.path.join(deploy, "kubernetes", "nats-values.yaml"))[0]
    cfg = values["config"]
    expect(cfg["cluster"]["enabled"] and cfg["cluster"]["replicas"] == 3, "NATS: a 3-node cluster")
    expect(cfg["jetstream"]["enabled"] and cfg["jetstream"]["fileStore"]["pvc"]["size"], "NATS: JetStream on volumes")
    ok("nats-values.yaml: 3-node cluster, JetStream on persistent volumes")


def compose(deploy: str) -> None:
    schema_path = os.path.join(os.path.dirname(check_jsonschema.__file__), "builtin_schemas", "vendor", "compose-spec.json")
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    doc = load_all(os.path.join(deploy, "compose", "compose.yaml"))[0]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
    expect(not errors, f"compose.yaml: {[e.message for e in errors[:3]]}")
    ok(f"compose.yaml valid against the compose-spec schema: services {sorted(doc['services'])}")


def main() -> int:
    deploy = sys.argv[1]
    try:
        kubernetes(deploy)
        compose(deploy)
    except (CheckFailed, kubernetes_validate.ValidationError, KeyError) as err:
        print(f"FAIL {type(err).__name__}: {err}", flush=True)
        return 1
    print("deploy bundles valid", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
