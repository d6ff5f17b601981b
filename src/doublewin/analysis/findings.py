"""The paper's findings, each judged on this run's rows by an explicit rule.

Every finding breaks into comparisons (one per dataset, setting or sparsity), each of which
comes out for the paper (a *win*), against it (a *loss*), or neither (a tie, or data too thin
to compare). The verdict is the same for all findings:

- **supports** when wins outnumber losses;
- **contradicts** when losses outnumber wins;
- **cannot tell** when they are equal, including when nothing could be compared.

Each finding carries the rule in words and the numbers of every comparison, so a reader can
redo it. docs/report.md lists the rules. Sparsities are fractions 0–1 (written as percent),
accuracies points 0–100.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from doublewin.analysis.summaries import (
    Cell,
    CellKey,
    dense_cell,
    extremes_by_setting,
    fraction_text,
    known_extreme,
    ladder_label,
    percent,
    primary_ladder,
    ticket_score,
)
from doublewin.analysis.verdict import ExtremeSparsity

Status = Literal["supports", "contradicts", "cannot tell"]

# A double-win sparsity at or above this counts as "non-trivial" (the paper's lowest extreme
# is 73.79%; half the weights keeps small ladders of 4–6 rungs able to reach it).
NONTRIVIAL_SPARSITY = 0.5
# AT-transfer RA must exceed ST-transfer RA by at least this many points to be "far above".
FAR_ABOVE_POINTS = 5.0
# Two tickets' four-accuracy means closer than this (points) are a tie, not a win.
SCORE_TIE_POINTS = 0.5
# Extreme sparsities at most this many rungs apart count as "no significant difference".
SAME_RUNGS = 1
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

    @property
    def summary(self) -> str:
        """One plain sentence on the outcome."""
        if self.status == "supports":
            return (
                f"This run supports the paper: {self.wins} comparison(s) for, "
                f"{self.losses} against."
            )
        if self.status == "contradicts":
            return (
                f"This run disagrees with the paper: {self.losses} comparison(s) against, "
                f"{self.wins} for."
            )
        if self.wins or self.losses:
            return f"This run cannot tell: {self.wins} comparison(s) for and {self.losses} against."
        return "This run cannot tell: " + (self.note or "no comparison could be made.")


def decide(wins: int, losses: int) -> Status:
    """The shared rule: the majority of decided comparisons."""
    if wins > losses:
        return "supports"
    if losses > wins:
        return "contradicts"
    return "cannot tell"


@dataclass(frozen=True)
class FindingsInput:
    """What the rules read: per-cell means, per-ladder extremes, pre-training kinds."""

    cells: Mapping[CellKey, Cell]
    extremes: Sequence[ExtremeSparsity]
    kinds: Mapping[str, str | None]  # pre-training label → std / fat / at / None


def findings(data: FindingsInput) -> list[Finding]:
    """Every finding, in the order of the paper."""
    ladders = extremes_by_setting(data.extremes)
    primary = primary_ladder(ladders)
    fractions = sorted({key.fraction for key in data.cells}, reverse=True)
    full = fractions[0] if fractions else None
    limited = fractions[1:]
    return [
        _exist(data, ladders, primary, full),
        _robust_sparser(data, ladders, primary, [full] if full is not None else [], limited=False),
        _order(data, ladders, primary, full),
        _at_ra_above(data),
        _exist_limited(data, ladders, primary, limited),
        _robust_sparser(data, ladders, primary, limited, limited=True),
        _fat_low_at_high(data, primary, limited),
        _imp_regime(data, ladders),
        *[_imp_beats(data, primary, method) for method in IMP_BASELINES],
        _landscape(),
    ]


# ---------------------------------------------------------------------------------------------
# The rules


def _exist(data, ladders, primary, full) -> Finding:
    claim = (
        "Double-win tickets exist at non-trivial sparsity on every downstream dataset "
        "(full downstream data)."
    )
    paper = (
        "Finding 1; extreme double-win sparsity 73.79–96.48% across CIFAR-10, CIFAR-100 and SVHN."
    )
    rule = (
        f"Per dataset at the largest data fraction, on the {_ladder_text(primary)} ladder: "
        f"a win when some pre-training's extreme double-win sparsity is ≥ "
        f"{percent(NONTRIVIAL_SPARSITY, 0)}; a loss when every pre-training was judged on "
        f"a rung ≥ {percent(NONTRIVIAL_SPARSITY, 0)} and none is double-win there."
    )
    return _existence(
        data,
        ladders,
        primary,
        [full] if full is not None else [],
        claim=claim,
        paper=paper,
        rule=rule,
        key="exist",
    )


def _exist_limited(data, ladders, primary, limited) -> Finding:
    claim = "Double-win tickets still exist at non-trivial sparsity with limited downstream data."
    paper = "Finding 2 and the data-efficiency results (10% and 1% of the training set)."
    rule = (
        "The rule of the first finding, at every data fraction below the largest one, per dataset."
    )
    finding = _existence(
        data, ladders, primary, limited, claim=claim, paper=paper, rule=rule, key="exist-limited"
    )
    if not limited:
        return _replace_note(
            finding,
            "the run has a single data fraction; add fractions "
            "such as 0.1 and 0.01 to the transfer section.",
        )
    return finding


def _existence(data, ladders, primary, fractions, *, claim, paper, rule, key) -> Finding:
    if primary is None:
        return Finding(key, claim, paper, rule, "cannot tell", note="the run has no tickets.")
    by_setting = ladders[primary]
    evidence, wins, losses = [], 0, 0
    for fraction in fractions:
        for dataset in sorted({s[1] for s in by_setting if s[2] == fraction}):
            items = {s[0]: e for s, e in by_setting.items() if s[1:] == (dataset, fraction)}
            best_label, best = None, None
            for label, e in items.items():
                if e.extreme is not None and (best is None or e.extreme > best):
                    best_label, best = label, e.extreme
            where = f"{dataset} at {fraction_text(fraction)} data"
            if best is not None and best >= NONTRIVIAL_SPARSITY:
                wins += 1
                evidence.append(f"{where}: double-win up to {percent(best)} ({best_label}) — for")
                continue
            judged_high = all(
                any(s >= NONTRIVIAL_SPARSITY and dw is not None for s, dw in e.rungs)
                and all(dw is False for s, dw in e.rungs if s >= NONTRIVIAL_SPARSITY)
                for e in items.values()
            )
            top = "no rung" if best is None else f"at most {percent(best)}"
            if judged_high:
                losses += 1
                evidence.append(
                    f"{where}: double-win {top}; every rung ≥ "
                    f"{percent(NONTRIVIAL_SPARSITY, 0)} fails — against"
                )
            else:
                evidence.append(
                    f"{where}: double-win {top}; rungs ≥ "
                    f"{percent(NONTRIVIAL_SPARSITY, 0)} untested or undetermined "
                    "— neither"
                )
    return Finding(
        key,
        claim,
        paper,
        rule,
        decide(wins, losses),
        wins,
        losses,
        tuple(evidence),
        "" if evidence else "no ticket ladder was transferred at these fractions.",
    )


def _robust_sparser(data, ladders, primary, fractions, *, limited: bool) -> Finding:
    if limited:
        key = "robust-sparser-limited"
        claim = (
            "With limited downstream data, robust pre-training (FAT or AT) still gives "
            "double-win tickets at higher sparsity than standard pre-training."
        )
        paper = "Finding 2: larger benefits of robust pre-training with 10% and 1% data."
        where_rule = "at every data fraction below the largest one"
    else:
        key = "robust-sparser"
        claim = (
            "Robust pre-training (FAT or AT) gives double-win tickets at higher sparsity "
            "than standard pre-training."
        )
        paper = (
            "Headline: STD 89.26% / 73.79%, FAT 89.26% / 79.03%, AT 91.41% / 83.22% "
            "(CIFAR-10 / CIFAR-100)."
        )
        where_rule = "at the largest data fraction"
    rule = (
        f"Per dataset {where_rule}, on the {_ladder_text(primary)} ladder: the highest "
        "extreme double-win sparsity among robust pre-trainings against the highest among "
        "standard ones (no double-win rung counts as 0%); higher is a win, lower a loss, "
        "equal a tie."
    )
    if limited and not fractions:
        return Finding(
            key,
            claim,
            paper,
            rule,
            "cannot tell",
            note="the run has a single data fraction; add fractions such as 0.1 "
            "and 0.01 to the transfer section.",
        )
    missing = _missing_kinds(data.kinds, ("std",), ("fat", "at"))
    if primary is None or missing:
        return Finding(
            key, claim, paper, rule, "cannot tell", note=missing or "the run has no tickets."
        )
    by_setting = ladders[primary]
    evidence, wins, losses = [], 0, 0
    for fraction in fractions:
        for dataset in sorted({s[1] for s in by_setting if s[2] == fraction}):
            robust = _best_of(data.kinds, by_setting, dataset, fraction, ("fat", "at"))
            standard = _best_of(data.kinds, by_setting, dataset, fraction, ("std",))
            where = f"{dataset} at {fraction_text(fraction)} data"
            if robust is None or standard is None:
                evidence.append(
                    f"{where}: an extreme sparsity is undetermined or not transferred — neither"
                )
                continue
            (r_label, r), (s_label, s) = robust, standard
            outcome, wins, losses = _outcome(r - s, 0.0, wins, losses)
            evidence.append(
                f"{where}: robust {_extreme(r)} ({r_label}) vs standard "
                f"{_extreme(s)} ({s_label}) — {outcome}"
            )
    return Finding(
        key,
        claim,
        paper,
        rule,
        decide(wins, losses),
        wins,
        losses,
        tuple(evidence),
        "" if evidence else "no ladder of both kinds was transferred.",
    )


def _order(data, ladders, primary, full) -> Finding:
    key = "order"
    claim = "AT pre-training gives the sparsest double-win tickets, then FAT, then STD."
    paper = (
        "Finding 1; AT 91.41% / 83.22% ≥ FAT 89.26% / 79.03% ≥ STD 89.26% / 73.79% "
        "(CIFAR-10 / CIFAR-100)."
    )
    rule = (
        f"Per dataset at the largest data fraction, on the {_ladder_text(primary)} ladder, "
        "for each pair of kinds present (AT vs FAT, AT vs STD, FAT vs STD): the best "
        "extreme double-win sparsity of the more robust kind higher is a win, lower a loss, "
        "equal a tie."
    )
    present = sorted({k for k in data.kinds.values() if k}, key=("at", "fat", "std").index)
    if primary is None or len(present) < 2:
        return Finding(
            key,
            claim,
            paper,
            rule,
            "cannot tell",
            note="fewer than two kinds of pre-training (STD, FAT, AT) are known in "
            "this run; label pre-trainings STD, FAT and AT or give their regime.",
        )
    by_setting = ladders[primary]
    evidence, wins, losses = [], 0, 0
    for dataset in sorted({s[1] for s in by_setting if s[2] == full}):
        for i, high in enumerate(present):
            for low in present[i + 1 :]:
                a = _best_of(data.kinds, by_setting, dataset, full, (high,))
                b = _best_of(data.kinds, by_setting, dataset, full, (low,))
                pair = f"{dataset}: {high.upper()} vs {low.upper()}"
                if a is None or b is None:
                    evidence.append(
                        f"{pair}: an extreme sparsity is undetermined or not transferred — neither"
                    )
                    continue
                outcome, wins, losses = _outcome(a[1] - b[1], 0.0, wins, losses)
                evidence.append(f"{pair}: {_extreme(a[1])} vs {_extreme(b[1])} — {outcome}")
    return Finding(key, claim, paper, rule, decide(wins, losses), wins, losses, tuple(evidence))


def _at_ra_above(data) -> Finding:
    key = "at-ra"
    claim = (
        "Adversarial transfer (AT) gives robust accuracy far above standard transfer (ST); "
        "this is why the double-win verdict asks for both regimes."
    )
    paper = "Implicit in the paper's setup: ST-transferred models keep little RA."
    rule = (
        f"Per pre-training, dataset and fraction, on the dense models: AT RA − ST RA ≥ "
        f"{FAR_ABOVE_POINTS:g} points is a win, ≤ 0 a loss, in between neither."
    )
    evidence, wins, losses = [], 0, 0
    settings = sorted(
        {k.setting for k in data.cells if k.method == "dense"}, key=lambda s: (s[0], s[1], -s[2])
    )
    for setting in settings:
        st, at = dense_cell(data.cells, setting, "st"), dense_cell(data.cells, setting, "at")
        where = f"{setting[0]} → {setting[1]} at {fraction_text(setting[2])} data"
        if st is None or at is None or st.ra is None or at.ra is None:
            evidence.append(f"{where}: dense RA missing under one regime — neither")
            continue
        gap = at.ra.mean - st.ra.mean
        if gap >= FAR_ABOVE_POINTS:
            wins, outcome = wins + 1, "for"
        elif gap <= 0:
            losses, outcome = losses + 1, "against"
        else:
            outcome = "neither"
        evidence.append(
            f"{where}: RA {at.ra.mean:.2f} (AT) vs {st.ra.mean:.2f} (ST), "
            f"gap {gap:+.2f} — {outcome}"
        )
    return Finding(
        key,
        claim,
        paper,
        rule,
        decide(wins, losses),
        wins,
        losses,
        tuple(evidence),
        "" if evidence else "the run has no dense baseline rows.",
    )


def _fat_low_at_high(data, primary, limited) -> Finding:
    key = "fat-low-at-high"
    claim = (
        "With limited downstream data, FAT pre-training finds better tickets at low "
        "sparsity and AT pre-training at high sparsity."
    )
    paper = "Finding 2 (10% and 1% data)."
    rule = (
        f"Per dataset and fraction below the largest, on the {_ladder_text(primary)} ladder, "
        "at each rung that both FAT and AT tickets have with all four accuracies: a ticket's "
        "score is the mean of ST SA, ST RA, AT SA, AT RA. Rungs below the median of those "
        "rungs are low, above it high (the median rung itself is skipped). A win is FAT "
        f"ahead at a low rung or AT ahead at a high rung by more than {SCORE_TIE_POINTS:g} "
        "points; the reverse is a loss."
    )
    if not limited:
        return Finding(
            key,
            claim,
            paper,
            rule,
            "cannot tell",
            note="the run has a single data fraction; add fractions such as 0.1 "
            "and 0.01 to the transfer section.",
        )
    missing = _missing_kinds(data.kinds, ("fat",), ("at",))
    if primary is None or missing:
        return Finding(
            key, claim, paper, rule, "cannot tell", note=missing or "the run has no tickets."
        )
    fat = [label for label, kind in data.kinds.items() if kind == "fat"]
    at = [label for label, kind in data.kinds.items() if kind == "at"]
    evidence, wins, losses = [], 0, 0
    datasets = sorted({k.dataset for k in data.cells})
    for fraction in limited:
        for dataset in datasets:
            fat_scores = _scores(data.cells, fat, dataset, fraction, primary)
            at_scores = _scores(data.cells, at, dataset, fraction, primary)
            common = sorted(set(fat_scores) & set(at_scores))
            if len(common) < 2:
                continue
            median = statistics.median(common)
            for sparsity in common:
                if sparsity == median:
                    continue
                low = sparsity < median
                lead = (fat_scores[sparsity] - at_scores[sparsity]) * (1 if low else -1)
                outcome, wins, losses = _outcome(lead, SCORE_TIE_POINTS, wins, losses)
                evidence.append(
                    f"{dataset} at {fraction_text(fraction)} data, {percent(sparsity)} "
                    f"({'low' if low else 'high'}): FAT {fat_scores[sparsity]:.2f} vs AT "
                    f"{at_scores[sparsity]:.2f} — {outcome}"
                )
    return Finding(
        key,
        claim,
        paper,
        rule,
        decide(wins, losses),
        wins,
        losses,
        tuple(evidence),
        ""
        if evidence
        else "no dataset has two or more rungs transferred from both "
        "FAT and AT pre-trainings with limited data.",
    )


def _imp_regime(data, ladders) -> Finding:
    key = "imp-regime"
    claim = "Using ST or AT inside IMP (on the source task) makes no significant difference."
    paper = "Finding 3."
    rule = (
        f"Per pre-training, dataset and fraction with both IMP (ST) and IMP (AT) ladders: "
        f"extreme double-win sparsities at most {SAME_RUNGS} rung(s) apart are a win, "
        "further apart a loss. The mean absolute difference of ticket scores (mean of the "
        "four accuracies) at common rungs is shown alongside."
    )
    st, at = ladders.get(("imp", "std"), {}), ladders.get(("imp", "at"), {})
    common = sorted(set(st) & set(at), key=lambda s: (s[0], s[1], -s[2]))
    if not common:
        return Finding(
            key,
            claim,
            paper,
            rule,
            "cannot tell",
            note="the run does not have both IMP regimes; set tickets.imp_regimes: [std, at].",
        )
    evidence, wins, losses = [], 0, 0
    for setting in common:
        a, b = known_extreme(st[setting]), known_extreme(at[setting])
        where = f"{setting[0]} → {setting[1]} at {fraction_text(setting[2])} data"
        rungs = sorted(
            {0.0} | {s for s, _ in st[setting].rungs} | {s for s, _ in at[setting].rungs}
        )
        diffs = []
        for sparsity in sorted(
            {s for s, _ in st[setting].rungs} & {s for s, _ in at[setting].rungs}
        ):
            x = ticket_score(data.cells, setting, ("imp", "std"), sparsity)
            y = ticket_score(data.cells, setting, ("imp", "at"), sparsity)
            if x is not None and y is not None:
                diffs.append(abs(x - y))
        spread = (
            (f"; mean |Δscore| {statistics.fmean(diffs):.2f} points over {len(diffs)} rung(s)")
            if diffs
            else ""
        )
        if a is None or b is None:
            evidence.append(
                f"{where}: an extreme sparsity is undetermined or not transferred{spread} — neither"
            )
            continue
        apart = abs(rungs.index(a) - rungs.index(b))
        if apart <= SAME_RUNGS:
            wins, outcome = wins + 1, "for"
        else:
            losses, outcome = losses + 1, "against"
        evidence.append(
            f"{where}: IMP (ST) {_extreme(a)} vs IMP (AT) {_extreme(b)}, {apart} "
            f"rung(s) apart{spread} — {outcome}"
        )
    return Finding(key, claim, paper, rule, decide(wins, losses), wins, losses, tuple(evidence))


def _imp_beats(data, primary, method) -> Finding:
    name = ladder_label(method, "")
    key = f"imp-beats-{method}"
    claim = f"IMP finds better tickets than {name} at equal sparsity."
    paper = (
        "Not one of the paper's findings: the usual lottery-ticket expectation, checked "
        "because the paper's tickets come from IMP."
    )
    rule = (
        f"At every (pre-training, dataset, fraction, sparsity) where the "
        f"{_ladder_text(primary)} ladder and {name} both have all four accuracies: the "
        f"ticket score (mean of ST SA, ST RA, AT SA, AT RA) of IMP more than "
        f"{SCORE_TIE_POINTS:g} points above {name}'s is a win, more than "
        f"{SCORE_TIE_POINTS:g} below a loss."
    )
    if primary is None or primary[0] != "imp":
        return Finding(key, claim, paper, rule, "cannot tell", note="the run has no IMP tickets.")
    points = sorted(
        {(k.setting, k.sparsity) for k in data.cells if k.method == method},
        key=lambda p: (p[0][0], p[0][1], -p[0][2], p[1]),
    )
    evidence, wins, losses, leads = [], 0, 0, []
    for setting, sparsity in points:
        imp = ticket_score(data.cells, setting, primary, sparsity)
        other = ticket_score(data.cells, setting, (method, ""), sparsity)
        if imp is None or other is None:
            continue
        leads.append(imp - other)
        outcome, wins, losses = _outcome(imp - other, SCORE_TIE_POINTS, wins, losses)
        evidence.append(
            f"{setting[0]} → {setting[1]} at {fraction_text(setting[2])} data, "
            f"{percent(sparsity)}: IMP {imp:.2f} vs {name} {other:.2f} — {outcome}"
        )
    note = (
        ""
        if evidence
        else (
            f"the run has no {name} tickets at the sparsities of the IMP "
            f"ladder; add {method} to tickets.methods."
        )
    )
    if leads:
        note = f"mean IMP lead {statistics.fmean(leads):+.2f} points over {len(leads)} ticket(s)."
    return Finding(
        key, claim, paper, rule, decide(wins, losses), wins, losses, tuple(evidence), note
    )


def _landscape() -> Finding:
    return Finding(
        "landscape",
        "Robust pre-training gives tickets flatter loss landscapes under AT with 100/10/1% data.",
        "Finding 4 (Figure 6: loss contours and trajectories at 73.79% sparsity).",
        "Not computed from result rows: it needs loss-landscape evaluations of trained tickets.",
        "cannot tell",
        note="the report does not compute loss landscapes; the result rows hold accuracies only.",
    )


# ---------------------------------------------------------------------------------------------
# Helpers


def _outcome(lead: float, tie: float, wins: int, losses: int) -> tuple[str, int, int]:
    if lead > tie:
        return "for", wins + 1, losses
    if lead < -tie:
        return "against", wins, losses + 1
    return "tie", wins, losses


def _best_of(kinds, by_setting, dataset, fraction, wanted) -> tuple[str, float] | None:
    """(label, sparsity) of the sparsest known extreme among pre-trainings of ``wanted`` kinds;
    None when any of them is undetermined or none was transferred."""
    best: tuple[str, float] | None = None
    found = False
    for (label, d, f), e in by_setting.items():
        if d != dataset or f != fraction or kinds.get(label) not in wanted:
            continue
        found = True
        value = known_extreme(e)
        if value is None:
            return None
        if best is None or value > best[1]:
            best = (label, value)
    return best if found else None


def _scores(cells, labels, dataset, fraction, ladder) -> dict[float, float]:
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


def _missing_kinds(kinds, *groups) -> str:
    present = set(kinds.values())
    for group in groups:
        if not present & set(group):
            names = " or ".join(g.upper() for g in group)
            return (
                f"no {names} pre-training is known in this run; label a pre-training {names} "
                "or give its regime."
            )
    return ""


def _extreme(sparsity: float) -> str:
    """A known extreme sparsity in words: 0 is a ladder judged with no double-win rung."""
    return "no double-win rung" if sparsity == 0.0 else percent(sparsity)


def _ladder_text(ladder) -> str:
    return ladder_label(*ladder) if ladder else "main"


def _replace_note(finding: Finding, note: str) -> Finding:
    return replace(finding, note=note)
