"""The Python API on a model doublewin has never seen: the docs/python.md example runs verbatim
and gets tickets, transfers and a verdict; and the API's objects are the command line's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import doublewin
from doublewin.core.errors import UserError
from doublewin.tickets import Ticket

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    return max(blocks, key=len)


def test_the_python_docs_example_runs_verbatim_and_judges_its_tickets(capsys):
    scope: dict = {}
    exec(compile(_example(), str(DOC), "exec"), scope)  # noqa: S102
    report, tickets, rows = scope["report"], scope["tickets"], scope["rows"]
    assert all(isinstance(t, Ticket) for t in tickets) and len(tickets) == 2
    assert [round(t.mask.sparsity, 2) for t in tickets] == [0.5, 0.9]
    assert set(tickets[0].mask) == {"features.0.weight", "features.3.weight"}
    # Each ticket records what it was drawn from: the caller's tensors and weights, by hash.
    spec = tickets[0].info.spec
    assert spec["data"]["name"] == "tensors" and spec["weights"] == tickets[0].info.weights_hash
    assert len(spec["weights"]) >= 16
    assert len(rows) == 3 * 3 * 2 and {r["regime"] for r in rows} == {"st", "at"}
    assert {v.key.sparsity for v in report.verdicts} == {0.5, 0.9}
    assert all(
        v.outcome in ("double-win", "not double-win", "inconclusive") for v in report.verdicts
    )
    out = capsys.readouterr().out
    assert "omp at 50%:" in out and "'sa'" in out


def test_a_model_whose_head_cannot_be_found_is_asked_for_head():
    class Headless(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.body(x).mean((2, 3))

    data = (torch.rand(8, 3, 8, 8), torch.arange(8) % 4)
    with pytest.raises(UserError, match="head="):
        doublewin.find_tickets(Headless(), data, method="omp", sparsities=[0.5])
