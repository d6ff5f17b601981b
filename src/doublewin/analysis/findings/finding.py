"""One finding of the paper and what a run says about it: the shared vocabulary of the rules
(findings_sparsity.py, findings_accuracy.py) and their helpers.

Every finding breaks into comparisons (one per dataset, setting or sparsity), each of which
comes out for the paper (a *win*), against it (a *loss*), or neither (a tie, or data too thin
to compare). ``decide`` turns the counts into the finding's status by a two-sided exact sign
test at ``ALPHA``; the existence findings use ``decide_every`` instead (every dataset must
have a certified double-win ticket).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from doublewin.analysis.summaries import (
    Cell,
    CellKey,
    ladder_label,
    percent,
    ticket_score,
)
from doublewin.analysis.verdict import ExtremeSparsity, Span
from doublewin.analysis.verdict.bracket import highest
from doublewin.analysis.verdict.control import ControlComparison
from doublewin.analysis.verdict.stats import SignTest, sign_test

# "not testable": a claim about pre-training in a run where no pre-training beats the
# no-pre-training control (or there is no control), so the claim has nothing to stand on.
Status = Literal["supports", "contradicts", "cannot tell", "not testable"]

# A double-win sparsity at or above this counts as "non-trivial" (the paper's lowest extreme
# is 73.79%; half the weights keeps small ladders of 4–6 rungs able to reach it).
NONTRIVIAL_SPARSITY = 0.5
# AT-transfer RA must exceed ST-transfer RA by at least this many points to be "far above".
FAR_ABOVE_POINTS = 5.0
# Two tickets' four-accuracy means closer than this (points) are a tie, not a win.
SCORE_TIE_POINTS = 0.5
# Extreme sparsities at most this many rungs apart count as "no significant difference".
SAME_RUNGS = 1
# A finding supports or contradicts the paper only when its test rejects "no effect" at this level.
ALPHA = 0.05
# The two tests a finding can be judged by (``Finding.test``).
SIGN_TEST = "sign"
EVERY_TEST = "every"
# Baselines IMP is expected to beat at equal sparsity.
IMP_BASELINES = ("omp", "random")


@dataclass(frozen=True)
class Finding:
    """One claim of the paper and what this run says about it."""

    key: str  # short stable id, e.g. "robust-sparser"
    claim: str  # the paper's claim in words
    paper: str  # where the paper says it and its numbers
    rule: str  # how the status is computed, in one or two sentences
    status: Status
    wins: int = 0
    losses: int = 0
    evidence: tuple[str, ...] = field(default_factory=tuple)  # one line per comparison
    note: str = ""  # why nothing could be compared, or a caveat
    test: str = SIGN_TEST  # SIGN_TEST or EVERY_TEST (the existence findings)

    @property
    def sign(self) -> SignTest:
        """The sign test of the wins against the losses (its p-value and the share of wins
        with a 95% interval; for an ``EVERY_TEST`` finding only the share is read)."""
        return sign_test(self.wins, self.losses)

    @property
    def test_text(self) -> str:
        """The test's outcome in a few words, e.g. ``sign test p = 0.031``."""
        if self.test == EVERY_TEST:
            return "every dataset certified"
        p = self.sign.p_value
        return "no decided comparison" if p is None else f"sign test p = {p:.3g}"

    @property
    def summary(self) -> str:
        """One plain sentence on the outcome."""
        counts = f"{self.wins} comparison(s) for, {self.losses} against ({self.test_text})"
        if self.status == "supports":
            return f"This run supports the paper: {counts}."
        if self.status == "contradicts":
            return f"This run disagrees with the paper: {counts}."
        if self.status == "not testable":
            return "Not testable in this setting: " + self.note
        if self.wins or self.losses:
            if self.test == EVERY_TEST:
                return f"This run cannot tell: {counts}; some dataset is undecided."
            return f"This run cannot tell: {counts}, not significant at α = {ALPHA:g}."
        return "This run cannot tell: " + (self.note or "no comparison could be made.")


def decide(wins: int, losses: int) -> Status:
    """The shared rule: a two-sided exact sign test of the decided comparisons (ties and
    undecided ones dropped) rejects "a win is as likely as a loss" at ``ALPHA``, in the
    direction of the majority. Six decided comparisons, all one way, are the fewest that can
    reject (p = 0.031)."""
    p = sign_test(wins, losses).p_value
    if p is None or p >= ALPHA:
        return "cannot tell"
    return "supports" if wins > losses else "contradicts"


def decide_every(wins: int, losses: int, undecided: int) -> Status:
    """For a claim about every dataset: supports when every dataset has a win (each win is a
    certified double-win verdict, itself a test at the verdict's confidence), contradicts when
    any dataset has a certified loss, cannot tell otherwise."""
    if losses:
        return "contradicts"
    if wins and not undecided:
        return "supports"
    return "cannot tell"


@dataclass(frozen=True)
class FindingsInput:
    """What the rules read: per-cell means, per-ladder extremes, pre-training kinds, and the
    comparison of every pre-training with the no-pre-training control."""

    cells: Mapping[CellKey, Cell]
    extremes: Sequence[ExtremeSparsity]
    kinds: Mapping[str, str | None]  # pre-training label → std / fat / at / control / None
    control: ControlComparison
    # The landscape stage's results (experiments/run/report_meta.py `landscape_meta`): labels
    # and sharpness per seed.
    landscapes: Sequence[Mapping[str, Any]] = ()

    def untestable(self, dataset: str, fraction: float) -> str:
        """Why a claim about pre-training cannot be tested at this setting ("" if it can)."""
        return self.control.reason_untestable(dataset, fraction)


@dataclass(frozen=True)
class Claim:
    """What a finding is about: its key, the paper's claim, where the paper says it, and the
    rule that judges it; the finding a rule reaches is made from it."""

    key: str
    claim: str
    paper: str
    rule: str

    def cannot_tell(self, note: str) -> Finding:
        """Nothing to compare, and why."""
        return Finding(self.key, self.claim, self.paper, self.rule, "cannot tell", note=note)

    def judged(
        self,
        wins: int,
        losses: int,
        evidence: Sequence[str],
        note: str = "",
        *,
        untested: Sequence[str] = (),
        tested: int | None = None,
    ) -> Finding:
        """The finding its counted comparisons decide (`decide`); a claim about pre-training
        (``tested`` given) is "not testable" where no setting could test it (`gated`)."""
        status = decide(wins, losses)
        finding = Finding(
            self.key, self.claim, self.paper, self.rule, status, wins, losses, tuple(evidence), note
        )
        return finding if tested is None else gated(finding, untested, tested)


def gated(finding: Finding, untested: Sequence[str], tested: int) -> Finding:
    """``finding`` as "not testable" when it is a claim about pre-training and none of the
    settings it looked at could test it (``untested``: the reason for each skipped setting;
    ``tested``: how many settings it did judge)."""
    if tested or not untested:
        return finding
    return replace(finding, status="not testable", note=untested[0] + ".")


def tally(lead: float, tie: float, wins: int, losses: int) -> tuple[str, int, int]:
    if lead > tie:
        return "for", wins + 1, losses
    if lead < -tie:
        return "against", wins, losses + 1
    return "tie", wins, losses


def members(kinds, by_setting, dataset, fraction, wanted) -> list[tuple[str, ExtremeSparsity]]:
    """(label, extreme) of every pre-training of the ``wanted`` kinds at one setting, in the
    order the pre-trainings are listed."""
    return [
        (label, e)
        for (label, d, f), e in by_setting.items()
        if d == dataset and f == fraction and kinds.get(label) in wanted
    ]


def group_span(group: Sequence[tuple[str, ExtremeSparsity]]) -> Span | None:
    """The sparsities the best extreme of a group of pre-trainings can take (bracket.highest);
    None when the group has no ladder here."""
    spans = [e.span for _, e in group if e.span is not None]
    return highest(spans) if spans else None


def span_text(value: Span) -> str:
    """A span in words: ``49.00%``, ``no double-win rung``, ``20.00%–87.00%``, ``0%–87.00%``
    or ``20.00% to below 89.26%``."""
    if value.point:
        return extreme_text(value.low)
    low = "0%" if value.low == 0.0 else percent(value.low)
    if value.open:
        return f"{low} to below {percent(value.high)}"
    return f"{low}–{percent(value.high)}"


def deciding_text(group: Sequence[tuple[str, ExtremeSparsity]]) -> str:
    """Which judgements would narrow the undecided brackets of ``group``: ``STD's 36.00%
    (not transferred), AT's 59.00% (inconclusive)`` (the first open rung of each)."""
    parts = []
    for label, e in group:
        rungs = e.deciding_rungs
        if rungs:
            more = f" and {len(rungs) - 1} more" if len(rungs) > 1 else ""
            parts.append(f"{label}'s {rungs[0].text()} ({rungs[0].state}){more}")
    return ", ".join(parts)


def scores_by_sparsity(cells, labels, dataset, fraction, ladder) -> dict[float, float]:
    """sparsity → the best ticket score among the pre-trainings ``labels``."""
    out: dict[float, float] = {}
    for key in cells:
        if (
            key.pretraining in labels
            and key.dataset == dataset
            and key.fraction == fraction
            and key.ladder == ladder
        ):
            score = ticket_score(cells, key.setting, ladder, key.sparsity)
            if score is not None:
                out[key.sparsity] = max(score, out.get(key.sparsity, score))
    return out


def missing_kinds(kinds, *groups) -> str:
    present = set(kinds.values())
    for group in groups:
        if not present & set(group):
            names = " or ".join(g.upper() for g in group)
            return (
                f"no {names} pre-training is known in this run; label a pre-training {names} "
                "or give its regime."
            )
    return ""


def extreme_text(sparsity: float) -> str:
    """A known extreme sparsity in words: 0 is a ladder judged with no double-win rung."""
    return "no double-win rung" if sparsity == 0.0 else percent(sparsity)


def ladder_text(ladder) -> str:
    return ladder_label(*ladder) if ladder else "main"


def replace_note(finding: Finding, note: str) -> Finding:
    return replace(finding, note=note)
