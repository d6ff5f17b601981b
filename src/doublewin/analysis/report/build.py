"""The report of a double-win experiment: report.md, a self-contained report.html, figures.

``write_report`` reads the result rows (one per transfer run, the columns of results.csv) and
the experiment's metadata, judges every ticket with the double-win verdict, checks the paper's
findings by explicit rules (findings.py) and writes, each file atomically::

    out_dir/report.md          Markdown; figures linked as figures/*.png
    out_dir/report.html        one file: inline CSS, the same PNGs embedded as data URIs
    out_dir/figures/*.png

Metadata (all keys optional): ``name``, ``arch``, ``description``, ``pretrainings`` (a list of
dicts with ``label`` and optionally ``regime`` std|fat|at, ``source_sa``, ``source_ra`` in
points, ``weights``, ``collapsed``; or a mapping label → such a dict), ``verdict`` (the fields
of ``VerdictConfig``, used when no ``verdict_config`` is passed) and ``search`` (what the
adaptive extreme-sparsity search did). docs/report.md describes every section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doublewin.analysis.findings import FindingsInput, findings
from doublewin.analysis.report import (
    control_section,
    figure_sections,
    landscape_section,
    macs_section,
    robust_section,
    run_section,
    sections,
    verdict_section,
)
from doublewin.analysis.report.data import ReportData
from doublewin.analysis.report.document import Document, Figure, Paragraph, to_html, to_markdown
from doublewin.analysis.summaries import (
    aggregate,
    meta_pretrainings,
    pretraining_kinds,
    primary_ladder,
)
from doublewin.analysis.table_check import check_rows
from doublewin.analysis.verdict import (
    VerdictConfig,
    extreme_sparsities,
    rung_numbers,
    verdicts,
)
from doublewin.analysis.verdict.control import compare_with_control
from doublewin.core import paths
from doublewin.core.atomic import atomic_write_bytes, atomic_write_text
from doublewin.core.errors import UserError
from doublewin.core.results import SPARSITY_DIGITS


@dataclass(frozen=True)
class ReportPaths:
    """Where the report went."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]


def write_report(
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    meta: Mapping[str, Any] | None = None,
    verdict_config: VerdictConfig | None = None,
) -> ReportPaths:
    """Analyse ``rows`` and write report.md, report.html and figures/*.png under ``out_dir``.

    Figures from an earlier report that this one no longer draws are removed, so the folder
    always matches the report. Raises ``UserError`` when a row lacks a verdict column."""
    document = build_report(rows, meta=meta, verdict_config=verdict_config)
    out_dir = Path(out_dir)
    figure_dir = out_dir / paths.FIGURES_DIR
    written = []
    for figure in document.figures:
        path = figure_dir / figure.name
        atomic_write_bytes(path, figure.png)
        written.append(path)
    markdown = out_dir / paths.REPORT_MARKDOWN
    html = out_dir / paths.REPORT_HTML
    atomic_write_text(markdown, to_markdown(document, paths.FIGURES_DIR))
    atomic_write_text(html, to_html(document))
    if figure_dir.is_dir():
        keep = {p.name for p in written}
        for stale in figure_dir.glob(paths.figure("*")):
            if stale.name not in keep:
                stale.unlink()
    return ReportPaths(markdown, html, tuple(written))


def build_report(
    rows: Sequence[Mapping[str, Any]],
    *,
    meta: Mapping[str, Any] | None = None,
    verdict_config: VerdictConfig | None = None,
) -> Document:
    """The report as a ``Document`` (sections of text, tables and PNG figures), unwritten."""
    data = analyse(rows, meta=meta, verdict_config=verdict_config)
    accuracy, accuracy_figures = figure_sections.accuracy_section(data)
    efficiency, efficiency_figures = figure_sections.data_efficiency_section(data)
    methods, methods_figures = figure_sections.methods_section(data)
    supertickets, macs_figures = macs_section.macs_section(data)
    glance, glance_figures = verdict_section.glance_section(data)
    landscapes, landscape_figures = landscape_section.landscape_section(data)
    name = (meta or {}).get("name")
    document = Document(
        f"Double-win report: {name}" if name else "Double-win report",
        [
            glance,
            run_section.run_section(data),
            control_section.pretraining_help_section(data),
            sections.findings_section(data),
            sections.dense_section(data),
            sections.double_win_section(data),
            verdict_section.verdicts_section(data),
            accuracy,
            efficiency,
            methods,
            *([supertickets] if supertickets is not None else []),
            robust_section.robust_benchmark_section(data),
            landscapes,
            run_section.compute_section(data),
        ],
    )
    if not rows:
        document.sections[1].blocks.insert(
            0,
            Paragraph(
                "**No transfer run has finished yet**: every section below is empty. Run the "
                "experiment (`doublewin run EXPERIMENT.yaml`), then `doublewin report RUN_DIR`."
            ),
        )
    _check_names(
        glance_figures
        + accuracy_figures
        + efficiency_figures
        + methods_figures
        + macs_figures
        + landscape_figures
    )
    return document


def analyse(
    rows: Sequence[Mapping[str, Any]],
    *,
    meta: Mapping[str, Any] | None = None,
    verdict_config: VerdictConfig | None = None,
) -> ReportData:
    """Verdicts, extremes, per-cell means and findings of ``rows`` (see ``ReportData``)."""
    meta = meta or {}
    rows = list(rows)
    check_rows(rows)
    config = verdict_config or _config_from_meta(meta)
    cells = aggregate(rows, config)
    ticket_verdicts = verdicts(rows, config)
    extremes = extreme_sparsities(ticket_verdicts, meta_ladders(meta), rung_numbers(rows))
    ordered = [str(p.get("label")) for p in meta_pretrainings(meta)]
    seen = {str(r["pretraining"]) for r in rows}
    pretrainings = [p for p in ordered if p in seen] + sorted(seen - set(ordered))
    kinds = pretraining_kinds(pretrainings, meta)
    ladders = sorted(
        {k.ladder for k in cells if k.method != "dense"},
        key=lambda ladder: (ladder[0] != "imp", ladder),
    )
    control = compare_with_control(rows, kinds, pretrainings, config)
    primary = primary_ladder(ladders)
    if primary in ladders:  # the headline ladder first in every table
        ladders.remove(primary)
        ladders.insert(0, primary)
    return ReportData(
        rows=rows,
        meta=meta,
        config=config,
        cells=cells,
        verdicts=ticket_verdicts,
        extremes=extremes,
        kinds=kinds,
        pretrainings=pretrainings,
        datasets=sorted({str(r["dataset"]) for r in rows}),
        fractions=sorted({float(r["fraction"]) for r in rows}, reverse=True),
        ladders=ladders,
        primary=primary,
        findings=findings(
            FindingsInput(cells, extremes, kinds, control, tuple(meta.get("landscapes") or ()))
        ),
        control=control,
    )


def meta_ladders(meta: Mapping[str, Any]) -> dict[tuple[str, str, str], tuple[float, ...]]:
    """(pre-training, method, IMP regime) → every rung's sparsity, from the metadata's
    ``ladders`` (a list of mappings with those keys and ``sparsities``); malformed items are
    left out (the ladder is then read from the rows)."""
    out = {}
    for item in meta.get("ladders") or ():
        try:
            key = (str(item["pretraining"]), str(item["method"]), str(item.get("imp_regime") or ""))
            out[key] = tuple(round(float(s), SPARSITY_DIGITS) for s in item["sparsities"])
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _config_from_meta(meta: Mapping[str, Any]) -> VerdictConfig:
    raw = meta.get("verdict")
    return VerdictConfig.from_mapping(raw if isinstance(raw, Mapping) else None)


def _check_names(made: Sequence[Figure]) -> None:
    names = [f.name for f in made]
    if len(names) != len(set(names)):  # two datasets whose names differ only in punctuation
        raise UserError(
            "two figures would share a file name; give the datasets names that "
            "differ in letters or digits"
        )
