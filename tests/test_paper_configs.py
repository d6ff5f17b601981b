"""The paper configs follow the official code where it was once misread (docs/paper.md): the
SVHN AT schedule, the normalization constants, the CIFAR AT checkpoint window, fp32, the
official subset count, and the landscape of Figure 6 in the CIFAR-10 config."""

from __future__ import annotations

from pathlib import Path

import pytest

from doublewin.data import dataset_info
from doublewin.data.imageset import ImageSet
from doublewin.data.splits import take_fraction
from doublewin.experiments.plan.experiment import load_experiment
from doublewin.experiments.plan.grid import expand

PAPER = Path(__file__).resolve().parents[1] / "src" / "doublewin" / "configs" / "paper"


def _transfer(dataset: str):
    return load_experiment(PAPER / f"transfer-{dataset}.yaml")


def test_svhn_at_is_cosine_over_80_epochs_with_no_window():
    at = _transfer("svhn").regimes["at"]
    assert (at.schedule, at.epochs, at.lr, at.milestones) == ("cosine", 80, 0.01, ())
    assert at.select_from_epoch == 1


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_at_chooses_checkpoints_from_0_based_epoch_45(dataset):
    at = _transfer(dataset).regimes["at"]
    assert (at.schedule, at.milestones, at.epochs, at.select_from_epoch) == (
        "multistep",
        (50, 75),
        100,
        46,
    )


def test_the_normalization_constants_are_the_official_ones():
    # main_adv_eval.py / dataset.py of the official code.
    assert dataset_info("cifar10").mean == (0.4914, 0.4822, 0.4465)
    assert dataset_info("cifar10").std == (0.2470, 0.2435, 0.2616)
    assert dataset_info("cifar100").mean == (0.5071, 0.4867, 0.4408)
    assert dataset_info("cifar100").std == (0.2675, 0.2565, 0.2761)
    assert dataset_info("svhn").mean == (0.4377, 0.4438, 0.4728)
    assert dataset_info("svhn").std == (0.1201, 0.1231, 0.1052)


@pytest.mark.parametrize("name", sorted(p.name for p in PAPER.glob("*.yaml")))
def test_every_paper_training_runs_in_fp32(name):
    experiment = load_experiment(PAPER / name)
    trainings = [spec.train for _, spec in experiment.ticket_specs]
    trainings += list(experiment.regimes.values()) if name.startswith("transfer") else []
    assert trainings and all(t.precision == "fp32" for t in trainings)


def test_the_first_fraction_keeps_the_official_int_count():
    import torch

    # int(68257 * 0.1) = 6825 and int(68257 * 0.01) = 682 in the official dataset.py.
    images = ImageSet(
        torch.zeros(68257, dtype=torch.int64),
        10,
        images=torch.zeros(68257, 3, 1, 1, dtype=torch.uint8),
    )
    assert len(take_fraction(images, 0.1, mode="first")) == 6825
    assert len(take_fraction(images, 0.01, mode="first")) == 682


def test_the_cifar10_config_computes_figure_6_at_73_79_percent():
    experiment = _transfer("cifar10")
    jobs = [j for j in expand(experiment) if j.stage == "landscape"]
    # IMP (ST) tickets of the three pre-trainings × 3 fractions × 3 seeds, AT-transferred.
    assert len(jobs) == 3 * 3 * 3
    assert {round(j.labels["sparsity"], 4) for j in jobs} == {0.7379}
    assert {j.labels["regime"] for j in jobs} == {"at"}
    assert {j.labels["imp_regime"] for j in jobs} == {"std"}
    assert {j.labels["fraction"] for j in jobs} == {1.0, 0.1, 0.01}
    assert all(j.spec.transfer.train.select_from_epoch == 46 for j in jobs)


def test_the_robust_pruning_configs_hold_the_authors_prune_stages():
    hydra = load_experiment(PAPER / "hydra-cifar10.yaml")
    specs = {spec.method: spec for _, spec in hydra.ticket_specs}
    search = specs["hydra"].hydra
    assert (search.epochs, search.lr, search.weight_decay, search.loss, search.robust_beta) == (
        20,
        0.1,
        1e-4,
        "trades",
        6.0,
    )
    assert (search.attack.steps, search.attack.bn_mode) == (10, "eval")
    assert specs["hydra"].scope.include_linear and specs["hydra"].sparsities == (0.9, 0.95, 0.99)
    assert set(specs) == {"hydra", "lwm"} and all(
        t.autoattack == 10000 for t in hydra.transfers.values()
    )
    harp = load_experiment(PAPER / "harp-cifar10.yaml").ticket_specs[0][1]
    assert (harp.harp.gamma, harp.harp.rate_floor, harp.harp.loss, harp.harp.weight_decay) == (
        0.01,
        0.1,
        "at",
        5e-4,
    )
    channel = load_experiment(PAPER / "harp-channel-cifar10.yaml").ticket_specs[0][1]
    assert (channel.pattern, channel.channel_unit) == ("channel", "flops")
