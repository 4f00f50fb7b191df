"""What the third-party client scripts share: a failed check, and how each result is printed.

Each script in this folder is run by a Rust test (tests/tests/thirdparty.rs, identity_cli.rs),
which shows its stdout (`ok   …` per check) and fails on a non-zero exit.
openapi_check.py uses `missing_module` too.
"""

from __future__ import annotations

import asyncio
import sys
from typing import NoReturn

# The exit code of a script that misses a Python module; the Rust side
# (tests/src/python.rs, MISSING_DEPENDENCY) fails the test with an install hint on it.
MISSING_DEPENDENCY = 3


def missing_module(err: ImportError) -> NoReturn:
    """Ends a script whose dependency is not installed: says which, and how to install it."""
    print(
        f"missing Python module {err.name!r} ({err}): run `bash deploy/install-deps.sh`",
        file=sys.stderr,
    )
    sys.exit(MISSING_DEPENDENCY)


class CheckFailed(Exception):
    """One check did not hold."""


def ok(what: str) -> None:
    print(f"ok   {what}", flush=True)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


class Violations:
    """The errors the server sent a connection (pass `on_error` as nats-py's `error_cb`)."""

    def __init__(self, wait: float) -> None:
        self.seen: list[str] = []
        self.wait = wait

    async def on_error(self, err: Exception) -> None:
        self.seen.append(str(err))

    async def refused(self, needle: str) -> bool:
        """Whether an error containing `needle` (any case) arrives within `wait` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while loop.time() < deadline:
            if any(needle.lower() in v.lower() for v in self.seen):
                return True
            await asyncio.sleep(0.02)
        return False

    def clear(self) -> None:
        self.seen.clear()

    def __str__(self) -> str:
        return str(self.seen)
