"""The report of a double-win experiment (build.py): report.md, a self-contained report.html
and figures, from sections (sections.py, control_section.py, verdict_section.py,
figure_sections.py, landscape_section.py, run_section.py) written as a document (document.py);
results.csv read and written by analysis/results_table.py."""

from doublewin.analysis.report.build import ReportPaths, analyse, build_report, write_report
from doublewin.analysis.results_table import read_results_csv, write_results_csv

__all__ = [
    "ReportPaths",
    "analyse",
    "build_report",
    "read_results_csv",
    "write_report",
    "write_results_csv",
]
