"""The findings about accuracies: AT transfer's RA above ST's, FAT ahead at low and AT at high
sparsity with limited data and IMP ahead of the baselines."""

from __future__ import annotations

import statistics

from doublewin.analysis.findings.finding import (
    FAR_ABOVE_POINTS,
    SCORE_TIE_POINTS,
    Claim,
    Finding,
    FindingsInput,
    ladder_text,
    missing_kinds,
    scores_by_sparsity,
    tally,
)
from doublewin.analysis.summaries import (
    dense_cell,
    fraction_text,
    ladder_label,
    percent,
    ticket_score,
)
from doublewin.analysis.verdict.control import ENDPOINTS
from doublewin.analysis.verdict.stats import Interval


def at_ra_above(data) -> Finding:
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
    head = Claim(key, claim, paper, rule)
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
    return head.judged(
        wins, losses, evidence, "" if evidence else "the run has no dense baseline rows."
    )


def fat_low_at_high(data, primary, limited) -> Finding:
    key = "fat-low-at-high"
    claim = (
        "With limited downstream data, FAT pre-training finds better tickets at low "
        "sparsity and AT pre-training at high sparsity."
    )
    paper = "Finding 2 (10% and 1% data)."
    rule = (
        f"Per dataset and fraction below the largest, on the {ladder_text(primary)} ladder, "
        "at each rung that both FAT and AT tickets have with all four accuracies: a ticket's "
        "score is the mean of ST SA, ST RA, AT SA, AT RA. Rungs below the median of those "
        "rungs are low, above it high (the median rung itself is skipped). A win is FAT "
        f"ahead at a low rung or AT ahead at a high rung by more than {SCORE_TIE_POINTS:g} "
        "points; the reverse is a loss."
    )
    head = Claim(key, claim, paper, rule)
    if not limited:
        return head.cannot_tell(
            "the run has a single data fraction; add fractions such as 0.1 "
            "and 0.01 to the transfer section."
        )
    missing = missing_kinds(data.kinds, ("fat",), ("at",))
    if primary is None or missing:
        return head.cannot_tell(missing or "the run has no tickets.")
    fat = [label for label, kind in data.kinds.items() if kind == "fat"]
    at = [label for label, kind in data.kinds.items() if kind == "at"]
    evidence, wins, losses, untested, tested = [], 0, 0, [], 0
    datasets = sorted({k.dataset for k in data.cells})
    for fraction in limited:
        for dataset in datasets:
            if reason := data.untestable(dataset, fraction):
                untested.append(reason)
                evidence.append(
                    f"{dataset} at {fraction_text(fraction)} data: not testable ({reason})"
                )
                continue
            tested += 1
            fat_scores = scores_by_sparsity(data.cells, fat, dataset, fraction, primary)
            at_scores = scores_by_sparsity(data.cells, at, dataset, fraction, primary)
            common = sorted(set(fat_scores) & set(at_scores))
            if len(common) < 2:
                continue
            median = statistics.median(common)
            for sparsity in common:
                if sparsity == median:
                    continue
                low = sparsity < median
                lead = (fat_scores[sparsity] - at_scores[sparsity]) * (1 if low else -1)
                outcome, wins, losses = tally(lead, SCORE_TIE_POINTS, wins, losses)
                evidence.append(
                    f"{dataset} at {fraction_text(fraction)} data, {percent(sparsity)} "
                    f"({'low' if low else 'high'}): FAT {fat_scores[sparsity]:.2f} vs AT "
                    f"{at_scores[sparsity]:.2f} — {outcome}"
                )
    return head.judged(
        wins,
        losses,
        evidence,
        ""
        if evidence
        else "no dataset has two or more rungs transferred from both "
        "FAT and AT pre-trainings with limited data.",
        untested=untested,
        tested=tested,
    )


def imp_beats(data, primary, method) -> Finding:
    name = ladder_label(method, "")
    key = f"imp-beats-{method}"
    claim = f"IMP finds better tickets than {name} at equal sparsity."
    paper = (
        "Not one of the paper's findings: the usual lottery-ticket expectation, checked "
        "because the paper's tickets come from IMP."
    )
    rule = (
        f"At every (pre-training, dataset, fraction, sparsity) where the "
        f"{ladder_text(primary)} ladder and {name} both have all four accuracies: the "
        f"ticket score (mean of ST SA, ST RA, AT SA, AT RA) of IMP more than "
        f"{SCORE_TIE_POINTS:g} points above {name}'s is a win, more than "
        f"{SCORE_TIE_POINTS:g} below a loss."
    )
    head = Claim(key, claim, paper, rule)
    if primary is None or primary[0] != "imp":
        return head.cannot_tell("the run has no IMP tickets.")
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
        outcome, wins, losses = tally(imp - other, SCORE_TIE_POINTS, wins, losses)
        evidence.append(
            f"{setting[0]} → {setting[1]} at {fraction_text(setting[2])} data, "
            f"{percent(sparsity)}: IMP {imp:.2f} vs {name} {other:.2f} — {outcome}"
        )
    # Evidence and leads grow together: a lead to report, or no comparison at all.
    if leads:
        note = f"mean IMP lead {statistics.fmean(leads):+.2f} points over {len(leads)} ticket(s)."
    else:
        note = (
            f"the run has no {name} tickets at the sparsities of the IMP "
            f"ladder; add {method} to tickets.methods."
        )
    return head.judged(wins, losses, evidence, note)


def pretraining_helps(data: FindingsInput) -> Finding:
    """The premise of every claim about pre-training: its dense transfer beats the control."""
    key = "pretraining-helps"
    claim = (
        "Pre-training helps downstream: a pre-trained model's dense transfer beats the "
        "no-pre-training control (the premise every finding about pre-training rests on)."
    )
    paper = "Implicit in every comparison of pre-trainings; the paper runs no control."
    rule = (
        "Per pre-training, dataset and fraction: helps (a win) when its dense SA under ST and "
        "its dense RA under AT both beat the control's, each difference of means with its "
        "95% Welch t-interval above zero; hurts (a loss) when either interval lies below zero; "
        "neither otherwise."
    )
    head = Claim(key, claim, paper, rule)
    comparison = data.control
    if comparison.control is None:
        return head.cannot_tell(
            "the run has no no-pre-training control; add `CONTROL: {kind: control}` "
            "to pretrain.runs."
        )
    evidence, wins, losses = [], 0, 0
    for gain in comparison.gains:
        st, at = (gain.differences.get(e) for e in ENDPOINTS)
        outcome = {"helps": "for", "hurts": "against", "inconclusive": "neither"}[gain.outcome]
        wins += gain.outcome == "helps"
        losses += gain.outcome == "hurts"
        evidence.append(
            f"{gain.pretraining} → {gain.dataset} at {fraction_text(gain.fraction)} data: "
            f"ST SA {_text(st)}, AT RA {_text(at)} points vs {comparison.control} — {outcome}"
        )
    return head.judged(
        wins,
        losses,
        evidence,
        "" if evidence else "no pre-training shares a dense setting with the control.",
    )


def _text(difference: Interval | None) -> str:
    return "—" if difference is None else difference.text()
