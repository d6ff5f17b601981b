"""The claim about sparsity patterns: robust pre-training gives better tickets in every
pattern (Fu et al., "Robust Tickets Can Transfer Better", DAC 2023), judged by the same sign
test as the paper's findings. The paper's own findings read unstructured tickets only."""

from __future__ import annotations

from collections import Counter

from doublewin.analysis.findings.finding import (
    SCORE_TIE_POINTS,
    Claim,
    Finding,
    FindingsInput,
    missing_kinds,
    scores_by_sparsity,
    tally,
)
from doublewin.analysis.summaries import fraction_text, percent
from doublewin.core.results import UNSTRUCTURED, split_method


def robust_every_pattern(data: FindingsInput) -> Finding:
    key = "robust-every-pattern"
    claim = (
        "Robust pre-training (FAT or AT) gives better tickets than standard pre-training in "
        "every sparsity pattern: unstructured, channel and N:M."
    )
    paper = (
        "Not one of the paper's findings: Fu et al. (DAC 2023), robust tickets across "
        "sparsity patterns."
    )
    rule = (
        "Per pattern, dataset, fraction and sparsity where the IMP tickets of a robust and a "
        "standard pre-training both have all four accuracies: the best robust ticket score "
        "(mean of ST SA, ST RA, AT SA, AT RA) more than "
        f"{SCORE_TIE_POINTS:g} points above the best standard one is a win, more than "
        f"{SCORE_TIE_POINTS:g} below a loss; the comparisons of every pattern are pooled."
    )
    head = Claim(key, claim, paper, rule)
    ladders = sorted({k.ladder for k in data.cells if split_method(k.method)[0] == "imp"})
    patterns = {split_method(m)[1] for m, _ in ladders}
    if len(patterns) < 2:
        return head.cannot_tell(
            "the run has tickets of one pattern only; add tickets.patterns such as "
            "[unstructured, channel]."
        )
    missing = missing_kinds(data.kinds, ("std",), ("fat", "at"))
    if missing:
        return head.cannot_tell(missing)
    robust = [label for label, kind in data.kinds.items() if kind in ("fat", "at")]
    standard = [label for label, kind in data.kinds.items() if kind == "std"]
    evidence, wins, losses, untested, tested = [], 0, 0, [], 0
    per_pattern: Counter = Counter()
    settings = sorted({(k.dataset, k.fraction) for k in data.cells}, key=lambda s: (s[0], -s[1]))
    for dataset, fraction in settings:
        if reason := data.untestable(dataset, fraction):
            untested.append(reason)
            evidence.append(f"{dataset} at {fraction_text(fraction)} data: not testable ({reason})")
            continue
        tested += 1
        for ladder in ladders:
            pattern = split_method(ladder[0])[1]
            r = scores_by_sparsity(data.cells, robust, dataset, fraction, ladder)
            s = scores_by_sparsity(data.cells, standard, dataset, fraction, ladder)
            for sparsity in sorted(set(r) & set(s)):
                outcome, wins, losses = tally(
                    r[sparsity] - s[sparsity], SCORE_TIE_POINTS, wins, losses
                )
                per_pattern[(pattern, outcome)] += 1
                evidence.append(
                    f"{pattern}, {dataset} at {fraction_text(fraction)} data, {percent(sparsity)}: "
                    f"robust {r[sparsity]:.2f} vs standard {s[sparsity]:.2f} — {outcome}"
                )
    note = "; ".join(
        f"{p}: {per_pattern[(p, 'for')]} for, {per_pattern[(p, 'against')]} against"
        for p in sorted(patterns, key=lambda p: (p != UNSTRUCTURED, p))
    )
    return head.judged(wins, losses, evidence, note, untested=untested, tested=tested)
