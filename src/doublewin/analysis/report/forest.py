"""The forest plot that opens the report: every finding's effect with its interval, beside
the paper's claim.

The effect of a finding is the share of its decided comparisons that came out for the paper,
with its exact (Clopper–Pearson) 95% interval: one scale for findings whose comparisons are
accuracies, sparsities or rung counts. 50% is "no effect"; the paper claims 100% (every
comparison its way).
"""

from __future__ import annotations

from collections.abc import Sequence

from doublewin.analysis.findings.finding import EVERY_TEST, Finding
from doublewin.analysis.report.figures import new_figure, png_bytes
from doublewin.analysis.report.words import finding_title

_STATUS_COLORS = {
    "supports": "#2ca02c",
    "contradicts": "#d62728",
    "cannot tell": "#7f7f7f",
    "not testable": "#bbbbbb",
}


def forest_plot(findings: Sequence[Finding]) -> bytes:
    """PNG bytes: one row per finding, top to bottom in the report's order."""
    height = 1.0 + 0.36 * max(len(findings), 1)
    figure = new_figure(figsize=(10.0, height), dpi=100)
    # The left third holds the findings named in words.
    ax = figure.add_axes((0.40, 0.9 / height, 0.36, 1 - 1.35 / height))
    ax.axvline(50, color="#555", linestyle="--", linewidth=0.8)
    ax.axvline(100, color="#1f77b4", linestyle=":", linewidth=0.8)
    labels, notes = [], []
    for row, finding in enumerate(findings):
        y = len(findings) - 1 - row
        color = _STATUS_COLORS[finding.status]
        test = finding.sign
        labels.append(f"{row + 1}. {finding_title(finding.key)}")
        if finding.status == "not testable" or test.share is None:
            notes.append(
                finding.status
                if finding.status == "not testable"
                else f"{finding.status} · nothing decided"
                if finding.evidence
                else "no comparison"
            )
            continue
        ax.plot([100 * test.low, 100 * test.high], [y, y], color=color, linewidth=2.2, alpha=0.8)
        ax.plot([100 * test.share], [y], marker="o", markersize=6, color=color)
        detail = (
            "every dataset"
            if finding.test == EVERY_TEST
            else f"p = {test.p_value:.2g}"
            if test.p_value is not None
            else ""
        )
        notes.append(f"{finding.status} · {finding.wins}–{finding.losses} · {detail}")
    ax.set_yticks(range(len(findings)), list(reversed(labels)), fontsize=8)
    ax.set_ylim(-0.7, len(findings) - 0.3)
    ax.set_xlim(-2, 102)
    ax.set_xlabel("share of decided comparisons for the paper (%), 95% exact interval", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    for row, note in enumerate(notes):
        ax.text(
            1.02,
            len(findings) - 1 - row,
            note,
            transform=ax.get_yaxis_transform(),
            fontsize=7,
            va="center",
            color=_STATUS_COLORS[findings[row].status],
        )
    figure.text(
        0.25,
        1 - 0.3 / height,
        "Findings at a glance — dashed: no effect (50%) · dotted: the paper's claim (100%)",
        fontsize=9,
    )
    return png_bytes(figure)
