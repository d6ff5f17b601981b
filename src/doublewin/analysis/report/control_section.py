"""The report's section "Does pre-training help here?": every pre-training's dense transfer
minus the no-pre-training control's, per dataset, fraction and regime, with 95% intervals
over seeds, and whether the paper's claims about pre-training can be tested at all."""

from __future__ import annotations

from doublewin.analysis.report.data import ReportData
from doublewin.analysis.report.document import Bullets, Paragraph, Section, Table
from doublewin.analysis.summaries import dense_cell, fraction_text
from doublewin.analysis.verdict.control import ENDPOINTS, Gain
from doublewin.core.results import METRICS, REGIMES

_COLUMNS = tuple(f"{r.upper()} Δ{m.upper()}" for r in REGIMES for m in METRICS)
_OUTCOME = {"helps": "**helps**", "hurts": "**hurts**", "inconclusive": "inconclusive"}


def pretraining_help_section(data: ReportData) -> Section:
    section = Section("Does pre-training help here?")
    comparison = data.control
    section.blocks.append(
        Paragraph(
            "The paper asks whether (robust) pre-training gives better sparse, robust "
            "tickets; that question only means something where pre-training helps at all. "
            "Each pre-training's dense transfer is compared with the no-pre-training control "
            "(the same architecture at its seeded initialization, not trained, transferred "
            "with the same recipe): differences of the means over seeds in points, pre-trained "
            "minus control, with their 95% Welch t-interval. A pre-training **helps** where its SA under "
            "ST and its RA under AT (the accuracy each regime is for) both beat the control's "
            "with the interval above zero, **hurts** where either interval lies below zero, "
            "and is inconclusive otherwise."
        )
    )
    if comparison.control is None:
        section.blocks.append(
            Paragraph(
                "**This run has no no-pre-training control**, so whether pre-training helps "
                "cannot be judged, and every finding about pre-training below says *not "
                "testable*. Add `CONTROL: {kind: control}` to `pretrain.runs`."
            )
        )
        return section
    by_setting: dict[tuple[str, float], list[Gain]] = {}
    for gain in comparison.gains:
        by_setting.setdefault((gain.dataset, gain.fraction), []).append(gain)
    for (dataset, fraction), gains in by_setting.items():
        control_values = []
        for regime in REGIMES:
            cell = dense_cell(data.cells, (comparison.control, dataset, fraction), regime)
            for metric in METRICS:
                value = None if cell is None else cell.metric(metric)
                control_values.append(
                    f"{regime.upper()} {metric.upper()} {value.text() if value else '—'}"
                )
        section.blocks.append(
            Paragraph(
                f"**{dataset} at {fraction_text(fraction)} data** — the control "
                f"({comparison.control}): {', '.join(control_values)}."
            )
        )
        rows = []
        for gain in gains:
            texts = []
            for regime in REGIMES:
                for metric in METRICS:
                    d = gain.differences.get((regime, metric))
                    bold = (regime, metric) in ENDPOINTS
                    text = "—" if d is None else d.text()
                    texts.append(f"**{text}**" if bold and d is not None else text)
            seeds = max((d.n for d in gain.differences.values() if d is not None), default=0)
            rows.append((gain.pretraining, *texts, str(seeds), _OUTCOME[gain.outcome]))
        section.blocks.append(Table(("pre-training", *_COLUMNS, "seeds", "outcome"), tuple(rows)))
    untested = [s for s in comparison.settings if s not in comparison.testable]
    if not comparison.testable:
        section.blocks.append(
            Paragraph(
                "**No pre-training beats the control in any setting of this run.** The "
                "paper's claims about pre-training cannot be tested here: the findings that "
                "compare pre-trainings say *not testable in this setting* instead of supports "
                "or contradicts."
            )
        )
    elif untested:
        section.blocks.append(
            Bullets(
                tuple(
                    f"{d} at {fraction_text(f)} data: no pre-training beats the control, so "
                    "the findings about pre-training skip it (not testable there)."
                    for d, f in untested
                )
            )
        )
    return section
