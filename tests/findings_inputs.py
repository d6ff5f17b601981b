"""Hand-built inputs for the findings' rules (test_findings_accuracy.py,
test_findings_sparsity.py): cells with given accuracies, ladders with given extremes, and a
comparison with the control that marks chosen settings testable."""

from __future__ import annotations

from doublewin.analysis.findings.finding import FindingsInput
from doublewin.analysis.summaries import Cell, CellKey, Stat, extremes_by_setting
from doublewin.analysis.verdict import ExtremeSparsity
from doublewin.analysis.verdict.control import ControlComparison, Gain
from doublewin.analysis.verdict.stats import Interval

KINDS = {"STD": "std", "FAT": "fat", "AT": "at", "CONTROL": "control"}
IMP = ("imp", "std")
UNTESTABLE = "no pre-training's dense transfer beats the no-pre-training control here"


def put(
    cells: dict,
    label: str,
    method: str,
    sparsity: float,
    *,
    st: tuple[float | None, float | None] = (90.0, 80.0),
    at: tuple[float | None, float | None] = (85.0, 85.0),
    fraction: float = 1.0,
    dataset: str = "digits",
    imp_regime: str | None = None,
) -> dict:
    """Add one ticket's (or the dense model's) ST and AT cells, one seed each: (SA, RA) per
    regime, None for a missing accuracy."""
    if imp_regime is None:
        imp_regime = "std" if method == "imp" else ""
    for regime, (sa, ra) in (("st", st), ("at", at)):
        key = CellKey(label, dataset, fraction, method, imp_regime, sparsity, regime)
        cells[key] = Cell(key, _stat(sa), _stat(ra), (0,))
    return cells


def score(cells: dict, label: str, sparsity: float, value: float, **kwargs) -> dict:
    """A ticket whose four accuracies all equal ``value`` (so its ticket score is ``value``);
    IMP (ST) unless ``method`` is given."""
    method = kwargs.pop("method", "imp")
    return put(cells, label, method, sparsity, st=(value, value), at=(value, value), **kwargs)


def _stat(value: float | None) -> Stat | None:
    return None if value is None else Stat(value, None, 1)


def comparison(
    testable=(("digits", 1.0), ("digits", 0.1)), *, control: str | None = "CONTROL", gains=()
) -> ControlComparison:
    return ControlComparison(control, tuple(gains), frozenset(testable), ())


def gain(label: str, outcome: str, st: Interval | None, at: Interval | None, fraction=0.1):
    return Gain(label, "digits", fraction, {("st", "sa"): st, ("at", "ra"): at}, outcome)


def data(cells=None, *, kinds=KINDS, control=None, extremes=()) -> FindingsInput:
    return FindingsInput(
        cells or {}, tuple(extremes), kinds, control if control is not None else comparison()
    )


def extreme(
    label: str,
    value: float | None,
    rungs: tuple[tuple[float, bool | None], ...],
    *,
    dataset: str = "digits",
    fraction: float = 1.0,
    ladder: tuple[str, str] = IMP,
    inconclusive: tuple[float, ...] = (),
) -> ExtremeSparsity:
    return ExtremeSparsity(label, dataset, fraction, *ladder, value, True, rungs, inconclusive)


def ladders(*extremes: ExtremeSparsity) -> dict:
    return extremes_by_setting(extremes)


# A ladder of three rungs double-win up to the given one (the rungs above fail).
RUNGS = (0.5, 0.75, 0.875)


def up_to(label: str, last: float | None, **kwargs) -> ExtremeSparsity:
    rungs = tuple((s, last is not None and s <= last) for s in RUNGS)
    return extreme(label, last, rungs, **kwargs)


def assert_same_texts_on_every_path(paths: dict) -> None:
    """``paths``: a rule's key → the findings it returned on different inputs. Each carries
    that key, one claim and paper text on every path, and a rule in words (the rule names the
    ladder it reads, so it may differ between paths)."""
    for key, findings in paths.items():
        assert {f.key for f in findings} == {key}
        texts = {(f.claim, f.paper) for f in findings}
        assert len(texts) == 1, key
        words = [*texts.pop(), *(f.rule for f in findings)]
        assert all(isinstance(t, str) and len(t.split()) >= 2 for t in words), key
