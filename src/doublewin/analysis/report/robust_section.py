"""The report's table in the Adversarial Pruning Benchmark's terms (Piras et al. 2024): per
method and rung, the clean and the AutoAttack accuracy of the transferred models.

Clean is test SA at the best-validation-RA checkpoint (``sa_best_ra``, the checkpoint AutoAttack
runs on); AutoAttack is ``aa``, standard AutoAttack on the first N test points
(``transfer.autoattack``), with the clean accuracy of those same points beside it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from doublewin.analysis.report.data import ReportData, is_number, pretraining_index, stat
from doublewin.analysis.report.document import Paragraph, Section, Table
from doublewin.analysis.summaries import fraction_text, ladder_label, percent
from doublewin.analysis.summaries import stat as summarize
from doublewin.core.results import DENSE, method_key, regime_of, setting_of, sparsity_of


def robust_benchmark_section(data: ReportData) -> Section:
    """Clean and AutoAttack accuracy per pre-training, dataset, fraction, method, rung and
    transfer regime (mean ± 95% half-width over seeds)."""
    section = Section("Clean and AutoAttack accuracy (the Adversarial Pruning Benchmark's terms)")
    measured = [r for r in data.rows if is_number(r.get("aa"))]
    if not measured:
        section.blocks.append(
            Paragraph(
                "No transfer measured AutoAttack. Set `transfer.autoattack: N` in the experiment "
                "(standard AutoAttack on the first N test points of every transferred model) to "
                "get the clean and AutoAttack accuracy the Adversarial Pruning Benchmark reports."
            )
        )
        return section
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for row in measured:
        key = (
            *setting_of(row),
            method_key(row),
            str(row.get("imp_regime") or ""),
            sparsity_of(row),
            regime_of(row),
        )
        groups[key].append(row)
    order = sorted(
        groups,
        key=lambda k: (pretraining_index(data, k[0]), k[1], -k[2], k[3] != DENSE, k[3], k[5], k[6]),
    )
    rows = []
    for key in order:
        label, dataset, fraction, method, imp_regime, sparsity, regime = key
        runs = groups[key]
        clean = summarize(float(r["sa_best_ra"]) for r in runs if is_number(r.get("sa_best_ra")))
        robust = summarize(float(r["aa"]) for r in runs)
        same = summarize(float(r["sa_aa_points"]) for r in runs if is_number(r.get("sa_aa_points")))
        points = sorted({int(float(r.get("aa_points") or 0)) for r in runs})
        rows.append(
            (
                label,
                f"{dataset}, {fraction_text(fraction)}",
                "dense" if method == DENSE else ladder_label(method, imp_regime),
                "—" if method == DENSE else percent(sparsity),
                regime.upper(),
                stat(clean),
                stat(robust),
                stat(same),
                "/".join(f"{p:,}" for p in points),
                str(len(runs)),
            )
        )
    section.blocks.append(
        Paragraph(
            "Clean: test SA of the best-validation-RA checkpoint (all test images); AutoAttack: "
            "standard AutoAttack accuracy of that checkpoint on the first N test images, with "
            "the clean accuracy of the same images beside it. Mean ± half-width of the 95% "
            "interval over seeds, points."
        )
    )
    section.blocks.append(
        Table(
            (
                "pre-training",
                "data",
                "method",
                "sparsity",
                "transfer",
                "clean",
                "AutoAttack",
                "clean on N",
                "N",
                "seeds",
            ),
            tuple(rows),
        )
    )
    return section
