"""The findings about extreme double-win sparsity: existence (full and limited data), robust
pre-training sparser, the order AT ≥ FAT ≥ STD, and ST vs AT inside IMP."""

from __future__ import annotations

import statistics

from doublewin.analysis.findings.finding import (
    EVERY_TEST,
    NONTRIVIAL_SPARSITY,
    SAME_RUNGS,
    Claim,
    Finding,
    decide_every,
    deciding_text,
    group_span,
    ladder_text,
    members,
    missing_kinds,
    replace_note,
    span_text,
)
from doublewin.analysis.summaries import fraction_text, percent, ticket_score
from doublewin.analysis.verdict import ExtremeSparsity
from doublewin.analysis.verdict.bracket import (
    NOT_DOUBLE_WIN,
    lowest_from,
    possible_places,
)
from doublewin.analysis.verdict.bracket import order as bracket_order


def exist(ladders, primary, full) -> Finding:
    claim = (
        "Double-win tickets exist at non-trivial sparsity on every downstream dataset "
        "(full downstream data)."
    )
    paper = (
        "Finding 1; extreme double-win sparsity 73.79–96.48% across CIFAR-10, CIFAR-100 and SVHN."
    )
    rule = (
        f"Per dataset at the largest data fraction, on the {ladder_text(primary)} ladder: "
        f"a win when some pre-training's extreme double-win sparsity is ≥ "
        f"{percent(NONTRIVIAL_SPARSITY, 0)}; a loss when, for every pre-training, the lowest "
        f"ladder rung ≥ {percent(NONTRIVIAL_SPARSITY, 0)} is certified not double-win "
        f"(assuming monotonicity: a rung above a certified failure is not double-win either); "
        "otherwise neither, naming the rungs that would decide. Supports when every dataset is "
        "a win, contradicts when any is a loss (each verdict is itself a test at the verdict's "
        "confidence; no correction for the number of rungs looked at)."
    )
    return existence(
        ladders,
        primary,
        [full] if full is not None else [],
        claim=claim,
        paper=paper,
        rule=rule,
        key="exist",
    )


def exist_limited(ladders, primary, limited) -> Finding:
    claim = "Double-win tickets still exist at non-trivial sparsity with limited downstream data."
    paper = "Finding 2 and the data-efficiency results (10% and 1% of the training set)."
    rule = (
        "The rule of the first finding, at every data fraction below the largest one, per dataset."
    )
    finding = existence(
        ladders, primary, limited, claim=claim, paper=paper, rule=rule, key="exist-limited"
    )
    if not limited:
        return replace_note(
            finding,
            "the run has a single data fraction; add fractions "
            "such as 0.1 and 0.01 to the transfer section.",
        )
    return finding


def existence(ladders, primary, fractions, *, claim, paper, rule, key) -> Finding:
    head = Claim(key, claim, paper, rule)
    if primary is None:
        return head.cannot_tell("the run has no tickets.")
    by_setting = ladders[primary]
    evidence, wins, losses, undecided = [], 0, 0, 0
    for fraction in fractions:
        for dataset in sorted({s[1] for s in by_setting if s[2] == fraction}):
            items = {s[0]: e for s, e in by_setting.items() if s[1:] == (dataset, fraction)}
            outcome, line = _exists_at(items)
            evidence.append(f"{dataset} at {fraction_text(fraction)} data: {line}")
            wins += outcome == "for"
            losses += outcome == "against"
            undecided += outcome == "neither"
    return Finding(
        key,
        claim,
        paper,
        rule,
        decide_every(wins, losses, undecided),
        wins,
        losses,
        tuple(evidence),
        "" if evidence else "no ticket ladder was transferred at these fractions.",
        test=EVERY_TEST,
    )


def _exists_at(items: dict[str, ExtremeSparsity]) -> tuple[str, str]:
    """One setting of the existence rule: (for | against | neither, the evidence line)."""
    threshold = percent(NONTRIVIAL_SPARSITY, 0)
    best_label, best = None, None
    for label, e in items.items():
        if e.extreme is not None and (best is None or e.extreme > best):
            best_label, best = label, e.extreme
    if best is not None and best >= NONTRIVIAL_SPARSITY:
        return "for", f"double-win up to {percent(best)} ({best_label}) — for"
    lowest = {label: lowest_from(e.ladder, NONTRIVIAL_SPARSITY) for label, e in items.items()}
    if all(r is not None and r.state == NOT_DOUBLE_WIN for r in lowest.values()):
        failing = ", ".join(f"{label} {r.text()}" for label, r in lowest.items() if r)
        return "against", (
            f"every pre-training's lowest rung ≥ {threshold} is certified not double-win "
            f"({failing}) — against"
        )
    judging = [
        f"{label}'s {r.text()} ({r.state})"
        for label, r in lowest.items()
        if r is not None and r.state != NOT_DOUBLE_WIN
    ]
    short = [
        f"{label}'s ladder has no rung ≥ {threshold}" for label, r in lowest.items() if r is None
    ]
    reasons = ([f"judging {', '.join(judging)} would decide"] if judging else []) + short
    top = "no rung" if best is None else f"up to {percent(best)}"
    return "neither", (
        f"double-win {top}; cannot tell whether a rung ≥ {threshold} is double-win: "
        f"{'; '.join(reasons)} — neither"
    )


def robust_sparser(data, ladders, primary, fractions, *, limited: bool) -> Finding:
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
        f"Per dataset {where_rule}, on the {ladder_text(primary)} ladder: the bracket of the "
        "highest extreme double-win sparsity among robust pre-trainings against that among "
        "standard ones (no double-win rung counts as 0%; under monotonicity a bracket runs from "
        "the largest certified double-win rung to the rung below the first certified failure "
        "above it). Higher is a win and lower a loss only where the brackets do not overlap; "
        "equal (both decided at one rung) is a tie; overlapping brackets are neither, naming "
        "the rungs that would decide."
    )
    head = Claim(key, claim, paper, rule)
    if limited and not fractions:
        return head.cannot_tell(
            "the run has a single data fraction; add fractions such as 0.1 "
            "and 0.01 to the transfer section."
        )
    missing = missing_kinds(data.kinds, ("std",), ("fat", "at"))
    if primary is None or missing:
        return head.cannot_tell(missing or "the run has no tickets.")
    by_setting = ladders[primary]
    evidence, wins, losses, untested, tested = [], 0, 0, [], 0
    for fraction in fractions:
        for dataset in sorted({s[1] for s in by_setting if s[2] == fraction}):
            robust = members(data.kinds, by_setting, dataset, fraction, ("fat", "at"))
            standard = members(data.kinds, by_setting, dataset, fraction, ("std",))
            where = f"{dataset} at {fraction_text(fraction)} data"
            if reason := data.untestable(dataset, fraction):
                untested.append(reason)
                evidence.append(f"{where}: not testable ({reason})")
                continue
            tested += 1
            line, wins, losses = compare_groups(
                robust, standard, "robust", "standard", wins, losses
            )
            evidence.append(f"{where}: {line}")
    return head.judged(
        wins,
        losses,
        evidence,
        "" if evidence else "no ladder of both kinds was transferred.",
        untested=untested,
        tested=tested,
    )


def order(data, ladders, primary, full) -> Finding:
    key = "order"
    claim = "AT pre-training gives the sparsest double-win tickets, then FAT, then STD."
    paper = (
        "Finding 1; AT 91.41% / 83.22% ≥ FAT 89.26% / 79.03% ≥ STD 89.26% / 73.79% "
        "(CIFAR-10 / CIFAR-100)."
    )
    rule = (
        f"Per dataset at the largest data fraction, on the {ladder_text(primary)} ladder, "
        "for each pair of kinds present (AT vs FAT, AT vs STD, FAT vs STD): the bracket of the "
        "best extreme double-win sparsity of the more robust kind above the other's is a win, "
        "below a loss, only where the brackets do not overlap; equal (both decided at one "
        "rung) is a tie; overlapping brackets are neither, naming the rungs that would decide."
    )
    head = Claim(key, claim, paper, rule)
    present = [k for k in ("at", "fat", "std") if k in set(data.kinds.values())]
    if primary is None or len(present) < 2:
        return head.cannot_tell(
            "fewer than two kinds of pre-training (STD, FAT, AT) are known in "
            "this run; label pre-trainings STD, FAT and AT or give their regime."
        )
    by_setting = ladders[primary]
    evidence, wins, losses, untested, tested = [], 0, 0, [], 0
    for dataset in sorted({s[1] for s in by_setting if s[2] == full}):
        if reason := data.untestable(dataset, full):
            untested.append(reason)
            evidence.append(f"{dataset}: not testable ({reason})")
            continue
        tested += 1
        for i, high in enumerate(present):
            for low in present[i + 1 :]:
                a = members(data.kinds, by_setting, dataset, full, (high,))
                b = members(data.kinds, by_setting, dataset, full, (low,))
                line, wins, losses = compare_groups(a, b, high.upper(), low.upper(), wins, losses)
                evidence.append(f"{dataset}: {line}")
    return head.judged(wins, losses, evidence, untested=untested, tested=tested)


def compare_groups(a, b, a_name, b_name, wins, losses) -> tuple[str, int, int]:
    """The brackets of the best extremes of two groups of pre-trainings, compared: (the
    evidence line, wins, losses) with a win where ``a`` is certainly higher."""
    a_span, b_span = group_span(a), group_span(b)
    if a_span is None or b_span is None:
        return "a ladder was not transferred — neither", wins, losses
    labels = f"{_named(a_name, a, a_span)} vs {_named(b_name, b, b_span)}"
    where = bracket_order(a_span, b_span)
    if where == "higher":
        return f"{labels} — for", wins + 1, losses
    if where == "lower":
        return f"{labels} — against", wins, losses + 1
    if where == "equal":
        return f"{labels} — tie", wins, losses
    return (
        (
            f"{labels}: the brackets overlap; judging {deciding_text([*a, *b])} would decide "
            "— neither"
        ),
        wins,
        losses,
    )


def _named(name: str, group, value) -> str:
    """``robust 75.00% (FAT, AT)``; a group of one pre-training of that name: ``AT 75.00%``."""
    labels = [label for label, _ in group]
    who = "" if labels == [name] else f" ({', '.join(labels)})"
    return f"{name} {span_text(value)}{who}"


def imp_regime(data, ladders) -> Finding:
    key = "imp-regime"
    claim = "Using ST or AT inside IMP (on the source task) makes no significant difference."
    paper = "Finding 3."
    rule = (
        f"Per pre-training, dataset and fraction with both IMP (ST) and IMP (AT) ladders: "
        f"extreme double-win sparsities certainly at most {SAME_RUNGS} rung(s) apart (over "
        "every rung their brackets allow, under monotonicity) are a win, certainly further "
        "apart a loss, neither otherwise. The mean absolute difference of ticket scores (mean "
        "of the four accuracies) at common rungs is shown alongside."
    )
    head = Claim(key, claim, paper, rule)
    st, at = ladders.get(("imp", "std"), {}), ladders.get(("imp", "at"), {})
    common = sorted(set(st) & set(at), key=lambda s: (s[0], s[1], -s[2]))
    if not common:
        return head.cannot_tell(
            "the run does not have both IMP regimes; set tickets.imp_regimes: [std, at]."
        )
    evidence, wins, losses = [], 0, 0
    for setting in common:
        a, b = possible_places(st[setting].ladder), possible_places(at[setting].ladder)
        where = f"{setting[0]} → {setting[1]} at {fraction_text(setting[2])} data"
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
        if not a or not b:
            evidence.append(f"{where}: a ladder has no judged rung{spread} — neither")
            continue
        distances = [abs(x - y) for x in a for y in b]
        near, far = min(distances), max(distances)
        apart = (
            f"IMP (ST) {span_text(st[setting].span)} vs IMP (AT) {span_text(at[setting].span)}, "
            f"{near if near == far else f'{near}–{far}'} rung(s) apart{spread}"
        )
        if max(distances) <= SAME_RUNGS:
            wins += 1
            evidence.append(f"{where}: {apart} — for")
        elif min(distances) > SAME_RUNGS:
            losses += 1
            evidence.append(f"{where}: {apart} — against")
        else:
            deciding = deciding_text([("IMP (ST)", st[setting]), ("IMP (AT)", at[setting])])
            evidence.append(f"{where}: {apart}; judging {deciding} would decide — neither")
    return head.judged(wins, losses, evidence)
