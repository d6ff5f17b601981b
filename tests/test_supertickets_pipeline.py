"""SuperTickets in the pipeline: the experiment grid (each rung transfers its own network,
search-then-prune waits for the SuperTickets whose MACs it matches), the runner's references,
the dry run's cost, and the report's section on accuracy against MACs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doublewin.analysis.report import analyse, build_report
from doublewin.core.errors import UserError
from doublewin.experiments.estimate.passes import job_passes, split_sizes
from doublewin.experiments.plan.experiment import load_experiment
from doublewin.experiments.plan.grid import NETWORK_PREFIX, expand
from doublewin.experiments.run.demo import config_dir
from doublewin.experiments.run.job import RunContext, weights_file

CONFIG = config_dir() / "demo-supertickets.yaml"


def test_each_superticket_transfers_its_network_and_search_then_prune_waits_for_them():
    jobs = expand(load_experiment(CONFIG))
    tickets = {
        (j.labels["pretraining"], j.labels["method"]): j for j in jobs if j.stage == "tickets"
    }
    for label in ("STD", "FAT", "AT"):
        st, stp = tickets[(label, "supertickets")], tickets[(label, "search-then-prune")]
        assert stp.spec.macs_of == st.id and st.id in stp.deps
        assert st.labels["imp_regime"] == stp.labels["imp_regime"] == "std"
    assert ("CONTROL", "supertickets") not in tickets
    transfers = [j for j in jobs if j.stage == "transfer"]
    for job in transfers:
        method, ticket = job.labels["method"], job.spec.ticket
        if method in ("supertickets", "search-then-prune"):
            assert job.spec.weights == NETWORK_PREFIX + ticket
        else:
            assert job.spec.weights.startswith("pretrain-")
    counts = {
        m: sum(j.labels["method"] == m for j in transfers)
        for m in ("dense", "imp", "supertickets", "search-then-prune")
    }
    # dense: 4 pre-trainings; tickets: 3 pre-trainings × 2 rungs; each × 2 regimes × 3 seeds.
    assert counts == {"dense": 24, "imp": 36, "supertickets": 36, "search-then-prune": 36}


def test_search_then_prune_without_supertickets_is_one_line():
    experiment = load_experiment(CONFIG, ["tickets.methods=[imp, search-then-prune]"])
    with pytest.raises(UserError, match="list supertickets before it"):
        expand(experiment)


def test_a_network_reference_resolves_to_the_file_beside_the_ticket(tmp_path):
    entry = tmp_path / "tickets-abc"
    entry.mkdir()
    (entry / "network-0.500000.safetensors").write_bytes(b"x")
    metrics = {
        "tickets": {"0.500000": "ticket-0.500000.safetensors"},
        "networks": {"0.500000": "network-0.500000.safetensors"},
    }
    (entry / "metrics.json").write_text(json.dumps(metrics))
    found = weights_file(NETWORK_PREFIX + "tickets-abc@0.500000", RunContext(tmp_path))
    assert found == entry / "network-0.500000.safetensors"


def test_the_dry_run_counts_a_search_per_rung_and_search_then_prunes_imp():
    jobs = expand(load_experiment(CONFIG))
    st = next(j for j in jobs if j.stage == "tickets" and j.labels["method"] == "supertickets")
    stp = next(
        j for j in jobs if j.stage == "tickets" and j.labels["method"] == "search-then-prune"
    )
    n_train, n_val, _ = split_sizes("chars", 0.1, 500)
    epochs = st.spec.supertickets.epochs
    assert job_passes(st) == pytest.approx(2 * epochs * n_train + 2 * n_val * 0.35)
    # One search, then IMP: 3 rounds to 48.8% and 6 to 73.8%, one epoch each.
    assert job_passes(stp) == pytest.approx((epochs + 9) * n_train + 2 * n_val * 0.35)


def _rows(method: str, sparsity: float, macs: float, kept: float, shift: float) -> list[dict]:
    rows = []
    for regime in ("st", "at"):
        for seed in (0, 1, 2):
            value = 80.0 + shift + 0.1 * seed
            rows.append(
                {
                    "pretraining": "AT",
                    "dataset": "strokes",
                    "fraction": 1.0,
                    "method": method,
                    "imp_regime": "" if method == "dense" else "std",
                    "sparsity": sparsity,
                    "regime": regime,
                    "seed": seed,
                    "sa_best_sa": value,
                    "ra_best_sa": value - 30,
                    "sa_best_ra": value,
                    "ra_best_ra": value - 30,
                    "macs": macs,
                    "kept_macs": kept,
                }
            )
    return rows


def test_the_report_puts_accuracy_against_macs_and_two_in_one_against_search_then_prune():
    rows = _rows("dense", 0.0, 1e6, 1e6, 0.0)
    rows += _rows("imp", 0.5, 1e6, 5e5, -1.0)
    rows += _rows("supertickets", 0.5, 4e5, 2e5, 0.5)
    rows += _rows("search-then-prune", 0.5, 3.9e5, 1.9e5, -2.0)
    document = build_report(rows)
    section = next(s for s in document.sections if s.title.startswith("SuperTickets"))
    text = json.dumps([getattr(b, "rows", None) or getattr(b, "text", "") for b in section.blocks])
    assert "0.400" in text and "0.200" in text  # MACs and kept MACs, in millions
    assert "+2.50 [+2.50, +2.50]" in text  # two-in-one 2.5 points ahead on every accuracy
    assert "4 are above zero (two-in-one better), 0 below" in text
    assert any(b.name.startswith("macs-strokes") for b in document.figures)
    # Without SuperTickets the section is left out.
    plain = build_report(_rows("dense", 0.0, 1e6, 1e6, 0.0) + _rows("imp", 0.5, 1e6, 5e5, -1.0))
    assert not any(s.title.startswith("SuperTickets") for s in plain.sections)
    assert analyse(rows).ladders  # the SuperTickets ladders sit beside IMP's


def test_the_paper_configs_expand_with_the_authors_fields():
    path = Path(config_dir()) / "paper" / "supertickets-imagenet.yaml"
    jobs = expand(load_experiment(path))
    spec = next(
        j.spec for j in jobs if j.stage == "tickets" and j.labels["method"] == "supertickets"
    )
    st = spec.supertickets
    assert (st.epochs, st.rho, st.rho_warmup_epochs, st.shrink_threshold) == (350, 1.8e-4, 25, 1e-3)
    assert (st.prune_interval, st.prune_step, st.reuse_mask, st.regrowth) == (25, 0.1, False, True)
    assert (spec.train.optimizer, spec.train.schedule, spec.train.gamma) == (
        "rmsprop",
        "exponential",
        0.97,
    )
    assert spec.train.label_smoothing == 0.1 and spec.sparsities == (0.9, 0.95, 0.98)
    labels = {j.labels["pretraining"] for j in jobs if j.stage == "tickets"}
    assert labels == {"CONTROL", "STD", "FAT", "AT"}  # the authors' setting is the control's


def test_doublewin_models_lists_the_supernets(capsys):
    from doublewin.cli import main

    main(["models", "--json"])
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["doublewin"]}
    for name, size in (("supernet8", 8), ("supernet_cifar", 32), ("supernet_imagenet", 224)):
        assert listed[name]["family"] == "supernet" and listed[name]["input_size"] == size
    assert listed["supernet8"]["num_params"] == 49066


def test_the_extreme_search_and_the_report_see_every_supertickets_ladder():
    from doublewin.experiments.plan.grid import plan_ladders

    ladders = plan_ladders(expand(load_experiment(CONFIG)))
    for method in ("imp", "supertickets", "search-then-prune"):
        assert {
            "pretraining": "AT",
            "method": method,
            "imp_regime": "std",
            "sparsities": [0.488, 0.737856],
        } in ladders
