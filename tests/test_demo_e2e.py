"""The quick demo end to end: results, report, resuming after kills, and the extreme search."""

from __future__ import annotations

import re
import subprocess

import pytest

from doublewin.experiments.run.demo import demo_config
from runs import doublewin, rows

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


_doublewin = doublewin
_rows = rows


def test_quick_demo_writes_results_and_a_report_within_90_seconds(quick_run) -> None:
    out, seconds = quick_run
    rows = _rows(out / "results.csv")
    methods = {row["method"] for row in rows.values()}
    assert methods == {"dense", "imp"}
    assert {row["pretraining"] for row in rows.values()} == {"STD", "FAT", "AT", "CONTROL"}
    # The no-pre-training control transfers densely only.
    assert {row["method"] for row in rows.values() if row["pretraining"] == "CONTROL"} == {"dense"}
    assert {row["regime"] for row in rows.values()} == {"st", "at"}
    for row in rows.values():
        for column in ("sa_best_sa", "ra_best_sa", "sa_best_ra", "ra_best_ra"):
            assert 0.0 <= float(row[column]) <= 100.0
    report = out / "report"
    assert (report / "report.md").is_file() and (report / "report.html").is_file()
    assert "http://" not in (report / "report.html").read_text()
    # Every pre-training's dense transfer against the control, and what follows from it.
    markdown = (report / "report.md").read_text()
    section = markdown.split("## Does pre-training help here?")[1].split("\n## ")[0]
    assert "the control (CONTROL)" in section
    for label in ("STD", "FAT", "AT"):
        assert f"| {label} |" in section
    if "No pre-training beats the control in any setting" in section:
        assert "**not testable**" in markdown
    # The compute: every run's own wall seconds in results.csv, every stage in the report.
    table = (out / "results.csv").read_text().splitlines()
    column = table[0].split(",").index("job_seconds")
    assert all(float(line.split(",")[column]) > 0 for line in table[1:])
    compute = markdown.split("## Compute")[1]
    assert all(f"| {stage} |" in compute for stage in ("pretrain", "tickets", "transfer"))
    assert seconds <= 90 * 1.5, f"quick demo took {seconds:.0f} s"  # slack for a busy CI box


def test_the_quick_demos_report_opens_with_what_the_run_found(quick_run) -> None:
    """The first screen: one paragraph with the verdict counts of every judged ticket, the
    extreme double-win sparsity of each pre-training at each data fraction, and what the
    findings say; the same counts as judging results.csv again."""
    from collections import Counter

    from doublewin.analysis.verdict import verdicts
    from doublewin.experiments.plan.experiment import load_experiment

    out = quick_run[0]
    rows = list(_rows(out / "results.csv").values())
    config = load_experiment(demo_config(quick=True)).verdict
    judged = verdicts(rows, config)
    counts = Counter(v.outcome for v in judged)
    markdown = (out / "report" / "report.md").read_text()
    headline = markdown.split("## Findings at a glance\n\n")[1].split("\n\n")[0]
    assert headline.startswith(
        f"**What this run found:** of {len(judged)} tickets judged, "
        f"{counts['double-win']} are certified double-win, {counts['not double-win']} not "
        f"double-win and {counts['inconclusive']} inconclusive"
    )
    # The quick demo's one ladder (IMP with ST inside IMP) at its one fraction, per
    # pre-training, each bracketed by the next rung up.
    assert "Extreme double-win sparsity (IMP (ST)) — with 50% data: " in headline
    brackets = headline.split("Extreme double-win sparsity")[1].split(". ")[0]
    for label in ("STD", "FAT", "AT"):
        assert re.search(rf"\b{label} (double-win up to|no rung double-win)", brackets), label
    # What the findings say, as the report's own findings table has it.
    statuses = dict(re.findall(r"^\| (\d+) \| [^|]+ \| \*\*([a-z ]+)\*\* \|", markdown, re.M))
    assert len(statuses) >= 12
    for status, words in (
        ("cannot tell", "cannot tell here"),
        ("not testable", "are not testable here"),
    ):
        numbers = [i for i, s in statuses.items() if s == status]
        said = re.search(rf"Findings ([\d, ]+) {words}", headline)
        assert (set(said.group(1).split(", ")) if said else set()) == set(numbers), status
    # Findings are named in words, never by their keys.
    assert "(at-ra)" not in headline and "(imp-beats-random)" not in headline
    for status, verb in (("supports", "support"), ("contradicts", "contradict")):
        said = re.search(rf"Findings ([^.]*) {verb} the paper\.", headline)
        named = set(re.findall(r"(\d+) \(", said.group(1))) if said else set()
        assert named == {i for i, s in statuses.items() if s == status}, status


def test_verdict_on_a_runs_table_judges_it_as_the_runs_report_does(quick_run) -> None:
    """`doublewin verdict RUN/results.csv`, no flag: the run's own settings (the quick demo's
    paper rule, not the default intervals), the same counts and findings as its report; a copy
    of the table elsewhere says which settings judged it."""
    import json
    import shutil

    out = quick_run[0]
    done = subprocess.run(
        _doublewin("verdict", str(out / "results.csv"), "--json"), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    judged = json.loads(done.stdout)
    assert str(out / "experiment.yaml") in judged["settings"]
    assert judged["verdict"]["rule"] == "paper"
    markdown = (out / "report" / "report.md").read_text()
    headline = markdown.split("## Findings at a glance\n\n")[1].split("\n\n")[0]
    outcomes = [t["outcome"] for t in judged["tickets"]]
    counts = (
        outcomes.count("double-win"),
        outcomes.count("not double-win"),
        outcomes.count("inconclusive"),
    )
    assert f"{counts[0]} are certified double-win, {counts[1]} not double-win and {counts[2]} inconclusive" in headline  # fmt: skip
    statuses = dict(re.findall(r"^\| (\d+) \| [^|]+ \| \*\*([a-z ]+)\*\* \|", markdown, re.M))
    assert [f["status"] for f in judged["findings"]] == [
        statuses[k] for k in sorted(statuses, key=int)
    ]
    elsewhere = out.parent / "copy.csv"
    shutil.copyfile(out / "results.csv", elsewhere)
    done = subprocess.run(_doublewin("verdict", str(elsewhere)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("Judged by doublewin's default settings")


@pytest.mark.parametrize(
    "tolerance",
    [
        [],
        ["verdict.rule=points", "verdict.points=5"],
        ["verdict.rule=points", "verdict.points=10"],
    ],
    ids=["paper", "5-points", "10-points"],
)
def test_search_extreme_matches_the_full_grid_with_at_most_half_the_transfers(
    quick_run, tolerance: list[str]
) -> None:
    """On the quick demo's own results, under its verdict (the paper rule: one dense standard
    deviation) and under looser tolerances that move the boundary up the ladder, with at most
    half the grid's transfer runs the search keeps its documented guarantee on every ladder:
    it never reports a rung the full grid does not call double-win, and it finds the grid's
    extreme whenever each failing rung below that extreme sits between two double-win rungs."""
    import json

    from doublewin.analysis.verdict import extreme_sparsities, verdicts
    from doublewin.experiments.plan.experiment import load_experiment

    out = quick_run[0]
    rows = list(_rows(out / "results.csv").values())
    config = load_experiment(demo_config(quick=True), tolerance).verdict
    ladders = {
        (e.pretraining, e.dataset, str(e.fraction), e.method, e.imp_regime): e
        for e in extreme_sparsities(verdicts(rows, config))
    }
    # Same store: the search reuses the finished transfers and reports what it needed.
    sets = [arg for pair in tolerance for arg in ("--set", pair)]
    done = subprocess.run(
        _doublewin(
            "run",
            str(demo_config(quick=True)),
            "--out",
            str(out),
            "--search",
            "extreme",
            "--json",
            *sets,
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)["search"]
    assert result["transfer_runs"] <= result["full_grid_transfer_runs"] / 2
    found = {tuple(key.split(" / ")): value for key, value in result["extreme"].items()}
    assert set(found) == set(ladders)
    guaranteed = 0
    for key, ladder in ladders.items():
        flags = [dw for _, dw in ladder.rungs]
        sparsities = [s for s, _ in ladder.rungs]
        if found[key] is not None:
            assert flags[sparsities.index(round(found[key], 6))] is True, key
        below = [i for i, dw in enumerate(flags) if ladder.extreme is not None and dw is False
                 and sparsities[i] < ladder.extreme]  # fmt: skip
        if all(0 < i < len(flags) - 1 and flags[i - 1] and flags[i + 1] for i in below):
            guaranteed += 1
            assert found[key] == ladder.extreme, key
    assert guaranteed, "no ladder of the quick demo meets the search's condition"
    # Exact equality on every verdict pattern of up to 10 rungs: tests/test_search.py.


def test_the_dry_run_disk_estimate_is_within_20_percent_of_the_quick_demos_store(
    quick_run, tmp_path
) -> None:
    from doublewin.experiments.run.folder import make_plan
    from doublewin.experiments.store.disk import plan_bytes

    store = quick_run[0] / "store"
    real = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    plan = make_plan(demo_config(quick=True), run_dir=tmp_path / "fresh")
    estimate = plan_bytes(plan.pending(), plan.experiment.arch)
    assert abs(estimate - real) <= 0.2 * real, (estimate, real)
    # Transfers keep metrics only by default: no fine-tuned weights in the store.
    assert not list(store.glob("transfer-*/*.safetensors"))
    assert not list(store.glob("pretrain-*/train"))  # finished entries drop their checkpoints
