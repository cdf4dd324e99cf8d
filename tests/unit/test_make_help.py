"""`make` alone (and `make help`) lists the public targets, one line each."""

import re
import subprocess

from tests.support.distributed import ROOT

MAKEFILE = ROOT / "Makefile"


def make(*args: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def phony_targets() -> set[str]:
    names: set[str] = set()
    for line in MAKEFILE.read_text().splitlines():
        if line.startswith(".PHONY:"):
            names.update(line.split(":", 1)[1].split())
    return names


def test_make_alone_lists_every_public_target_on_one_line() -> None:
    listing = make()
    assert listing == make("help")
    described = {
        match[1]: match[2]
        for match in re.finditer(r"^  ([a-z][a-z0-9-]*) +(\S.*)$", listing, re.MULTILINE)
    }
    assert set(described) == phony_targets()
    for target in ("run", "test", "help", "run-user-service", "run-order-service"):
        assert described[target]
    # One line each: nothing else is printed but the heading.
    assert len(listing.strip().splitlines()) == len(described) + 1
