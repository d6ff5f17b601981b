"""Finding 11 (flatter landscapes from robust pre-training) judged on hand-made sharpness
numbers, the report's Figure 6 section, and the experiments' landscape jobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from doublewin.analysis.report import analyse, write_report
from doublewin.experiments.plan.experiment import load_experiment
from doublewin.experiments.plan.grid import expand
from test_report import META, SIX, finding, ladder, with_control

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "doublewin" / "configs"
STD_SHARPNESS = (1.0, 1.1, 0.9)


def _landscapes(datasets, robust=(0.5, 0.6, 0.4), grid: str = "missing.npz"):
    out = []
    for dataset in datasets:
        for label, values in (("STD", STD_SHARPNESS), ("AT", robust), ("FAT", robust)):
            for seed, value in enumerate(values):
                out.append(
                    {
                        "pretraining": label,
                        "dataset": dataset,
                        "fraction": 1.0,
                        "regime": "at",
                        "seed": seed,
                        "sparsity": 0.75,
                        "sharpness": value,
                        "hessian_top": 10 * value,
                        "grid": grid,
                    }
                )
    return out


def _rows(datasets, **control):
    rows = []
    for dataset in datasets:
        rows += ladder("STD", 0.36, dataset=dataset, seeds=(0, 1, 2))
        rows += ladder("AT", 0.5904, dataset=dataset, seeds=(0, 1, 2))
        rows += ladder("FAT", 0.5904, dataset=dataset, seeds=(0, 1, 2))
    return with_control(rows, **control)


def test_robust_pretraining_flatter_on_six_datasets_supports_finding_11():
    data = analyse(_rows(SIX), meta={**META, "landscapes": _landscapes(SIX)})
    result = finding(data, "landscape")
    # AT and FAT on each of six datasets: 12 comparisons, all flatter.
    assert (result.status, result.wins, result.losses) == ("supports", 12, 0)
    # −0.5 with Welch's interval: both sides sd 0.1, se √(0.01/3 · 2) = 0.0816, 4 df,
    # t = 2.776: ± 0.2267.
    assert "sharpness difference -0.5000 [-0.7267, -0.2733] — for" in result.evidence[0]


def test_robust_pretraining_sharper_contradicts_and_overlap_cannot_tell():
    sharper = analyse(
        _rows(SIX), meta={**META, "landscapes": _landscapes(SIX, robust=(2.0, 2.1, 1.9))}
    )
    assert finding(sharper, "landscape").status == "contradicts"
    overlapping = analyse(
        _rows(SIX), meta={**META, "landscapes": _landscapes(SIX, robust=(0.8, 1.3, 1.0))}
    )
    result = finding(overlapping, "landscape")
    assert (result.status, result.wins, result.losses) == ("cannot tell", 0, 0)
    assert "— neither" in result.evidence[0]


def test_one_dataset_is_too_few_comparisons_and_no_landscape_says_how_to_add_one():
    data = analyse(_rows(["cifar10"]), meta={**META, "landscapes": _landscapes(["cifar10"])})
    result = finding(data, "landscape")
    assert (result.status, result.wins) == ("cannot tell", 2)  # p = 0.5
    none = finding(analyse(_rows(["cifar10"]), meta=META), "landscape")
    assert none.status == "cannot tell" and "analysis.landscape" in none.note


def test_where_pretraining_does_not_help_finding_11_is_not_testable():
    rows = _rows(SIX, st=(95.0, 50.0), at=(90.0, 60.0))  # the control beats them all
    data = analyse(rows, meta={**META, "landscapes": _landscapes(SIX)})
    assert finding(data, "landscape").status == "not testable"


def test_the_report_draws_figure_6_and_tabulates_the_sharpness(tmp_path):
    coords = np.linspace(-1, 1, 5)
    grid = tmp_path / "grid.npz"
    np.savez(
        grid,
        coords=coords,
        values=np.add.outer(coords**2, coords**2) + 0.1,
        trajectory=np.array([[0.8, 0.5], [0.3, 0.1], [0.0, 0.0]]),
        plane=np.array("pca"),
        loss=np.array("clean"),
    )
    rows = _rows(["cifar10"])
    meta = {**META, "landscapes": _landscapes(["cifar10"], grid=str(grid))}
    paths = write_report(rows, tmp_path / "report", meta=meta)
    markdown = paths.markdown.read_text()
    assert "## Loss landscapes (Figure 6)" in markdown
    assert "figures/landscapes-cifar10.png" in markdown
    assert any(p.name == "landscapes-cifar10.png" for p in paths.figures)
    # STD's three seeds: mean 1.0, half-width t(0.975, 2) · 0.1 / √3 = 0.248.
    assert "| 100% | STD | STD | 1 ± 0.25 | 10 ± 2.5 | 3 |" in markdown
    assert "**Finding 12** (the table *Findings*)" in markdown


def test_demo_landscapes_compute_figure_6_at_the_rung_nearest_73_79_percent():
    from doublewin.experiments.run.demo import landscape_overrides

    experiment = load_experiment(CONFIGS / "demo.yaml", landscape_overrides())
    jobs = expand(experiment)
    landscapes = [j for j in jobs if j.stage == "landscape"]
    tickets = {j.id: j for j in jobs if j.stage == "tickets"}
    # STD, FAT and AT (not the control) × 100% and 10% × three seeds, AT transfer.
    assert len(landscapes) == 3 * 2 * 3
    assert {j.labels["pretraining"] for j in landscapes} == {"STD", "FAT", "AT"}
    # 20% a round: rung 6 is 1 − 0.8⁶ = 73.79%, the paper's Figure 6 sparsity.
    assert {round(j.labels["sparsity"], 4) for j in landscapes} == {0.7379}
    assert {(j.labels["regime"], j.spec.transfer.train.regime) for j in landscapes} == {
        ("at", "at")
    }
    for job in landscapes:
        (dep,) = job.deps
        assert tickets[dep].spec.method == "imp" and tickets[dep].spec.train.regime == "std"
        assert job.spec.transfer.ticket == f"{dep}@{1 - 0.8**6:.6f}"
    # Behind the flag: the default demo and the quick one compute none.
    assert not [j for j in expand(load_experiment(CONFIGS / "demo.yaml")) if j.stage == "landscape"]
    quick = load_experiment(CONFIGS / "demo-quick.yaml")
    assert not [j for j in expand(quick) if j.stage == "landscape"]


def test_a_bad_landscape_section_is_one_error_naming_the_key():
    from doublewin.core.errors import UserError

    raw = {"pretrain": {"runs": {"STD": {}}}, "tickets": {"methods": ["imp"]}}
    with pytest.raises(UserError, match=r"analysis\.landscape\.gird: unknown key"):
        load_experiment({**raw, "analysis": {"landscape": {"gird": 5}}})
    with pytest.raises(
        UserError, match=r"analysis\.landscape\.sparsity: 7 is out of range; allowed \[0, 1\)"
    ):
        load_experiment({**raw, "analysis": {"landscape": {"sparsity": 7}}})
    with pytest.raises(UserError, match=r"analysis\.landscape\.regimes\[0\]"):
        load_experiment({**raw, "analysis": {"landscape": {"regimes": ["fat"]}}})
