"""What the third-party client scripts share: a failed check, and how each result is printed.

Each script in this folder is run by a Rust test (tests/tests/thirdparty.rs, identity_cli.rs),
which shows its stdout (`ok   …` per check) and fails on a non-zero exit.
"""

from __future__ import annotations


class CheckFailed(Exception):
    """One check did not hold."""


def ok(what: str) -> None:
    print(f"ok   {what}", flush=True)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)
