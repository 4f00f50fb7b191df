#!/usr/bin/env python3
"""The web-api bridge's OpenAPI document, checked by tools that are not ours.

1. Downloads `GET /api/v1/openapi.json` and validates it with `openapi-spec-validator`
   (which must detect OpenAPI 3.1); every error it reports is printed.
2. Acts as a client generated from that document at run time: each operation it calls
   (login, whoami, get/set/list of state keys, the services list) is looked up in `paths` by
   method and path template; its URL is built from the template and the declared path (and
   query) parameters, percent-encoded; its request body is checked against the declared
   `requestBody` schema before it is sent; the bearer token is sent only where the operation's
   `security` names the bearer scheme of `components.securitySchemes`; and every response body
   (errors included: a missing key -> 404, a wrong password -> 401, no token -> 401) is
   validated with `jsonschema` against the schema the document declares for that status code
   and content type. Response objects are also checked strictly: a property the server sends
   that the document does not declare is a failure (the document would have drifted).

Usage: openapi_check.py --url http://127.0.0.1:PORT --user U --password P --scope S --key K
The key must exist in the scope (its value is overwritten). Prints one line per check
(`ok   ...` or `FAIL ...`) and `OPENAPI-OK` when all pass; exits 1 on any failure (after
running every check that does not depend on the failed one), 3 when a Python dependency is
missing (`checks.missing_module`). Uses only the standard library besides openapi-spec-validator,
jsonschema and this folder's `checks.py`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from checks import missing_module

try:
    import jsonschema
    import referencing
    import referencing.jsonschema
    from jsonschema_path import SchemaPath
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate
    from openapi_spec_validator.shortcuts import get_validator_cls
except ImportError as err:  # pragma: no cover - environment problem, not a test result
    missing_module(err)

# Patience for one HTTP call.
TIMEOUT = 10.0

# Where the document is registered for `$ref` resolution (`#/components/schemas/...` inside it
# resolves against this).
DOC_URI = "urn:plantd:web-api:openapi.json"


class Fatal(Exception):
    """A failure the later checks cannot go on without."""


class Run:
    """The results so far."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def ok(self, what: str) -> None:
        print(f"ok   {what}", flush=True)

    def fail(self, what: str) -> None:
        self.failures.append(what)
        print(f"FAIL {what}", flush=True)

    def check(self, condition: bool, what: str) -> bool:
        if condition:
            self.ok(what)
        else:
            self.fail(what)
        return condition


# --- the document -----------------------------------------------------------------------------


def pointer(*parts: str) -> str:
    """A JSON pointer fragment (`#/a/b~1c`) to `parts`."""
    return "#" + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def strict_copy(node: Any) -> Any:
    """`node` with `additionalProperties: false` on every plain object schema that declares
    `properties` and says nothing about extra ones, so undeclared response fields show."""
    if isinstance(node, list):
        return [strict_copy(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_copy(v) for k, v in node.items()}
    composed = any(k in out for k in ("allOf", "anyOf", "oneOf", "$ref"))
    if (
        isinstance(out.get("properties"), dict)
        and "additionalProperties" not in out
        and "unevaluatedProperties" not in out
        and "patternProperties" not in out
        and not composed
    ):
        out["additionalProperties"] = False
    return out


class Spec:
    """The document, with `$ref` resolution and schema validation of values against it."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        strict = copy.deepcopy(doc)
        strict["components"] = strict_copy(strict.get("components", {}))
        strict["paths"] = strict_copy(strict.get("paths", {}))
        spec = referencing.jsonschema.DRAFT202012
        self.registry = referencing.Registry().with_resources(
            [
                (DOC_URI, referencing.Resource(contents=doc, specification=spec)),
                (DOC_URI + ":strict", referencing.Resource(contents=strict, specification=spec)),
            ]
        )
        # The 2020-12 formats jsonschema knows (date-time, ...), and OpenAPI's integer ones.
        checker = jsonschema.FormatChecker(
            formats=jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers
        )

        @checker.checks("int32")
        def _int32(value: object) -> bool:
            return not isinstance(value, int) or -(2**31) <= value < 2**31

        @checker.checks("int64")
        def _int64(value: object) -> bool:
            return not isinstance(value, int) or -(2**63) <= value < 2**63

        self.formats = checker

    def resolve(self, node: Any) -> Any:
        """`node`, or what its `$ref` (local to the document) points to."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise Fatal(f"$ref {ref!r} is not local to the document")
            node = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, dict) or part not in node:
                    raise Fatal(f"$ref {ref!r} points nowhere")
                node = node[part]
            seen += 1
            if seen > 32:
                raise Fatal(f"$ref {ref!r} loops")
        return node

    def errors(self, location: str, value: Any, strict: bool = False) -> list[str]:
        """What is wrong with `value` against the schema at `location` (a pointer fragment)."""
        uri = DOC_URI + (":strict" if strict else "")
        validator = jsonschema.Draft202012Validator(
            {"$ref": uri + location}, registry=self.registry, format_checker=self.formats
        )
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        ]


def fetch_document(run: Run, base: str) -> dict:
    url = base + "/api/v1/openapi.json"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            status, body = resp.status, resp.read()
            ctype = resp.headers.get("content-type", "")
    except (urllib.error.URLError, OSError) as err:
        raise Fatal(f"GET {url}: {err}") from err
    if status != 200:
        raise Fatal(f"GET {url}: status {status}")
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise Fatal(f"GET {url}: not JSON ({err})") from err
    if not isinstance(doc, dict):
        raise Fatal(f"GET {url}: not a JSON object")
    run.check(ctype.startswith("application/json"), f"openapi.json is served as JSON ({ctype})")
    run.ok(f"GET /api/v1/openapi.json: {len(body)} bytes, {len(doc.get('paths', {}))} paths")
    return doc


def validate_document(run: Run, doc: dict) -> None:
    try:
        cls = get_validator_cls(doc)
    except Exception as err:  # the validator's own "cannot detect" error
        run.fail(f"openapi-spec-validator cannot detect the version ({doc.get('openapi')!r}): {err}")
        return
    run.check(
        cls is OpenAPIV31SpecValidator,
        f"openapi-spec-validator detects OpenAPI 3.1 (openapi: {doc.get('openapi')!r}, "
        f"validator {cls.__name__})",
    )
    # Every error, not just the first that `validate` raises.
    errors = [str(e) for e in cls(SchemaPath.from_dict(doc)).iter_errors()]
    for message in errors:
        run.fail(f"openapi-spec-validator: {message}")
    try:
        validate(doc)
    except Exception as err:
        if not errors:
            run.fail(f"openapi-spec-validator validate(): {type(err).__name__}: {err}")
        return
    run.ok("openapi-spec-validator validate(): the document is valid OpenAPI 3.1")


# --- the client -------------------------------------------------------------------------------


class Client:
    """Calls operations the way a client generated from the document would."""

    def __init__(self, run: Run, spec: Spec, base: str) -> None:
        self.run = run
        self.spec = spec
        self.base = base
        self.token: str | None = None
        self.bearer = self._bearer_scheme()

    def _bearer_scheme(self) -> str:
        schemes = self.spec.doc.get("components", {}).get("securitySchemes", {})
        names = [
            name
            for name, scheme in schemes.items()
            if isinstance(scheme, dict)
            and scheme.get("type") == "http"
            and str(scheme.get("scheme", "")).lower() == "bearer"
        ]
        if not names:
            raise Fatal(
                f"components.securitySchemes declares no http bearer scheme: {json.dumps(schemes)}"
            )
        self.run.ok(f"components.securitySchemes declares http bearer as {names[0]!r}")
        return names[0]

    def operation(self, method: str, template: str) -> dict:
        item = self.spec.doc.get("paths", {}).get(template)
        if not isinstance(item, dict) or method.lower() not in item:
            raise Fatal(f"the document has no operation {method.upper()} {template}")
        return item[method.lower()]

    def parameters(self, template: str, method: str) -> list[tuple[str, dict]]:
        """The operation's parameters (the path item's too; the operation's win), each with
        where its definition sits in the document."""
        item = self.spec.doc["paths"][template]
        found: dict[tuple[str, str], tuple[str, dict]] = {}
        for owner, parts in ((item, ("paths", template)), (item[method], ("paths", template, method))):
            for i, raw in enumerate(owner.get("parameters", []) or []):
                param = self.spec.resolve(raw)
                loc = raw["$ref"] if isinstance(raw, dict) and "$ref" in raw else pointer(*parts, "parameters", str(i))
                found[(param.get("in"), param.get("name"))] = (loc, param)
        return list(found.values())

    def call(
        self,
        method: str,
        template: str,
        path_params: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = None,
        authenticate: bool = True,
    ) -> tuple[int, Any, dict]:
        """Calls `method template`; returns (status, JSON body, the response object the
        document declares for that status). Every step is checked against the document."""
        path_params = path_params or {}
        query = query or {}
        op = self.operation(method, template)
        what = f"{method.upper()} {template} ({op.get('operationId', 'no operationId')})"
        method_key = method.lower()
        op_ptr = ("paths", template, method_key)

        # URL: every {name} of the template must be a declared, required path parameter.
        params = self.parameters(template, method_key)
        declared_path = {p["name"]: (loc, p) for loc, p in params if p.get("in") == "path"}
        declared_query = {p["name"]: (loc, p) for loc, p in params if p.get("in") == "query"}
        names = [seg[1:-1] for seg in template.split("/") if seg.startswith("{") and seg.endswith("}")]
        if set(names) != set(declared_path):
            raise Fatal(
                f"{what}: path template names {sorted(names)} but the operation declares path "
                f"parameters {sorted(declared_path)}"
            )
        url_path = template
        for name in names:
            loc, param = declared_path[name]
            if not param.get("required"):
                raise Fatal(f"{what}: path parameter {name!r} is not required (OpenAPI requires it)")
            if name not in path_params:
                raise Fatal(f"{what}: no value for path parameter {name!r}")
            value = path_params[name]
            self._expect_no_errors(self.spec.errors(loc + "/schema", value), f"{what}: path parameter {name}={value!r}")
            url_path = url_path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
        pairs = []
        for name, value in query.items():
            if name not in declared_query:
                raise Fatal(f"{what}: the document declares no query parameter {name!r}")
            loc, _ = declared_query[name]
            self._expect_no_errors(self.spec.errors(loc + "/schema", value), f"{what}: query parameter {name}={value!r}")
            pairs.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
        url = self.base + url_path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")

        # Body: from the declared requestBody, checked before it is sent.
        headers = {"accept": "application/json"}
        data = None
        request_body = self.spec.resolve(op.get("requestBody")) if "requestBody" in op else None
        if body is not None:
            if request_body is None:
                raise Fatal(f"{what}: the document declares no requestBody")
            content = request_body.get("content", {})
            if "application/json" not in content:
                raise Fatal(f"{what}: requestBody has no application/json content: {sorted(content)}")
            body_ptr = (*op_ptr, "requestBody")
            if "$ref" in op["requestBody"]:
                schema_loc = op["requestBody"]["$ref"] + pointer("content", "application/json", "schema")[1:]
            else:
                schema_loc = pointer(*body_ptr, "content", "application/json", "schema")
            errors = self.spec.errors(schema_loc, body)
            self._expect_no_errors(errors, f"{what}: the request body {json.dumps(body)} matches the requestBody schema")
            headers["content-type"] = "application/json"
            data = json.dumps(body).encode()
        elif request_body is not None and request_body.get("required"):
            raise Fatal(f"{what}: the document requires a request body, none given")

        # Security: the operation's own, else the document's.
        security = op.get("security", self.spec.doc.get("security", []))
        if authenticate and any(self.bearer in req for req in security if isinstance(req, dict)):
            if self.token is None:
                raise Fatal(f"{what}: needs the bearer token but there is no session")
            headers["authorization"] = f"Bearer {self.token}"

        request = urllib.request.Request(url, data=data, method=method.upper(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("content-type", "")
        except urllib.error.HTTPError as err:
            status, raw, ctype = err.code, err.read(), err.headers.get("content-type", "")
        except (urllib.error.URLError, OSError) as err:
            raise Fatal(f"{what}: {url}: {err}") from err

        # Response: declared for this status (or `default`), with a schema for its content type.
        responses = op.get("responses", {})
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        if key not in responses:
            key = "default" if "default" in responses else ""
        if not key:
            self.run.fail(
                f"{what}: status {status} is not declared (declared: {sorted(responses)}); "
                f"body {raw[:300]!r}"
            )
            return status, _json_or_none(raw), {}
        response = self.spec.resolve(responses[key])
        resp_ptr = responses[key]["$ref"] if "$ref" in responses[key] else pointer(*op_ptr, "responses", key)
        content = response.get("content", {})
        media = ctype.split(";", 1)[0].strip().lower()
        if not content:
            self.run.check(raw == b"", f"{what} -> {status}: no content declared and none sent")
            return status, None, response
        if media not in content:
            self.run.fail(f"{what} -> {status}: content type {ctype!r} is not declared ({sorted(content)})")
            return status, _json_or_none(raw), response
        try:
            value = json.loads(raw)
        except ValueError as err:
            self.run.fail(f"{what} -> {status}: the body is not JSON ({err}): {raw[:300]!r}")
            return status, None, response
        schema_loc = resp_ptr + pointer("content", media, "schema")[1:]
        if "schema" not in content[media]:
            self.run.fail(f"{what} -> {status}: no schema declared for {media}")
            return status, value, response
        schema = content[media]["schema"]
        name = schema["$ref"].rsplit("/", 1)[-1] if isinstance(schema, dict) and "$ref" in schema else "inline schema"
        errors = self.spec.errors(schema_loc, value)
        if errors:
            self.run.fail(f"{what} -> {status}: the body does not match {name}: {'; '.join(errors)}; body {raw[:500]!r}")
            return status, value, response
        extra = self.spec.errors(schema_loc, value, strict=True)
        if extra:
            self.run.fail(f"{what} -> {status}: the body has properties {name} does not declare: {'; '.join(extra)}")
            return status, value, response
        self.run.ok(f"{what} -> {status}: body matches {name} (response {key!r})")
        return status, value, response

    def _expect_no_errors(self, errors: list[str], what: str) -> None:
        if errors:
            raise Fatal(f"{what}: {'; '.join(errors)}")


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- the checks -------------------------------------------------------------------------------

KEY_PATH = "/api/v1/state/{scope}/keys/{key}"


def client_checks(run: Run, client: Client, args: argparse.Namespace) -> None:
    login = "/api/v1/login"

    # An error first: the wrong password is a 401 with the ErrorBody.
    status, body, _ = client.call(
        "post", login, body={"username": args.user, "password": args.password + "-wrong"}
    )
    run.check(status == 401, f"login with a wrong password -> 401 (got {status})")
    if isinstance(body, dict):
        run.check(body.get("code") == 401, f"its error body's code is 401 ({body.get('code')!r})")

    status, body, _ = client.call(
        "post", login, body={"username": args.user, "password": args.password}
    )
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("token"), str):
        raise Fatal(f"login as {args.user!r} -> {status} {body!r}: cannot go on without a token")
    client.token = body["token"]
    run.check(body.get("token_type") == "Bearer", f"login token_type is Bearer ({body.get('token_type')!r})")

    status, body, _ = client.call("get", "/api/v1/whoami")
    run.check(
        status == 200 and isinstance(body, dict) and body.get("username") == args.user,
        f"whoami -> 200 as {args.user!r} (got {status}, {body.get('username') if isinstance(body, dict) else body!r})",
    )

    where = {"scope": args.scope, "key": args.key}
    status, before, _ = client.call("get", KEY_PATH, where)
    run.check(
        status == 200 and isinstance(before, dict) and before.get("key") == args.key,
        f"get {args.scope}/{args.key} -> 200 with key {args.key!r} (got {status})",
    )
    old_version = before.get("version") if isinstance(before, dict) else None

    value = f"openapi-check {time.time():.3f}"
    status, written, _ = client.call("put", KEY_PATH, where, body={"value": value})
    ok_write = status == 200 and isinstance(written, dict)
    run.check(ok_write, f"set {args.scope}/{args.key} -> 200 (got {status}, {written!r})")
    if ok_write and isinstance(old_version, int):
        run.check(
            isinstance(written.get("version"), int) and written["version"] > old_version,
            f"the set's version {written.get('version')!r} is after {old_version}",
        )

    status, after, _ = client.call("get", KEY_PATH, where)
    if status == 200 and isinstance(after, dict) and ok_write:
        run.check(
            after.get("value") == value and after.get("version") == written.get("version"),
            f"get reads back the value and version just set ({after.get('value')!r}, {after.get('version')!r})",
        )

    status, page, _ = client.call(
        "get", "/api/v1/state/{scope}", {"scope": args.scope}, query={"prefix": args.key, "limit": 100}
    )
    keys = [e.get("key") for e in page.get("entries", [])] if isinstance(page, dict) else []
    run.check(
        status == 200 and args.key in keys,
        f"list {args.scope} (prefix {args.key!r}) -> 200 with {args.key!r} (got {status}, keys {keys})",
    )

    missing = f"{args.key}-missing-{int(time.time() * 1000)}"
    status, body, _ = client.call("get", KEY_PATH, {"scope": args.scope, "key": missing})
    run.check(status == 404, f"get a missing key {missing!r} -> 404 (got {status})")
    if isinstance(body, dict):
        run.check(body.get("code") == 404, f"its error body's code is 404 ({body.get('code')!r})")

    status, body, _ = client.call("get", KEY_PATH, where, authenticate=False)
    run.check(status == 401, f"get without the bearer token -> 401 (got {status})")

    status, body, _ = client.call("get", "/api/v1/services")
    services = body.get("services", []) if isinstance(body, dict) else []
    names = sorted({s.get("name") for s in services if isinstance(s, dict)})
    run.check(
        status == 200 and "state" in names,
        f"services -> 200 listing the state service (got {status}, {names})",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="the bridge, http://127.0.0.1:PORT")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--scope", required=True)
    parser.add_argument("--key", required=True, help="an existing key of the scope (overwritten)")
    args = parser.parse_args()
    base = args.url.rstrip("/")

    run = Run()
    try:
        doc = fetch_document(run, base)
        validate_document(run, doc)
        client = Client(run, Spec(doc), base)
        client_checks(run, client, args)
    except Fatal as err:
        run.fail(str(err))
    if run.failures:
        print(f"OPENAPI-FAILED: {len(run.failures)} check(s) failed:", flush=True)
        for failure in run.failures:
            print(f"  - {failure}", flush=True)
        return 1
    print("OPENAPI-OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
