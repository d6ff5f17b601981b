"""Experiment files expand into the full grid, dense baselines included, addressed by hash."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from doublewin.core.errors import UserError
from doublewin.experiments.plan.experiment import load_experiment
from doublewin.experiments.run.demo import config_dir, demo_config
from doublewin.experiments.run.folder import make_plan
from doublewin.tickets.ladder import ticket_ladder


def test_the_demo_grid_has_every_cell_and_a_dense_baseline_per_setting() -> None:
    plan = make_plan(demo_config(), run_dir="/nonexistent/run")
    experiment = plan.experiment
    counts = Counter(j.stage for j in plan.jobs)
    assert counts["pretrain"] == 4  # STD, FAT, AT and the no-pre-training control
    # IMP (ST inside) and random per trained pre-training; the control transfers densely.
    assert counts["tickets"] == 3 * 2
    # Seeds on demand: the candidate seeds are 0 … max − 1, every one a job of the plan.
    assert experiment.on_demand and experiment.seeds == tuple(range(experiment.verdict.seeds.max))
    settings = len(experiment.datasets) * len(experiment.fractions) * 2 * len(experiment.seeds)
    # The paper's prune rate of 20% a round over ten rounds (20% … 89.26%); IMP transfers its
    # first and last rungs, random its last, at every fraction.
    ladder = ticket_ladder(experiment.ticket_specs[0][1])
    assert len(ladder) == 10 and ladder[0] == pytest.approx(0.2) and ladder[-1] > 0.89
    assert experiment.transfer_rungs == {"imp": (1, 10), "random": (10,)}
    assert counts["transfer"] == 3 * settings * (2 + 1 + 1) + settings
    dense = [j for j in plan.jobs if j.stage == "transfer" and j.labels["method"] == "dense"]
    assert len(dense) == 4 * settings
    assert all(j.spec.ticket == "" for j in dense)


def test_the_vit_demo_plans_a_timm_vit_with_transformer_tickets_and_adamw() -> None:
    from doublewin.models import build_model
    from doublewin.tickets.mask import Mask

    plan = make_plan(demo_config(vit=True), run_dir="/nonexistent/run")
    experiment = plan.experiment
    assert experiment.arch.startswith("timm/vit_") and experiment.seeds == (0, 1, 2)
    counts = Counter(j.stage for j in plan.jobs)
    rungs = len(ticket_ladder(experiment.ticket_specs[0][1]))
    settings = len(experiment.datasets) * len(experiment.fractions) * 2 * len(experiment.seeds)
    assert counts["pretrain"] == 4 and counts["tickets"] == 3 * 2 and rungs == 2
    assert counts["transfer"] == 3 * settings * (2 * rungs + 1) + settings
    trained = [j for j in plan.jobs if j.stage in ("pretrain", "transfer") and j.spec.train.epochs]
    assert all(
        j.spec.train.optimizer == "adamw"
        for j in trained
        if j.labels.get("pretraining") != "CONTROL"
    )
    # BERT-Tickets' scope: the attention and MLP weights of the blocks, nothing else.
    scope = Mask.dense(build_model(experiment.arch, 10), experiment.ticket_specs[0][1].scope)
    assert scope and all(n.startswith("blocks.") for n in scope)
    assert {n.split(".")[-2] for n in scope} == {"qkv", "proj", "fc1", "fc2"}


def test_every_transfer_names_a_ticket_of_a_job_in_the_plan() -> None:
    plan = make_plan(demo_config(quick=True), run_dir="/nonexistent/run")
    ids = {j.id for j in plan.jobs}
    ladders = {j.id: ticket_ladder(j.spec) for j in plan.jobs if j.stage == "tickets"}
    for job in plan.jobs:
        assert all(dep in ids for dep in job.deps)
        if job.stage == "transfer" and job.spec.ticket:
            tickets_id, _, sparsity = job.spec.ticket.partition("@")
            assert tickets_id in ladders
            assert any(abs(float(sparsity) - s) < 1e-6 for s in ladders[tickets_id])


def test_one_shot_methods_are_drawn_at_the_imp_ladder() -> None:
    experiment = load_experiment(demo_config())
    ladders = {spec.method: ticket_ladder(spec) for _, spec in experiment.ticket_specs}
    assert ladders["random"] == ladders["imp"]


def test_overrides_change_the_grid_and_the_hashes() -> None:
    base = make_plan(demo_config(quick=True), run_dir="/x")
    more = make_plan(demo_config(quick=True), ["seeds=[0,1,2]"], run_dir="/x")
    assert len(more.jobs) > len(base.jobs)
    changed = make_plan(demo_config(quick=True), ["transfer.regimes.at.epochs=2"], run_dir="/x")
    at_ids = {j.id for j in base.jobs if j.stage == "transfer" and j.labels["regime"] == "at"}
    assert not at_ids & {j.id for j in changed.jobs}
    # Upstream stages are untouched by a transfer override: their work is reused.
    upstream = {j.id for j in base.jobs if j.stage != "transfer"}
    assert upstream <= {j.id for j in changed.jobs}


@pytest.mark.parametrize(
    "override, key",
    [
        ("transfer.regimes.at.epochs=0", "transfer.regimes.at.epochs"),
        ("tickets.prune_rate=1.5", "tickets.prune_rate"),
        ("transfer.fractions=[0]", "transfer.fractions[0]"),
        ("bogus=1", "bogus"),
    ],
)
def test_bad_values_are_errors_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(UserError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_experiment(demo_config(quick=True), [override])


def test_the_paper_configs_expand_without_data_or_weights_present() -> None:
    files = sorted((config_dir() / "paper").glob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        plan = make_plan(path, run_dir=Path("/nonexistent"))
        assert plan.counts()["tickets"]["total"] > 0
    cifar10 = make_plan(config_dir() / "paper" / "transfer-cifar10.yaml", run_dir="/x")
    spec = next(j.spec for j in cifar10.jobs if j.stage == "tickets")
    assert (spec.prune_rate, spec.rounds, spec.order, spec.train.lr) == (0.2, 19, "official", 5e-4)
    fractions = {j.labels["fraction"] for j in cifar10.jobs if j.stage == "transfer"}
    assert fractions == {1.0, 0.1, 0.01}


def test_the_wide_demo_searches_every_rung_of_a_7_rung_resnet8x2_ladder_with_anchors() -> None:
    plan = make_plan(config_dir() / "demo-wide.yaml", run_dir=Path("/nonexistent"))
    pretrains = [j.spec for j in plan.jobs if j.stage == "pretrain"]
    assert {s.arch for s in pretrains} == {"resnet8x2"}
    rungs = {
        round(j.labels["sparsity"], 4)
        for j in plan.jobs
        if j.stage == "transfer" and j.labels.get("method") == "imp"
    }
    assert rungs == {round(1 - 0.8**k, 4) for k in range(1, 8)}
    assert plan.search(None) == "extreme"


def test_the_brackets_demo_searches_a_3_rung_resnet8_ladder_with_up_to_30_seeds() -> None:
    plan = make_plan(config_dir() / "demo-brackets.yaml", run_dir=Path("/nonexistent"))
    assert {j.spec.arch for j in plan.jobs if j.stage == "pretrain"} == {"resnet8"}
    rungs = {
        round(j.labels["sparsity"], 4)
        for j in plan.jobs
        if j.stage == "transfer" and j.labels.get("method") == "imp"
    }
    assert rungs == {round(1 - 0.512**k, 4) for k in range(1, 4)}  # 0.8^3 kept a round
    assert plan.search(None) == "extreme"
    assert plan.experiment.verdict.seeds.looks == (6, 12, 18, 24, 30)


def test_dry_run_prints_counts_and_a_cost_and_writes_nothing(tmp_path: Path, capsys) -> None:
    import json

    from doublewin.cli import main

    out = tmp_path / "run"
    main(
        [
            "run",
            str(demo_config(quick=True)),
            "--dry-run",
            "--json",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    plan = json.loads(capsys.readouterr().out)
    assert plan["stages"]["transfer"]["to_run"] == plan["stages"]["transfer"]["total"] > 0
    assert plan["total_passes"] > 0 and plan["wall_hours"] > 0
    # The wall time on the workers the run would use is at most the work, at least its share.
    assert (
        plan["worker_hours"] / plan["workers"] <= plan["wall_hours"] <= plan["worker_hours"] + 0.01
    )
    assert plan["workers"] >= 1 and plan["threads_per_job"] >= 1
    assert not out.exists()


def test_the_paper_cost_counts_every_imp_epoch_on_imagenet() -> None:
    from doublewin.experiments.estimate.cost import job_passes

    plan = make_plan(config_dir() / "paper" / "imp-imagenet-std.yaml", run_dir="/x")
    passes = sum(job_passes(job) for job in plan.jobs)
    train_images = 1_271_167
    # 3 pre-trainings × 19 rounds × 30 epochs of ST on ImageNet, plus validation.
    assert passes >= 3 * 19 * 30 * train_images


def test_a_transfer_rung_beyond_the_ladder_is_refused_with_the_valid_range(tmp_path) -> None:
    with pytest.raises(UserError, match=r"rung 9 is not on the 8-rung ladder; use numbers from 1"):
        make_plan(demo_config(quick=True), ["tickets.transfer_rungs=[1,9]"], run_dir=tmp_path)
    plan = make_plan(demo_config(quick=True), ["tickets.transfer_rungs=[1,8]"], run_dir=tmp_path)
    assert {j.labels["sparsity"] for j in plan.jobs if j.stage == "transfer"} == {
        0.0,
        0.4,
        round(1 - 0.6**8, 6),
    }


def test_the_control_is_an_untrained_pretraining_named_only_by_what_builds_it() -> None:
    experiment = load_experiment(demo_config())
    (control,) = [p for p in experiment.pretrainings if p.kind == "control"]
    assert control.spec.kind == "control" and not control.tickets
    # The training fields of the pretrain section do not enter its identity.
    assert control.spec.train == type(control.spec.train)()
    tweaked = load_experiment(demo_config(), ["pretrain.train.epochs=9"])
    (again,) = [p for p in tweaked.pretrainings if p.kind == "control"]
    assert again.ref == control.ref
    assert all(label != control.label for label, _ in experiment.ticket_specs)


def test_a_control_can_ask_for_tickets() -> None:
    experiment = load_experiment(demo_config(quick=True), ["pretrain.runs.CONTROL.tickets=true"])
    labels = {label for label, _ in experiment.ticket_specs}
    assert "CONTROL" in labels
    with pytest.raises(
        UserError, match=r"pretrain.runs.CONTROL.tickets: expected true, false or \{files"
    ):
        load_experiment(demo_config(quick=True), ["pretrain.runs.CONTROL.tickets=maybe"])


def test_random_tickets_can_go_to_chosen_rungs_and_fractions_only() -> None:
    from doublewin.experiments.plan.grid import expand

    raw = {
        "pretrain": {"data": {"name": "chars"}, "runs": {"STD": {"train": {"regime": "std"}}}},
        "tickets": {"methods": ["imp", "random"], "prune_rate": 0.5, "rounds": 3,
                    "transfer_rungs": {"random": [3]}, "transfer_fractions": {"random": [1.0]}},
        "transfer": {"datasets": ["strokes"], "fractions": [1.0, 0.1], "regimes": {"st": {"epochs": 1}}},
    }  # fmt: skip
    placed = {
        (j.labels["method"], j.labels["sparsity"], j.labels["fraction"])
        for j in expand(load_experiment(raw))
        if j.stage == "transfer"
    }
    imp = {("imp", s, f) for s in (0.5, 0.75, 0.875) for f in (1.0, 0.1)}
    dense = {("dense", 0.0, f) for f in (1.0, 0.1)}
    assert placed == imp | dense | {("random", 0.875, 1.0)}
    for bad, names in (
        ({"transfer_fractions": {"random": [0.5]}}, ("tickets.transfer_fractions.random", "0.5")),
        ({"transfer_rungs": {"snip": [1]}}, ("tickets.transfer_rungs.snip", "tickets.methods")),
    ):
        with pytest.raises(UserError) as error:
            load_experiment({**raw, "tickets": {**raw["tickets"], **bad}})
        assert all(n in str(error.value) for n in names)


def test_an_experiment_can_ask_for_the_extreme_search_with_anchor_rungs() -> None:
    base = {
        "pretrain": {"runs": {"STD": {"train": {"regime": "std"}}}},
        "tickets": {"methods": ["imp", "random"], "rounds": 4},
    }
    plain = load_experiment(base)
    assert plain.search is None and plain.anchor_rungs == {}
    chosen = load_experiment(
        {**base, "search": "extreme", "tickets": {**base["tickets"], "anchor_rungs": {"imp": [4]}}}
    )
    assert chosen.search == "extreme" and chosen.anchor_rungs == {"imp": (4,)}
    plan = make_plan({**base, "search": "extreme"}, run_dir="/nonexistent/run")
    assert plan.search() == "extreme" and plan.search("extreme") == "extreme"
    # The plan's full ladders go to the report, every rung, transferred or not.
    narrow = {**base, "tickets": {**base["tickets"], "transfer_rungs": {"imp": [1, 4]}}}
    from doublewin.experiments.plan.grid import expand, plan_ladders

    ladders = {
        (x["method"], x["pretraining"]): x["sparsities"]
        for x in plan_ladders(expand(load_experiment(narrow)))
    }
    assert len(ladders[("imp", "STD")]) == 4 and len(ladders[("random", "STD")]) == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"search": "bisect"}, "search: 'bisect' is not a search; write search: extreme"),
        (
            {"tickets": {"rounds": 4, "transfer_rungs": [1, 2], "anchor_rungs": {"imp": [4]}}},
            "tickets.anchor_rungs.imp: rung 4 is not transferred",
        ),
        ({"tickets": {"anchor_rungs": [1]}}, "tickets.anchor_rungs: map a method to its rungs"),
        (
            {"tickets": {"anchor_rungs": {"omp": [1]}}},
            "tickets.anchor_rungs.omp: not one of tickets.methods",
        ),
    ],
)
def test_a_wrong_search_or_anchor_is_one_line_naming_the_key(changes, message) -> None:
    raw = {"pretrain": {"runs": {"STD": {"train": {"regime": "std"}}}}, **changes}
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_experiment(raw)
