"""The same-task known answer over seeds: dense vs the 90% IMP ticket vs a random mask.

tests/test_known_answers.py runs seed 0 in the suite; this runs seeds 0–2 (or the seeds given)
and prints each with the gaps the known answer asks for: the ticket within 2 points of the
dense model, the random mask ≥ 10 points below. About 1.5 min per seed on a 2-core CPU.

    python benchmarks/bench_known_answer.py [SEED ...]
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests" / "test_known_answers.py"


def main(seeds: list[int]) -> None:
    spec = importlib.util.spec_from_file_location("test_known_answers", TESTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("seed  dense    IMP  random  IMP−dense  random−dense  random−IMP")
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            dense, imp, random = module.imp_and_random_against_dense(Path(tmp), seed)
        print(
            f"{seed:4d} {dense:6.2f} {imp:6.2f} {random:7.2f} {imp - dense:+10.2f} "
            f"{random - dense:+13.2f} {random - imp:+11.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1, 2])
