"""The paper's findings, each judged on a run's rows by an explicit rule: the registry
(registry.py), the shared rules and their tests (finding.py) and one module per family of
claims (accuracy.py, sparsity.py, landscape.py)."""

from doublewin.analysis.findings.registry import Finding, FindingsInput, decide, findings

__all__ = ["Finding", "FindingsInput", "decide", "findings"]
