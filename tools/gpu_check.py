"""The prepared GPU check: every GPU question at once, in under 8 minutes on one H100.

On a machine with CUDA (a lent GPU: it reaches no package registry), from the repository root:

    python3 tools/gpu_check.py --out "$OUT"          # or: make gpu-check OUT=DIR
    python3 tools/gpu_check.py --dry                  # the parts and their time limits

It runs, each part under its own time limit, (1) the ``gpu``-marked tests, (2) the transfer
speed of ResNet-50 at 224 px (PGD-10 AT and ST against the official-style loop and the compute
ceiling), (3) bf16 against fp32, (4) the 2:4 export and its speed, (5) the quick demo with 1, 2,
4 and 8 workers sharing the GPU, and writes one markdown table and its JSON to the output
folder (device, torch and CUDA versions, date, every number). doublewin runs from the working
tree (``PYTHONPATH=src``); packages the machine lacks (torch-pruning, torchattacks) are installed
from the wheels in ``.whl/`` (``make gpu-wheels`` downloads them here; docs/testing.md). Without
CUDA it checks that every file it needs is present, says so in one line, and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".whl"
BUDGET_S = 480  # the whole check, with the wheels' install and the writing
NEEDED = (
    "src/doublewin/__init__.py",
    "tests/test_gpu.py",
    "tests/conftest.py",
    "benchmarks/bench_transfer.py",
    "benchmarks/bench_at_step.py",
    "benchmarks/bench_precision.py",
    "benchmarks/bench_patterns.py",
)
WORKERS_PER_GPU = (1, 2, 4, 8)


@dataclass
class Part:
    name: str
    limit_s: int
    argv: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outcome: str = "not run"
    output: str = ""


def parts(out: Path, rehearse: bool = False) -> list[Part]:
    """The check's parts; ``rehearse``: the same flow on the CPU at toy size (to try the
    tool itself where there is no GPU)."""
    py = sys.executable
    if rehearse:
        return [
            Part("gpu tests", 60, [py, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                                   "--junitxml", str(out / "gpu-tests.xml"), "tests/test_gpu.py"]),
            Part("transfer speed, ResNet-50 at 224 px", 120,
                 [py, "benchmarks/bench_transfer.py", "--steps", "2", "--warmup", "1",
                  "--batch-size", "32", "--workers", "0", "--device", "cpu", "--json"]),
            Part("bf16 against fp32", 120,
                 [py, "benchmarks/bench_precision.py", "--device", "cpu", "--seeds", "0",
                  "--epochs", "1"]),
            Part("2:4 export and speed", 60,
                 [py, "benchmarks/bench_patterns.py", "--device", "cpu", "--archs", "resnet8:8",
                  "--repeats", "2", "--json"]),
            Part("quick demo, workers per GPU", 400),
        ]  # fmt: skip
    return [
        Part("gpu tests", 160, [py, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                                "--junitxml", str(out / "gpu-tests.xml"), "tests/test_gpu.py"]),
        Part("transfer speed, ResNet-50 at 224 px", 90,
             [py, "benchmarks/bench_transfer.py", "--arch", "resnet50", "--resolution", "224",
              "--native", "32", "--batch-size", "128", "--steps", "20", "--warmup", "5",
              "--device", "cuda", "--json"]),
        Part("bf16 against fp32", 50,
             [py, "benchmarks/bench_precision.py", "--device", "cuda", "--seeds", "0", "1", "2"]),
        Part("2:4 export and speed", 40,
             [py, "benchmarks/bench_patterns.py", "--device", "cuda", "--json"]),
        Part("quick demo, workers per GPU", 120),
    ]  # fmt: skip


def environment() -> dict[str, str]:
    """doublewin from the working tree, and the carried wheels' packages when there are any."""
    env = dict(os.environ)
    paths = [str(ROOT / "src")]
    wheels = sorted(WHEELS.glob("*.whl"))
    if wheels:
        site = Path(tempfile.gettempdir()) / "doublewin-gpu-site"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
             "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(site),
             *map(str, wheels)],
            check=True,
        )  # fmt: skip
        paths.append(str(site))
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(part: Part, env: dict[str, str], limit: float) -> None:
    started = time.monotonic()
    try:
        done = subprocess.run(
            part.argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(1, limit)
        )
        part.output = done.stdout + done.stderr
        part.outcome = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
    except subprocess.TimeoutExpired as stopped:
        part.output = (
            (stopped.stdout or b"").decode()
            if isinstance(stopped.stdout, bytes)
            else (stopped.stdout or "")
        )
        part.outcome = f"stopped at its limit ({limit:.0f} s)"
    part.seconds = time.monotonic() - started


def demo_workers(
    part: Part, env: dict[str, str], out: Path, counts: tuple[int, ...] | None = None
) -> list[dict[str, object]]:
    """The quick demo at 1, 2, 4 and 8 workers on the one GPU, each in a fresh folder, with an
    equal share of the part's time."""
    rows = []
    started = time.monotonic()
    counts = counts or WORKERS_PER_GPU
    for index, workers in enumerate(counts):
        share = (part.limit_s - (time.monotonic() - started)) / (len(counts) - index)
        folder = Path(tempfile.mkdtemp(prefix=f"demo-w{workers}-"))
        sub = Part(f"demo w{workers}", int(share), [sys.executable, "-m", "doublewin", "demo",
                   "--quick", "--workers-per-gpu", str(workers), "--out", str(folder / "run"),
                   "--json"])  # fmt: skip
        run(sub, env, share)
        jobs = re.search(r'"computed":\s*(\d+)', sub.output)
        rows.append(
            {
                "workers_per_gpu": workers,
                "seconds": round(sub.seconds, 1),
                "outcome": sub.outcome,
                "jobs": int(jobs.group(1)) if jobs else None,
            }
        )
        shutil.rmtree(folder, ignore_errors=True)
    part.seconds = time.monotonic() - started
    part.outcome = "ok" if all(r["outcome"] == "ok" for r in rows) else "see the table"
    return rows


def last_json(text: str) -> dict[str, object] | None:
    """The last JSON object a benchmark printed."""
    for start in [m.start() for m in re.finditer(r"^\{", text, re.M)][::-1]:
        try:
            return json.loads(text[start : text.index("\n}", start) + 2])
        except ValueError:
            continue
    return None


def tests_table(xml: Path) -> list[dict[str, object]]:
    if not xml.is_file():
        return []
    rows = []
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = f"{tag}: {(found.get('message') or '').splitlines()[0][:90]}"
        rows.append({"test": case.get("name"), "outcome": outcome,
                     "seconds": round(float(case.get("time", 0)), 1)})  # fmt: skip
    return rows


def header() -> dict[str, str]:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (rehearsal)"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    return {
        "device": device,
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "python": sys.version.split()[0],
        "date": datetime.date.today().isoformat(),
        "commit": commit or "unknown",
    }


def markdown(info: dict[str, str], done: list[Part], results: dict[str, object]) -> str:
    lines = [
        f"### GPU check, {info['date']}: {info['device']}",
        "",
        f"torch {info['torch']}, CUDA {info['cuda']}, Python {info['python']}, "
        f"commit {info['commit']} (`python3 tools/gpu_check.py`).",
        "",
        "| part | limit (s) | took (s) | outcome |",
        "|---|---:|---:|---|",
        *[f"| {p.name} | {p.limit_s} | {p.seconds:.0f} | {p.outcome} |" for p in done],
    ]
    tests = results.get("tests") or []
    if tests:
        passed = sum(t["outcome"] == "passed" for t in tests)
        lines += ["", f"**gpu tests**: {passed} of {len(tests)} passed.", "",
                  "| test | outcome | s |", "|---|---|---:|",
                  *[f"| {t['test']} | {t['outcome']} | {t['seconds']} |" for t in tests]]  # fmt: skip
    speed = results.get("transfer_speed")
    if speed:
        lines += ["", f"**Transfer speed**, {speed['arch']} at {speed['resolution']} px, batch "
                  f"{speed['batch_size']}, PGD-{speed['pgd_steps']} (images/s):", "",
                  "| regime | doublewin | official-style | ceiling | × official | of ceiling |",
                  "|---|---:|---:|---:|---:|---:|",
                  *[f"| {r['regime']} | {r['doublewin']} | {r['official']} | {r['ceiling']} | "
                    f"{r['vs_official']} | {r['of_ceiling']} |" for r in speed["rows"]]]  # fmt: skip
    for key, title in (("precision", "bf16 against fp32"), ("patterns", "2:4 export")):
        found = results.get(key)
        if found:
            lines += ["", f"**{title}**: " + ", ".join(f"{k} {v}" for k, v in found.items())]
    demo = results.get("workers") or []
    if demo:
        lines += ["", "**Quick demo, workers sharing the GPU**:", "",
                  "| workers per GPU | seconds | jobs | outcome |", "|---:|---:|---:|---|",
                  *[f"| {r['workers_per_gpu']} | {r['seconds']} | {r['jobs']} | {r['outcome']} |"
                    for r in demo]]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-check")
    parser.add_argument("--dry", action="store_true", help="List the parts and their limits.")
    parser.add_argument(
        "--rehearse", action="store_true", help="Run the same flow on the CPU at toy size."
    )
    args = parser.parse_args()
    out = Path(args.out)
    plan = parts(out, args.rehearse)
    if args.dry:
        for p in plan:
            print(f"{p.limit_s:>4} s  {p.name}")
        print(f"{sum(p.limit_s for p in plan):>4} s  in all (budget {BUDGET_S} s)")
        return 0
    missing = [name for name in NEEDED if not (ROOT / name).is_file()]
    if missing:
        print(f"gpu check: missing {', '.join(missing)}; run it from the repository root")
        return 2
    try:
        import torch
    except ImportError:
        print(
            f"gpu check: {sys.executable} has no torch; run it with the Python of the GPU "
            "machine that has torch (python3 on a lent GPU), or install torch first"
        )
        return 2

    if not torch.cuda.is_available() and not args.rehearse:
        print("gpu check: no CUDA device here, nothing to run (every file it needs is present)")
        return 0
    budget = BUDGET_S if not args.rehearse else 900
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    env = environment()
    results: dict[str, object] = {"header": header()}
    for part in plan:
        left = budget - (time.monotonic() - started) - 10
        if part.name.startswith("quick demo"):
            part.limit_s = int(min(part.limit_s, left))
            results["workers"] = demo_workers(part, env, out, (1,) if args.rehearse else None)
        else:
            run(part, env, min(part.limit_s, left))
        if part.name == "gpu tests":
            results["tests"] = tests_table(out / "gpu-tests.xml")
        elif part.name.startswith("transfer speed"):
            results["transfer_speed"] = last_json(part.output)
        elif part.name.startswith("bf16"):
            results["precision"] = last_json(part.output)
        elif part.name.startswith("2:4"):
            found = last_json(part.output) or {}
            results["patterns"] = found.get("two_four") or {"two_four": "not timed (no CUDA)"}
        (out / f"{re.sub(r'[^A-Za-z0-9]+', '-', part.name).strip('-')}.log").write_text(part.output)
    results["parts"] = [{"name": p.name, "limit_s": p.limit_s, "seconds": round(p.seconds, 1),
                         "outcome": p.outcome} for p in plan]  # fmt: skip
    (out / "gpu-check.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "gpu-check.md").write_text(markdown(results["header"], plan, results))  # type: ignore[arg-type]
    print((out / "gpu-check.md").read_text())
    print(f"gpu check: {time.monotonic() - started:.0f} s; {out / 'gpu-check.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
