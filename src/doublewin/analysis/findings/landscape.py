"""Finding 11 (the paper's Finding 4, Figure 6): robust pre-training gives tickets flatter loss
landscapes under AT, at every data fraction.

Judged on the landscape stage's sharpness (the mean loss increase within a radius on a
filter-normalized random plane; measure/sharpness.py), with the statistics of every other
finding: per dataset × fraction × robust pre-training, the difference of its mean sharpness
from the STD pre-training's with a 95% Welch t-interval; flatter (a win) when the interval lies
below zero, sharper (a loss) when above, neither otherwise; then the sign test of `decide`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from doublewin.analysis.findings.finding import Claim, Finding, FindingsInput
from doublewin.analysis.summaries import fraction_text
from doublewin.analysis.verdict.stats import welch_difference

ROBUST_KINDS = ("fat", "at")
CLAIM = "Robust pre-training gives tickets flatter loss landscapes under AT with 100/10/1% data."
PAPER = "Finding 4 (Figure 6: loss contours and trajectories of IMP (ST) tickets at 73.79%)."
RULE = (
    "Per dataset, fraction and robust (FAT or AT) pre-training, with its IMP (ST) ticket "
    "AT-transferred: its sharpness (mean loss increase within the radius on a "
    "filter-normalized random plane) minus the STD pre-training's, with a 95% Welch "
    "t-interval over seeds: flatter (a win) when the interval lies below zero, sharper (a "
    "loss) when above, neither otherwise; the sign test decides."
)


def sharpness_by_group(
    landscapes: Sequence[Mapping[str, Any]], regime: str = "at"
) -> dict[tuple[str, str, float], list[float]]:
    """(pretraining, dataset, fraction) → the sharpness of each seed's landscape."""
    out: dict[tuple[str, str, float], list[float]] = {}
    for item in landscapes:
        value = item.get("sharpness")
        if item.get("regime", regime) != regime or value is None or math.isnan(float(value)):
            continue
        key = (str(item["pretraining"]), str(item["dataset"]), float(item["fraction"]))
        out.setdefault(key, []).append(float(value))
    return out


def landscape(data: FindingsInput) -> Finding:
    head = Claim("landscape", CLAIM, PAPER, RULE)
    groups = sharpness_by_group(data.landscapes)
    if not groups:
        return head.cannot_tell(
            "the run computed no loss landscape; add analysis.landscape to the "
            "experiment (docs/landscape.md)."
        )
    evidence, untested = [], []
    wins = losses = tested = 0
    settings = sorted({(d, f) for _, d, f in groups}, key=lambda s: (s[0], -s[1]))
    for dataset, fraction in settings:
        labels = {p for p, d, f in groups if (d, f) == (dataset, fraction)}
        std = [p for p in labels if data.kinds.get(p) == "std"]
        robust = [p for p in labels if data.kinds.get(p) in ROBUST_KINDS]
        if not std or not robust:
            continue
        reason = data.untestable(dataset, fraction)
        if reason:
            untested.append(reason)
            evidence.append(f"{dataset} at {fraction_text(fraction)} data: not testable ({reason})")
            continue
        tested += 1
        baseline = groups[(std[0], dataset, fraction)]
        for label in sorted(robust):
            difference = welch_difference(groups[(label, dataset, fraction)], baseline)
            if difference is None:
                continue
            outcome = "neither"
            if difference.below_zero:
                outcome, wins = "for", wins + 1
            elif difference.above_zero:
                outcome, losses = "against", losses + 1
            evidence.append(
                f"{label} vs {std[0]} → {dataset} at {fraction_text(fraction)} data: "
                f"sharpness difference {difference.text(4)} — {outcome}"
            )
    note = "" if evidence else "no setting has landscapes of both an STD and a robust pre-training."
    return head.judged(wins, losses, evidence, note, untested=untested, tested=tested)
