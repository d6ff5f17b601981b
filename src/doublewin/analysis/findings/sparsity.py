"""The findings about extreme double-win sparsity: existence (full and limited data), robust
pre-training sparser, the order AT ≥ FAT ≥ STD, and ST vs AT inside IMP."""

from __future__ import annotations

import statistics

from doublewin.analysis.findings.finding import (
    EVERY_TEST,
    NONTRIVIAL_SPARSITY,
    SAME_RUNGS,
    Finding,
    best_of,
    decide,
    decide_every,
    extreme_text,
    gated,
    ladder_text,
    missing_kinds,
    replace_note,
    tally,
)
from doublewin.analysis.summaries import (
    fraction_text,
    known_extreme,
    percent,
    ticket_score,
)


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
        f"{percent(NONTRIVIAL_SPARSITY, 0)}; a loss when every pre-training was judged on "
        f"a rung ≥ {percent(NONTRIVIAL_SPARSITY, 0)} and none is double-win there. "
        "Supports when every dataset is a win, contradicts when any is a loss (each verdict "
        "is itself a test at the verdict's confidence; no correction for the number of rungs "
        "looked at)."
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
    if primary is None:
        return Finding(key, claim, paper, rule, "cannot tell", note="the run has no tickets.")
    by_setting = ladders[primary]
    evidence, wins, losses, undecided = [], 0, 0, 0
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
                undecided += 1
                evidence.append(
                    f"{where}: double-win {top}; rungs ≥ "
                    f"{percent(NONTRIVIAL_SPARSITY, 0)} untested, inconclusive or undetermined "
                    "— neither"
                )
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
        f"Per dataset {where_rule}, on the {ladder_text(primary)} ladder: the highest "
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
    missing = missing_kinds(data.kinds, ("std",), ("fat", "at"))
    if primary is None or missing:
        return Finding(
            key, claim, paper, rule, "cannot tell", note=missing or "the run has no tickets."
        )
    by_setting = ladders[primary]
    evidence, wins, losses, untested, tested = [], 0, 0, [], 0
    for fraction in fractions:
        for dataset in sorted({s[1] for s in by_setting if s[2] == fraction}):
            robust = best_of(data.kinds, by_setting, dataset, fraction, ("fat", "at"))
            standard = best_of(data.kinds, by_setting, dataset, fraction, ("std",))
            where = f"{dataset} at {fraction_text(fraction)} data"
            if reason := data.untestable(dataset, fraction):
                untested.append(reason)
                evidence.append(f"{where}: not testable ({reason})")
                continue
            tested += 1
            if robust is None or standard is None:
                evidence.append(
                    f"{where}: an extreme sparsity is undetermined or not transferred — neither"
                )
                continue
            (r_label, r), (s_label, s) = robust, standard
            outcome, wins, losses = tally(r - s, 0.0, wins, losses)
            evidence.append(
                f"{where}: robust {extreme_text(r)} ({r_label}) vs standard "
                f"{extreme_text(s)} ({s_label}) — {outcome}"
            )
    finding = Finding(
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
    return gated(finding, untested, tested)


def order(data, ladders, primary, full) -> Finding:
    key = "order"
    claim = "AT pre-training gives the sparsest double-win tickets, then FAT, then STD."
    paper = (
        "Finding 1; AT 91.41% / 83.22% ≥ FAT 89.26% / 79.03% ≥ STD 89.26% / 73.79% "
        "(CIFAR-10 / CIFAR-100)."
    )
    rule = (
        f"Per dataset at the largest data fraction, on the {ladder_text(primary)} ladder, "
        "for each pair of kinds present (AT vs FAT, AT vs STD, FAT vs STD): the best "
        "extreme double-win sparsity of the more robust kind higher is a win, lower a loss, "
        "equal a tie."
    )
    present = [k for k in ("at", "fat", "std") if k in set(data.kinds.values())]
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
    evidence, wins, losses, untested, tested = [], 0, 0, [], 0
    for dataset in sorted({s[1] for s in by_setting if s[2] == full}):
        if reason := data.untestable(dataset, full):
            untested.append(reason)
            evidence.append(f"{dataset}: not testable ({reason})")
            continue
        tested += 1
        for i, high in enumerate(present):
            for low in present[i + 1 :]:
                a = best_of(data.kinds, by_setting, dataset, full, (high,))
                b = best_of(data.kinds, by_setting, dataset, full, (low,))
                pair = f"{dataset}: {high.upper()} vs {low.upper()}"
                if a is None or b is None:
                    evidence.append(
                        f"{pair}: an extreme sparsity is undetermined or not transferred — neither"
                    )
                    continue
                outcome, wins, losses = tally(a[1] - b[1], 0.0, wins, losses)
                evidence.append(f"{pair}: {extreme_text(a[1])} vs {extreme_text(b[1])} — {outcome}")
    finding = Finding(key, claim, paper, rule, decide(wins, losses), wins, losses, tuple(evidence))
    return gated(finding, untested, tested)


def imp_regime(data, ladders) -> Finding:
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
            f"{where}: IMP (ST) {extreme_text(a)} vs IMP (AT) {extreme_text(b)}, {apart} "
            f"rung(s) apart{spread} — {outcome}"
        )
    return Finding(key, claim, paper, rule, decide(wins, losses), wins, losses, tuple(evidence))
