"""HYDRA, HARP and LWM through the pipeline: experiment files, the dry run's cost, the report's
table in the Adversarial Pruning Benchmark's terms."""

from __future__ import annotations

import pytest

from doublewin.analysis.report import build_report
from doublewin.core.errors import UserError
from doublewin.experiments.estimate.passes import job_passes
from doublewin.experiments.plan.experiment import load_experiment
from doublewin.experiments.run.folder import make_plan
from test_report import META, rows_for

EXPERIMENT = {
    "name": "robust-methods",
    "arch": "resnet8",
    "seeds": [0],
    "pretrain": {
        "data": {"name": "shapes"},
        "train": {"epochs": 1, "attack": {"eps": "16/255"}},
        "runs": {"AT": {"train": {"regime": "at"}}},
    },
    "tickets": {
        "methods": ["imp", "hydra", "harp", "lwm", "random"],
        "sparsities": [0.5904, 0.892626],
        "hydra": {"epochs": 3},
        "harp": {"epochs": 3, "loss": "trades"},
    },
    "transfer": {"datasets": ["digits"], "fractions": [1.0], "autoattack": 50},
}


def test_the_methods_draw_at_the_experiments_rungs_and_follow_its_epsilon():
    experiment = load_experiment(EXPERIMENT)
    specs = {spec.method: spec for _, spec in experiment.ticket_specs}
    assert set(specs) == {"imp", "hydra", "harp", "lwm", "random"}
    for method in ("hydra", "harp", "lwm"):
        assert specs[method].sparsities == (0.5904, 0.892626)
    assert specs["hydra"].hydra.epochs == 3 and specs["hydra"].hydra.loss == "trades"
    # The tickets stage's ε (the pre-training's here is not it): the default 8/255.
    assert specs["harp"].harp.attack.eps == pytest.approx(8 / 255)
    assert specs["harp"].harp.attack.bn_mode == "eval"
    # Another method's options stay at their defaults, so its hash is what it was.
    assert specs["imp"].hydra == type(specs["imp"].hydra)()
    plan = make_plan(EXPERIMENT, run_dir="/nonexistent/run")
    transfers = [j for j in plan.jobs if j.stage == "transfer"]
    assert all(j.spec.autoattack == 50 for j in transfers)
    assert {j.labels["method"] for j in transfers} >= {"hydra", "harp", "lwm"}


def test_the_dry_run_costs_one_search_per_rung_with_its_attack():
    plan = make_plan(EXPERIMENT, run_dir="/nonexistent/run")
    tickets = {j.spec.method: j for j in plan.jobs if j.stage == "tickets"}
    assert job_passes(tickets["lwm"]) == 0 and job_passes(tickets["random"]) == 0
    hydra = job_passes(tickets["hydra"])
    harp = job_passes(tickets["harp"])
    # Both TRADES with PGD-10 (11 passes a step) for 3 epochs, at 2 rungs.
    assert hydra == harp > 0
    one_rung = {**EXPERIMENT, "tickets": {**EXPERIMENT["tickets"], "sparsities": [0.5904]}}
    jobs = make_plan(one_rung, run_dir="/nonexistent/run").jobs
    single = {j.spec.method: j for j in jobs if j.stage == "tickets"}
    assert job_passes(single["hydra"]) * 2 == hydra


def test_autoattack_must_be_a_number_of_points():
    bad = {**EXPERIMENT, "transfer": {**EXPERIMENT["transfer"], "autoattack": "all"}}
    with pytest.raises(UserError, match="transfer.autoattack"):
        load_experiment(bad)


def test_the_report_gives_clean_and_autoattack_accuracy_per_method_and_rung():
    rows = rows_for("AT", "dense", 0.0) + rows_for("AT", "hydra", 0.892626, imp_regime="")
    rows += rows_for("AT", "imp", 0.892626)
    for i, row in enumerate(rows):
        row.update(aa=30.0 + i % 2, sa_aa_points=80.0, aa_points=50)
    document = build_report(rows, meta=META)
    section = next(s for s in document.sections if "AutoAttack" in s.title)
    table = section.blocks[-1]
    methods = [r[2] for r in table.rows]
    assert "HYDRA" in methods and "IMP (ST)" in methods and "dense" in methods
    hydra_at = next(r for r in table.rows if r[2] == "HYDRA" and r[4] == "AT")
    assert hydra_at[3] == "89.26%" and hydra_at[6].startswith("30.50") and hydra_at[8] == "50"


def test_without_autoattack_the_report_says_how_to_get_it():
    document = build_report(rows_for("AT", "dense", 0.0), meta=META)
    section = next(s for s in document.sections if "AutoAttack" in s.title)
    assert "transfer.autoattack" in section.blocks[0].text
