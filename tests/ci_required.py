"""Under CI=true (.ci/run), a skip of a test that needs a cluster service fails the run.

A fresh CI machine installs what those tests need (`make cluster-deps`: Slurm and munge; Ray
with the test extras), so there a skip means a missing install step, not a machine without
Slurm. A developer's machine without root may still skip them; the skip says why."""

from __future__ import annotations

import os

REQUIRED_IN_CI = ("tests/test_slurm.py", "tests/test_ray.py")


def _skipped_required(terminalreporter) -> list[str]:
    out = []
    for report in terminalreporter.stats.get("skipped", []):
        if any(report.nodeid.startswith(path) for path in REQUIRED_IN_CI):
            reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
            out.append(f"{report.nodeid}: {reason}")
    return out


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if os.environ.get("CI") != "true":
        return
    skipped = _skipped_required(terminalreporter)
    if skipped:
        terminalreporter.write_line(
            "CI=true: cluster tests skipped; run `make cluster-deps` (as root) first:", red=True
        )
        for line in skipped:
            terminalreporter.write_line(f"  {line}", red=True)


def pytest_sessionfinish(session, exitstatus) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") == "true" and reporter is not None and _skipped_required(reporter):
        session.exitstatus = 1
