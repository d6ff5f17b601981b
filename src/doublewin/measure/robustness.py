"""A robustness report: SA and RA under PGD, optional AutoAttack on the first N points, and
three gradient-masking checks, each stated in words.

Checks (the conventions of Carlini et al. 2019 and RobustBench):
- ``autoattack-gap``: AutoAttack RA more than ``MAX_AA_GAP`` points below PGD RA on the same
  points — PGD is being fooled by the model's gradients.
- ``eps-ladder``: RA must fall as ε grows. Flagged when RA rises by more than ``LADDER_SLACK``
  points from one ε to the next larger one, or is not lower at the largest ε than at the
  smallest (when that is above zero).
- ``large-eps``: at a very large ε (64/255 under L∞) every image can be turned into another
  class; RA above zero there means the attack cannot find its way.
The ladder and the large-ε attack run on the first ``check_points`` test points (dataset
order), with the step scaled like ε (ladder) or the default step at the large ε (core/eps.py),
the same number of steps.
Accuracies are points 0–100; ε in [0,1] pixel units.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from doublewin.attacks import PGD, autoattack, model_mode
from doublewin.core.eps import default_step
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import AttackSpec

MAX_AA_GAP = 10.0
LADDER_SLACK = 1.0
LADDER = (0.5, 1.0, 2.0, 4.0)
LARGE_EPS = {"linf": 64 / 255, "l2": 16.0}


@dataclass(frozen=True)
class Check:
    """One gradient-masking check: ``flagged`` is True when it found a warning sign."""

    name: str
    flagged: bool
    detail: str


@dataclass(frozen=True)
class RobustnessReport:
    """SA/RA on ``n`` points, the ε ladder, the large-ε RA, AutoAttack next to PGD on the
    first ``autoattack_n`` points, and the checks. Points 0–100; ε in pixel units."""

    sa: float
    ra: float
    n: int
    attack: dict[str, Any]
    ladder: tuple[tuple[float, float], ...]
    large_eps: float
    large_eps_ra: float
    check_points: int
    autoattack_n: int = 0
    autoattack_ra: float | None = None
    pgd_ra_autoattack_points: float | None = None
    sa_autoattack_points: float | None = None
    checks: tuple[Check, ...] = ()
    # Per point, in order: right on the clean image, under PGD, under AutoAttack (its first
    # ``autoattack_n`` points); bool tensors, left out of `as_dict`.
    points: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def flagged(self) -> list[Check]:
        return [c for c in self.checks if c.flagged]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(dataclasses.replace(self, points={}))
        del out["points"]
        out["ladder"] = [{"eps": e, "ra": r} for e, r in self.ladder]
        out["gradient_masking_suspected"] = bool(self.flagged)
        return out


def autoattack_accuracy(
    model: nn.Module,
    loader: Iterable,
    *,
    points: int,
    attack: AttackSpec,
    num_classes: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> dict[str, float | int]:
    """Standard AutoAttack on the first ``points`` images of ``loader`` (in dataset order, the
    RobustBench convention) at ``attack``'s ε and norm: ``aa`` (robust accuracy, points),
    ``sa_aa_points`` (clean accuracy on the same images) and ``aa_points`` (how many)."""
    device = torch.device(device)
    xs, ys, kept = [], [], 0
    for x, y in loader:
        take = min(points - kept, x.shape[0])
        xs.append(x[:take].to(device))
        ys.append(y[:take].to(device))
        kept += take
        if kept >= points:
            break
    x_all, y_all = torch.cat(xs), torch.cat(ys)
    with model_mode(model, "eval"):
        x_adv = autoattack(
            model,
            x_all,
            y_all,
            eps=attack.eps,
            num_classes=num_classes,
            norm=attack.norm,
            seed=seed,
        )
        with torch.no_grad():
            robust = model(x_adv).argmax(1) == y_all
            clean = model(x_all).argmax(1) == y_all
    return {"aa": _points(robust), "sa_aa_points": _points(clean), "aa_points": int(y_all.numel())}


def robustness_report(
    model: nn.Module,
    loader: Iterable,
    *,
    attack: AttackSpec,
    num_classes: int,
    autoattack_n: int = 0,
    ladder: Sequence[float] = LADDER,
    large_eps: float | None = None,
    check_points: int = 1000,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> RobustnessReport:
    """Evaluate ``model`` on every batch of ``loader`` (in dataset order; pixels in [0,1]).

    ``attack`` is the PGD threat model (run in eval mode). ``autoattack_n`` > 0 runs standard
    AutoAttack on the first N points and reports PGD on the same points. ``ladder`` lists
    multiples of ``attack.eps``; ``large_eps`` defaults to 64/255 (L∞) or 16 (L2).
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    with model_mode(model, "eval"):
        clean_all, robust_all, x_keep, y_keep = _attacked(
            model, loader, attack, max(check_points, autoattack_n), device, progress
        )
        n = int(clean_all.numel())
        x_check, y_check = x_keep[:check_points], y_keep[:check_points]
        m = int(y_check.numel())
        big = LARGE_EPS[attack.norm] if large_eps is None else large_eps
        ladder_ra, large_ra = _eps_checks(model, attack, x_check, y_check, ladder, big, progress)

        aa_ra = pgd_aa = sa_aa = None
        points = {"clean": clean_all.cpu(), "robust": robust_all.cpu()}
        if autoattack_n > 0:
            k = int(min(autoattack_n, y_keep.numel()))
            progress.note(f"AutoAttack (standard) on {k} points: this takes a while")
            x_aa = autoattack(
                model,
                x_keep[:k],
                y_keep[:k],
                eps=attack.eps,
                num_classes=num_classes,
                norm=attack.norm,
                seed=seed,
            )
            with torch.no_grad():
                points["autoattack"] = (model(x_aa).argmax(1) == y_keep[:k]).cpu()
            aa_ra = _points(points["autoattack"])
            pgd_aa = _points(robust_all[:k])
            sa_aa = _points(clean_all[:k])
            autoattack_n = k

    checks = _checks(aa_ra, pgd_aa, ladder_ra, big, large_ra, attack)
    return RobustnessReport(
        sa=_points(clean_all),
        ra=_points(robust_all),
        n=n,
        attack={k: v for k, v in dataclasses.asdict(attack).items() if k != "bn_mode"},
        ladder=tuple(ladder_ra),
        large_eps=big,
        large_eps_ra=large_ra,
        check_points=m,
        autoattack_n=autoattack_n,
        autoattack_ra=aa_ra,
        pgd_ra_autoattack_points=pgd_aa,
        sa_autoattack_points=sa_aa,
        checks=checks,
        points=points,
    )


def _attacked(
    model: nn.Module,
    loader: Iterable,
    attack: AttackSpec,
    keep: int,
    device: torch.device,
    progress: Progress,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per example of ``loader``, whether it is right clean and under ``attack``; and the
    first ``keep`` examples (the checks run on them)."""
    pgd = PGD.from_spec(attack, bn_mode="eval")
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    clean_flags: list[torch.Tensor] = []
    robust_flags: list[torch.Tensor] = []
    kept = 0
    task = progress.task(f"PGD-{attack.steps} ε={attack.eps:.4g}", _length(loader))
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        clean, robust = _correct(model, pgd, x, y)
        clean_flags.append(clean)
        robust_flags.append(robust)
        if kept < keep:
            take = min(keep - kept, x.shape[0])
            xs.append(x[:take])
            ys.append(y[:take])
            kept += take
        task.advance(1)
    task.close()
    return torch.cat(clean_flags), torch.cat(robust_flags), torch.cat(xs), torch.cat(ys)


def _eps_checks(
    model: nn.Module,
    attack: AttackSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    ladder: Sequence[float],
    big: float,
    progress: Progress,
) -> tuple[list[tuple[float, float]], float]:
    """RA (points) on ``x`` at each multiple of ε in ``ladder`` (the step scaled alike), and at
    the large ε ``big`` with its default step."""
    ladder_ra = []
    # Multiples of ε = 0 are all 0: no ladder to read (and no false "flat" warning).
    factors = sorted(ladder) if attack.eps > 0 else []
    task = progress.task(f"ε ladder and large ε on {int(y.numel())} points", len(factors) + 1)
    for factor in factors:
        rung = replace(attack, eps=attack.eps * factor, step=attack.step * factor)
        _, robust = _correct(model, PGD.from_spec(rung, bn_mode="eval"), x, y)
        ladder_ra.append((attack.eps * factor, _points(robust)))
        task.advance(1)
    wide = replace(attack, eps=big, step=default_step(big, attack.steps))
    _, robust = _correct(model, PGD.from_spec(wide, bn_mode="eval"), x, y)
    task.advance(1)
    task.close()
    return ladder_ra, _points(robust)


def _checks(
    aa_ra: float | None,
    pgd_aa: float | None,
    ladder: list[tuple[float, float]],
    big: float,
    large_ra: float,
    attack: AttackSpec,
) -> tuple[Check, ...]:
    checks = []
    if aa_ra is not None and pgd_aa is not None:
        gap = pgd_aa - aa_ra
        checks.append(
            Check(
                "autoattack-gap",
                gap > MAX_AA_GAP,
                f"AutoAttack RA {aa_ra:.2f} is {gap:.2f} points below PGD RA {pgd_aa:.2f} on the "
                f"same points"
                + (
                    f" (over {MAX_AA_GAP:g}: PGD overestimates robustness)"
                    if gap > MAX_AA_GAP
                    else f" (within {MAX_AA_GAP:g})"
                ),
            )
        )
    rises = [(a, b) for a, b in zip(ladder, ladder[1:], strict=False) if b[1] > a[1] + LADDER_SLACK]
    flat = len(ladder) > 1 and ladder[0][1] > 0 and ladder[-1][1] >= ladder[0][1]
    unit = 255 if attack.norm == "linf" else 1
    rungs = ", ".join(f"ε={_eps(e, unit)}: {r:.1f}" for e, r in ladder)
    if not ladder:
        detail = "no ε ladder at ε = 0 (multiples of 0 are all 0)"
    elif rises or flat:
        detail = f"RA does not fall as ε grows ({rungs})"
    else:
        detail = f"RA falls as ε grows ({rungs})"
    checks.append(Check("eps-ladder", bool(rises or flat), detail))
    checks.append(
        Check(
            "large-eps",
            large_ra > 0,
            f"RA at ε={_eps(big, unit)} is {large_ra:.2f}"
            + (
                " (above zero: the attack is not finding adversarial examples)"
                if large_ra > 0
                else " (zero, as expected)"
            ),
        )
    )
    return tuple(checks)


def _correct(
    model: nn.Module, pgd: Any, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    x_adv = pgd(model, x, y)
    with torch.no_grad():
        robust = model(x_adv).argmax(1) == y
    return clean, robust


def _points(flags: torch.Tensor) -> float:
    return 100.0 * float(flags.float().mean()) if flags.numel() else float("nan")


def _eps(eps: float, unit: int) -> str:
    if unit == 255:
        return f"{eps * 255:g}/255"
    return f"{eps:g}"


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None
