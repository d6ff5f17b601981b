"""The mutation gate's score: `make mutants` runs mutmut, then this.

Reads ``mutmut results --all true``, prints per module the mutants killed (a timeout counts as
killed: the tests noticed), survived and not reached by any test, and the score
killed / (killed + survived + not reached). Every survivor must be listed in
``tests/mutants_explained.txt`` (``name  reason``, one per line) as equivalent or out of the
tests' reach for a stated reason. Exits 1 when the score is below the bar, when a survivor is
unexplained, or when the list names a mutant that no longer survives.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

BAR = 0.90
EXPLAINED = Path("tests/mutants_explained.txt")
DETECTED = {"killed", "timeout"}
COUNTED = DETECTED | {"survived", "no tests"}


def results(mutmut: str) -> dict[str, str]:
    out = subprocess.run(
        [mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    status = {}
    for line in out.splitlines():
        name, sep, value = line.strip().rpartition(": ")
        if sep:
            status[name] = value
    return status


def module_of(name: str) -> str:
    return name.split(".x_")[0].split(".xǁ")[0]


def explained() -> dict[str, str]:
    if not EXPLAINED.exists():
        return {}
    out = {}
    for line in EXPLAINED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.strip().partition(" ")
            out[name] = reason.strip()
    return out


def main() -> int:
    status = results(sys.argv[1] if len(sys.argv) > 1 else "mutmut")
    by_module: dict[str, Counter] = defaultdict(Counter)
    for name, value in status.items():
        by_module[module_of(name)][value] += 1
    print(f"{'module':42} {'killed':>7} {'survived':>9} {'no tests':>9} {'score':>7}")
    total = Counter()
    for module, counts in sorted(by_module.items()):
        total.update(counts)
        print(_row(module, counts))
    print(_row("all", total))
    unchecked = total["not checked"]
    if unchecked:
        print(f"{unchecked} mutants not checked yet: run `make mutants` to the end")
    notes = explained()
    survivors = {n for n, v in status.items() if v in {"survived", "no tests"}}
    unexplained = sorted(survivors - notes.keys())
    stale = sorted(n for n in notes if status.get(n) in DETECTED)
    for name in unexplained:
        print(f"unexplained survivor: {name} (kill it with a test, or explain it in {EXPLAINED})")
    for name in stale:
        print(f"{EXPLAINED} names {name}, which the tests now kill: remove the line")
    failed = _score(total) < BAR or unexplained or stale or unchecked
    return 1 if failed else 0


def _score(counts: Counter) -> float:
    counted = sum(counts[k] for k in COUNTED)
    return sum(counts[k] for k in DETECTED) / counted if counted else 1.0


def _row(module: str, counts: Counter) -> str:
    killed = counts["killed"] + counts["timeout"]
    return (
        f"{module:42} {killed:7d} {counts['survived']:9d} {counts['no tests']:9d} "
        f"{100 * _score(counts):6.1f}%"
    )


if __name__ == "__main__":
    sys.exit(main())
