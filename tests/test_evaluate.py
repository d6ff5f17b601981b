"""Evaluation: SA/RA numbers, the robustness report and its gradient-masking checks."""

from __future__ import annotations

import torch
from torch import nn

from doublewin.core.specs import AttackSpec
from doublewin.measure import robustness_report
from doublewin.measure.robustness import _checks
from doublewin.train import evaluate

ATTACK = AttackSpec(eps=8 / 255, step=2 / 255, steps=5, bn_mode="eval")


class Batches:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 32):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.y), self.batch_size):
            yield self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]


def colour_task(n: int = 96):
    """Images whose class is their dominant colour channel (3 classes)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = 0.3 * torch.rand(n, 3, 8, 8, generator=g)
    x[torch.arange(n), y] += 0.2
    return x, y


class ColourNet(nn.Module):
    """Reads the mean of each channel: accurate, smooth, and easy to attack at large ε."""

    def __init__(self, quantize: bool = False):
        super().__init__()
        self.quantize = quantize
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        if self.quantize:
            # Rounding has zero gradient almost everywhere: the textbook gradient mask.
            x = torch.round(x * 2) / 2
        return 20 * (x.mean(dim=(2, 3)) - 0.5)


def test_evaluate_reports_points_and_restores_train_mode():
    x, y = colour_task()
    model = ColourNet().train()
    out = evaluate(model, Batches(x, y), attack=ATTACK)
    assert out["n"] == 96 and out["sa"] == 100.0 and 0.0 <= out["ra"] <= 100.0
    assert model.training


def test_evaluate_without_attack_gives_no_ra_and_respects_max_batches():
    x, y = colour_task()
    out = evaluate(ColourNet(), Batches(x, y), max_batches=2)
    assert out == {"sa": 100.0, "ra": None, "n": 64}


def test_a_smooth_model_passes_the_ladder_and_large_eps_checks():
    x, y = colour_task()
    report = robustness_report(ColourNet(), Batches(x, y), attack=ATTACK, num_classes=3)
    flags = {c.name: c.flagged for c in report.checks}
    assert flags == {"eps-ladder": False, "large-eps": False}
    ras = [ra for _, ra in report.ladder]
    assert ras == sorted(ras, reverse=True) and report.large_eps_ra == 0.0


def test_a_gradient_masking_model_is_flagged_at_large_eps():
    x, y = colour_task()
    report = robustness_report(
        ColourNet(quantize=True), Batches(x, y), attack=ATTACK, num_classes=3
    )
    assert report.large_eps_ra > 0
    assert {c.name for c in report.flagged} >= {"large-eps"}
    assert report.as_dict()["gradient_masking_suspected"] is True


def test_autoattack_gap_over_ten_points_is_flagged_and_under_is_not():
    ladder = [(4 / 255, 50.0), (8 / 255, 40.0)]
    gap = {c.name: c.flagged for c in _checks(20.0, 35.0, ladder, 64 / 255, 0.0, ATTACK)}
    assert gap["autoattack-gap"] is True
    ok = {c.name: c.flagged for c in _checks(33.0, 35.0, ladder, 64 / 255, 0.0, ATTACK)}
    assert ok["autoattack-gap"] is False


def test_ra_rising_with_eps_is_flagged():
    rising = [(4 / 255, 30.0), (8 / 255, 35.0), (16 / 255, 20.0)]
    checks = {c.name: c for c in _checks(None, None, rising, 64 / 255, 0.0, ATTACK)}
    assert checks["eps-ladder"].flagged and "does not fall" in checks["eps-ladder"].detail


def test_evaluation_in_channels_last_agrees_with_the_contiguous_layout_and_restores_it():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )
    x, y = colour_task(192)
    attack = AttackSpec(eps=8 / 255, step=2 / 255, steps=5, bn_mode="eval")
    outs = []
    for channels_last in (False, True):
        torch.manual_seed(1)
        outs.append(evaluate(model, Batches(x, y), attack=attack, channels_last=channels_last))
        assert model[0].weight.is_contiguous()
    assert outs[0]["sa"] == outs[1]["sa"]
    assert abs(outs[0]["ra"] - outs[1]["ra"]) <= 100 / 192  # one example: float rounding
