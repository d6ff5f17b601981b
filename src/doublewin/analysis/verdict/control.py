"""Does pre-training help here? Every pre-training's dense transfer against the
no-pre-training control's, and the settings where the paper's claims about pre-training can
be tested at all.

The rule (docs/report.md): a pre-training **helps** in a setting (dataset, fraction) when its
dense transfer beats the control's on the accuracy each transfer regime is for — SA under
standard transfer (ST) and RA under adversarial transfer (AT) — both differences of means over
seeds having a 95% Welch t-interval above zero (the two are independent runs: a seed fixes the
head initialization and data order, not anything the pre-training and the control share). It **hurts** when either interval lies below
zero, and is **inconclusive** otherwise (one seed gives no interval). A setting is
*testable* when some pre-training helps there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from doublewin.analysis.verdict import VerdictConfig, metric_value
from doublewin.analysis.verdict.stats import Interval, welch_difference
from doublewin.core.results import METRICS, REGIMES, is_dense, regime_of, setting_of

Outcome = Literal["helps", "hurts", "inconclusive"]
# The accuracy each transfer regime is for: what "helps" is judged on.
ENDPOINTS = (("st", "sa"), ("at", "ra"))


@dataclass(frozen=True)
class Gain:
    """One pre-training against the control in one setting: every regime × metric difference
    of means (pre-trained − control, points, Welch interval) and the outcome of the rule."""

    pretraining: str
    dataset: str
    fraction: float
    differences: Mapping[tuple[str, str], Interval | None]  # (regime, metric) → interval
    outcome: Outcome


@dataclass(frozen=True)
class ControlComparison:
    """``control``: the control's label (None: the run has none). ``testable``: the
    (dataset, fraction) settings where some pre-training helps."""

    control: str | None
    gains: tuple[Gain, ...]
    testable: frozenset[tuple[str, float]]
    settings: tuple[tuple[str, float], ...]  # every (dataset, fraction) with dense rows

    def reason_untestable(self, dataset: str, fraction: float) -> str:
        """Why the paper's claims about pre-training cannot be tested at this setting ("" when
        they can)."""
        if self.control is None:
            return (
                "the run has no no-pre-training control, so whether pre-training helps "
                "cannot be judged (add `CONTROL: {kind: control}` to pretrain.runs)"
            )
        if (dataset, fraction) in self.testable:
            return ""
        return "no pre-training's dense transfer beats the no-pre-training control here"


def dense_values(
    rows: Iterable[Mapping[str, Any]], config: VerdictConfig
) -> dict[tuple[str, str, float, str, str], dict[int, float]]:
    """(pre-training, dataset, fraction, regime, metric) → seed → test accuracy (points) of
    the dense rows, read at the checkpoints ``config.selection`` names."""
    out: dict[tuple[str, str, float, str, str], dict[int, float]] = defaultdict(dict)
    for row in rows:
        if not is_dense(row):
            continue
        for metric in METRICS:
            value = metric_value(row, metric, config.selection)
            if value is not None:
                out[(*setting_of(row), regime_of(row), metric)][int(row["seed"])] = value
    return out


def compare_with_control(
    rows: Sequence[Mapping[str, Any]],
    kinds: Mapping[str, str | None],
    pretrainings: Sequence[str],
    config: VerdictConfig,
) -> ControlComparison:
    """Every pre-training's dense transfer against the control's (the first pre-training of
    kind ``control``), per dataset and fraction."""
    values = dense_values(rows, config)
    settings = tuple(sorted({(d, f) for _, d, f, _, _ in values}, key=lambda s: (s[0], -s[1])))
    controls = [p for p in pretrainings if kinds.get(p) == "control"]
    if not controls:
        return ControlComparison(None, (), frozenset(), settings)
    control = controls[0]
    gains = []
    for label in pretrainings:
        if kinds.get(label) == "control":
            continue
        for dataset, fraction in settings:
            differences = {
                (regime, metric): welch_difference(
                    list(values.get((label, dataset, fraction, regime, metric), {}).values()),
                    list(values.get((control, dataset, fraction, regime, metric), {}).values()),
                )
                for regime in REGIMES
                for metric in METRICS
            }
            if all(d is None for d in differences.values()):
                continue
            gains.append(Gain(label, dataset, fraction, differences, _outcome(differences)))
    testable = frozenset((g.dataset, g.fraction) for g in gains if g.outcome == "helps")
    return ControlComparison(control, tuple(gains), testable, settings)


def _outcome(differences: Mapping[tuple[str, str], Interval | None]) -> Outcome:
    endpoints = [differences.get(e) for e in ENDPOINTS]
    if any(d is not None and d.below_zero for d in endpoints):
        return "hurts"
    if all(d is not None and d.above_zero for d in endpoints):
        return "helps"
    return "inconclusive"
