"""The report's section "Loss landscapes (Figure 6)": the contour-plus-trajectory grid laid out
as the paper's Figure 6 (data fractions × pre-trainings, the first seed), the sharpness of
every pre-training × fraction with its 95% interval over seeds, and finding 11 as judged."""

from __future__ import annotations

from pathlib import Path

from doublewin.analysis.report.data import ReportData
from doublewin.analysis.report.document import Figure, Paragraph, Section, Table
from doublewin.analysis.report.landscape_figure import Panel, grid_png
from doublewin.analysis.summaries import fraction_text, percent
from doublewin.analysis.verdict.stats import mean_interval
from doublewin.core import paths

FIGURE_STEM = "landscapes"


def _ordered(data: ReportData, labels: set[str]) -> list[str]:
    known = [p for p in data.pretrainings if p in labels]
    return known + sorted(labels - set(known))


def landscape_section(data: ReportData) -> tuple[Section, list[Figure]]:
    section = Section("Loss landscapes (Figure 6)")
    items = [i for i in (data.meta.get("landscapes") or ()) if i.get("sharpness") is not None]
    finding = next((f for f in data.findings if f.key == "landscape"), None)
    if not items:
        section.blocks.append(
            Paragraph(
                "No loss landscape was computed in this run. Add `analysis.landscape` to the "
                "experiment (docs/landscape.md) to draw the paper's Figure 6 and judge "
                "finding 11."
            )
        )
        return section, []
    section.blocks.append(
        Paragraph(
            "Each ticket is transferred again with its trajectory recorded; the loss (over a "
            "fixed sample of training images, BatchNorm in eval mode) is evaluated on a plane "
            "through its final weights (star), with the trajectory projected onto it (square: "
            "the start, m ⊙ θp). All panels share one set of contour levels. **Sharpness** is "
            "the mean loss increase within the stated radius on a filter-normalized random "
            "plane (Li et al. 2018), so it compares networks of different weight scales; the "
            "top Hessian eigenvalue (power iteration) is shown beside it."
        )
    )
    figures = []
    for dataset in sorted({str(i["dataset"]) for i in items}):
        chosen = [i for i in items if str(i["dataset"]) == dataset]
        figure = _landscape_figure(data, dataset, chosen)
        if figure is not None:
            figures.append(figure)
            section.blocks.append(figure)
        section.blocks.append(_sharpness_table(data, dataset, chosen))
    if finding is not None:
        number = list(data.findings).index(finding) + 1
        evidence = "; ".join(finding.evidence)
        section.blocks.append(
            Paragraph(
                f"**Finding {number}** (the table *Findings*): {finding.summary} "
                f"Rule: {finding.rule}" + (f" Comparisons: {evidence}." if evidence else "")
            )
        )
    return section, figures


def _landscape_figure(data: ReportData, dataset: str, chosen: list[dict]) -> Figure | None:
    """The dataset's Figure 6 grid: rows the data fractions, columns the pre-trainings, each
    panel the first seed's landscape (None when no grid file is there)."""
    first_seed = min(int(i["seed"]) for i in chosen)
    fractions = sorted({float(i["fraction"]) for i in chosen}, reverse=True)
    columns = _ordered(data, {str(i["pretraining"]) for i in chosen})
    rows = [f"{fraction_text(f)} data" for f in fractions]
    panels = [
        Panel(
            Path(str(i["grid"])),
            f"{fraction_text(float(i['fraction']))} data",
            str(i["pretraining"]),
            f"sharpness {float(i['sharpness']):.3g}",
        )
        for i in chosen
        if int(i["seed"]) == first_seed and Path(str(i["grid"])).is_file()
    ]
    if not panels:
        return None
    sparsity = percent(float(chosen[0]["sparsity"]))
    return Figure(
        paths.figure(f"{FIGURE_STEM}-{dataset}"),
        grid_png(panels, rows, columns),
        f"{dataset}: loss contours and trajectories of the {sparsity} tickets under AT "
        f"(seed {first_seed}); rows: data fractions, columns: pre-trainings.",
    )


def _sharpness_table(data: ReportData, dataset: str, chosen: list[dict]) -> Table:
    """Per data fraction × pre-training: sharpness and the top Hessian eigenvalue over seeds."""
    fractions = sorted({float(i["fraction"]) for i in chosen}, reverse=True)
    table_rows = []
    for fraction in fractions:
        for label in _ordered(data, {str(i["pretraining"]) for i in chosen}):
            group = [
                i
                for i in chosen
                if float(i["fraction"]) == fraction and str(i["pretraining"]) == label
            ]
            if not group:
                continue
            sharp = mean_interval([float(i["sharpness"]) for i in group])
            hessian = mean_interval(
                [float(i["hessian_top"]) for i in group if i.get("hessian_top") is not None]
            )
            table_rows.append(
                (
                    fraction_text(fraction),
                    label,
                    str(data.kinds.get(label) or "—").upper(),
                    _text(sharp),
                    _text(hessian),
                    str(len(group)),
                )
            )
    return Table(
        ("data", "pre-training", "kind", "sharpness", "top Hessian eigenvalue", "seeds"),
        tuple(table_rows),
        f"{dataset}: mean ± 95% t-interval half-width over seeds (lower is flatter).",
    )


def _text(interval) -> str:
    if interval is None:
        return "—"
    if interval.low is None:
        return f"{interval.mean:.4g}"
    return f"{interval.mean:.4g} ± {(interval.high - interval.mean):.2g}"
