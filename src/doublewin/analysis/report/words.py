"""The report's words for what it names: each finding in a few words (never its key), and the
gap of the tickets to their dense models in one sentence with its numbers."""

from __future__ import annotations

from collections.abc import Sequence

from doublewin.analysis.summaries import fraction_text, ladder_label, percent
from doublewin.analysis.verdict import TicketVerdict

TITLES = {
    "pretraining-helps": "pre-training helps downstream",
    "exist": "double-win tickets exist with full data",
    "robust-sparser": "robust pre-training gives sparser double-win tickets",
    "order": "sparsity order AT, FAT, STD",
    "at-ra": "AT transfer keeps the RA that ST loses",
    "exist-limited": "double-win tickets exist with limited data",
    "robust-sparser-limited": "robust pre-training sparser with limited data",
    "fat-low-at-high": "FAT best at low, AT at high sparsity with limited data",
    "imp-regime": "ST or AT inside IMP makes no difference",
    "landscape": "flatter loss landscapes from robust pre-training",
    "robust-every-pattern": "robust tickets better in every sparsity pattern",
}


def finding_title(key: str) -> str:
    """A finding in a few words, e.g. ``IMP better than random`` for ``imp-beats-random``."""
    if key.startswith("imp-beats-"):
        other = key[len("imp-beats-") :]
        return f"IMP better than {other.upper() if other in ('omp', 'snip') else other}"
    return TITLES.get(key, key.replace("-", " "))


def shortfall_sentence(
    verdicts: Sequence[TicketVerdict],
    ladder: tuple[str, str] | None,
    pretrainings: Sequence[str],
) -> str:
    """How far the main ladder's tickets fall below their dense models at the largest data
    fraction, at its lowest and highest rung: per pre-training the comparison furthest below
    dense (mean ticket − dense over the seeds, in points), e.g. "… at 20%: STD −0.3 (AT RA),
    FAT +0.1 (ST SA) …". Empty when nothing was compared."""
    chosen = [
        v for v in verdicts if ladder is not None and (v.key.method, v.key.imp_regime) == ladder
    ]
    if not chosen:
        return ""
    fraction = max(v.key.fraction for v in chosen)
    at_fraction = [v for v in chosen if v.key.fraction == fraction]
    rungs = sorted({v.key.sparsity for v in at_fraction})
    datasets = {v.key.dataset for v in at_fraction}
    parts = []
    for sparsity in dict.fromkeys((rungs[0], rungs[-1])):
        worst = []
        for label in pretrainings:
            found = []  # per dataset: the comparison furthest below dense
            for v in at_fraction:
                if v.key.pretraining != label or v.key.sparsity != sparsity:
                    continue
                diffs = [
                    (c.difference.mean, f"{c.regime.upper()} {c.metric.upper()}")
                    for c in v.comparisons
                    if (c.regime, c.metric) in v.counted and c.difference is not None
                ]
                if diffs:
                    found.append(min(diffs))
            if found:
                low, what = min(found)
                high = max(mean for mean, _ in found)
                span = (
                    f"{low:+.1f}"
                    if round(low, 1) == round(high, 1)
                    else f"{low:+.1f} to {high:+.1f}"
                )
                worst.append(f"{label} {span} ({what})")
        if worst:
            parts.append(f"at {percent(sparsity)}: {', '.join(worst)}")
    if not parts:
        return ""
    over = f" (over {len(datasets)} datasets)" if len(datasets) > 1 else ""
    return (
        f"With {fraction_text(fraction)} data{over} the {ladder_label(*ladder)} tickets' largest "
        f"shortfall from their dense models (ticket − dense, points, mean over seeds) is "
        + "; ".join(parts)
        + "."
    )
