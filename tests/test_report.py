"""The experiment report on hand-made result tables: files, tables and the findings' rules."""

from __future__ import annotations

import re

import pytest

from doublewin.analysis.report import analyse, build_report, write_report
from doublewin.analysis.report.document import Figure
from doublewin.analysis.summaries import pretraining_kinds
from doublewin.analysis.verdict import VerdictConfig
from doublewin.core.errors import UserError

LADDER = (0.2, 0.36, 0.488, 0.5904, 0.67232)
META = {
    "name": "hand-made",
    "arch": "resnet18",
    "pretrainings": [
        {"label": "STD", "regime": "std", "source_sa": 70.0},
        {"label": "FAT", "regime": "fat"},
        {"label": "AT", "regime": "at"},
        {"label": "CONTROL", "regime": "control"},
    ],
}


def rows_for(
    pretraining,
    method,
    sparsity,
    *,
    st=(90.0, 10.0),
    at=(80.0, 40.0),
    imp_regime="std",
    fraction=1.0,
    dataset="cifar10",
    seeds=(0, 1),
    seconds=None,
):
    """Rows of one ticket (or the dense model) under ST and AT; seeds spread ±1 point around
    the given means (SA, RA), so two seeds have a standard deviation of √2 ≈ 1.41."""
    out = []
    for regime, (sa, ra) in (("st", st), ("at", at)):
        for i, seed in enumerate(seeds):
            offset = 0.0 if len(seeds) == 1 else (-1.0 if i % 2 == 0 else 1.0)
            row = {
                "pretraining": pretraining,
                "dataset": dataset,
                "fraction": fraction,
                "method": method,
                "imp_regime": "" if method == "dense" else imp_regime,
                "sparsity": sparsity,
                "regime": regime,
                "seed": seed,
                "sa_best_sa": sa + offset,
                "ra_best_sa": ra + offset - 3,
                "sa_best_ra": sa + offset - 3,
                "ra_best_ra": ra + offset,
            }
            if seconds is not None:
                row["seconds"] = seconds
            out.append(row)
    return out


def ladder(pretraining, last_double_win, *, method="imp", imp_regime="std", drop=10.0, **kwargs):
    """Dense rows and a ladder whose rungs up to ``last_double_win`` equal the dense model and
    whose higher rungs lose ``drop`` points on every metric (None: no rung is double-win)."""
    rows = rows_for(pretraining, "dense", 0.0, **kwargs)
    for sparsity in LADDER:
        good = last_double_win is not None and sparsity <= last_double_win
        loss = 0.0 if good else drop
        rows += rows_for(
            pretraining,
            method,
            sparsity,
            st=(90.0 - loss, 10.0 - loss),
            at=(80.0 - loss, 40.0 - loss),
            imp_regime=imp_regime,
            **kwargs,
        )
    return rows


def tickets_only(pretraining, last_double_win, **kwargs):
    return [r for r in ladder(pretraining, last_double_win, **kwargs) if r["method"] != "dense"]


def with_control(rows, *, st=(60.0, 5.0), at=(50.0, 20.0)):
    """``rows`` and a no-pre-training control's dense rows in each of their settings, by
    default far below the pre-trained ones (so pre-training helps and the findings about
    pre-training are testable)."""
    settings = sorted({(r["dataset"], r["fraction"]) for r in rows})
    seeds = tuple(sorted({r["seed"] for r in rows}))
    extra = []
    for dataset, fraction in settings:
        extra += rows_for(
            "CONTROL", "dense", 0.0, st=st, at=at, dataset=dataset, fraction=fraction, seeds=seeds
        )
    return rows + extra


# Six downstream datasets: six comparisons all one way are the fewest a sign test can call
# significant (two-sided p = 2 · 0.5^6 = 0.031).
SIX = ("cifar10", "cifar100", "svhn", "d4", "d5", "d6")


def across(build, datasets=SIX):
    """``build(dataset)`` (rows of one dataset) repeated over ``datasets``."""
    return [row for dataset in datasets for row in build(dataset)]


def finding(data, key):
    return next(f for f in data.findings if f.key == key)


def test_report_files_exist_and_the_html_is_self_contained(tmp_path):
    rows = ladder("STD", 0.36) + ladder("AT", 0.5904)
    paths = write_report(rows, tmp_path / "report", meta=META)
    assert paths.markdown.is_file() and paths.html.is_file()
    assert paths.figures and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths.figures)
    html = paths.html.read_text()
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|//)", html, re.I)
    assert "http://" not in html and "https://" not in html
    sources = re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", html)
    assert len(sources) == len(paths.figures)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in html and "<script" not in html
    # Markdown emphasis is rendered, not shown as asterisks.
    assert "**" not in html and "<em>matching</em>" in html
    markdown = paths.markdown.read_text()
    # Two seeds ±1: δ = max(1 point, the dense std √2) everywhere. The report opens with one
    # paragraph of what the run found, then the forest plot.
    assert "Margins δ used: 1.41–1.41 points" in markdown
    blocks = markdown.split("\n\n")
    assert blocks[1] == "## Findings at a glance"
    assert blocks[2].startswith("**What this run found:** of ") and blocks[3].startswith("![")
    assert "## Verdicts with intervals" in markdown
    for path in paths.figures:
        assert f"](figures/{path.name})" in markdown
    # No temporary files are left next to the outputs.
    assert not [p for p in (tmp_path / "report").rglob("*.tmp")]


def test_every_section_is_present_even_with_only_dense_rows(tmp_path):
    rows = rows_for("STD", "dense", 0.0)
    paths = write_report(rows, tmp_path, meta=META)
    markdown = paths.markdown.read_text()
    for title in (
        "Run",
        "Findings of the paper",
        "Dense baselines",
        "Double-win tickets",
        "Accuracy against sparsity",
        "Data efficiency",
        "Ticket methods at equal sparsity",
        "Compute",
    ):
        assert f"## {title}" in markdown
    assert "No ticket has been transferred yet" in markdown
    assert "data efficiency cannot be assessed" in markdown
    assert "no timing column" in markdown
    assert [p.name for p in paths.figures] == ["findings.png"]  # the forest plot only


def test_an_empty_table_still_gives_a_report_that_says_so(tmp_path):
    paths = write_report([], tmp_path, meta={"name": "nothing yet"})
    assert "No transfer run has finished yet" in paths.markdown.read_text()
    assert "No dense baseline has finished" in paths.html.read_text()


def test_the_double_win_table_holds_the_extreme_sparsity():
    rows = ladder("STD", 0.36) + ladder("AT", 0.5904)
    data = analyse(rows, meta=META)
    extremes = {e.pretraining: e.extreme for e in data.extremes}
    assert extremes == {"STD": 0.36, "AT": 0.5904}
    markdown = build_report(rows, meta=META)
    table = next(
        b
        for s in markdown.sections
        if s.title == "Double-win tickets"
        for b in s.blocks
        if getattr(b, "headers", None) == ("pre-training", "cifar10 · 100%")
    )
    assert dict(table.rows) == {"STD": "36.00%", "AT": "59.04%"}


def test_an_extreme_above_a_failing_rung_is_marked():
    rows = ladder("AT", 0.2)
    # Make the 48.8% rung double-win again although 36% is not.
    rows = [r for r in rows if r["sparsity"] != 0.488]
    rows += rows_for("AT", "imp", 0.488)
    (extreme,) = analyse(rows, meta=META).extremes
    assert extreme.extreme == 0.488 and extreme.all_lower_double_win is False
    text = "\n".join(str(b) for s in build_report(rows, meta=META).sections for b in s.blocks)
    assert "48.80% †" in text


def _robust_sparser(dataset):
    return (
        ladder("STD", 0.36, dataset=dataset)
        + ladder("FAT", 0.488, dataset=dataset)
        + ladder("AT", 0.5904, dataset=dataset)
    )


def test_robust_pretraining_sparser_than_standard_supports_the_paper():
    data = analyse(with_control(across(_robust_sparser)), meta=META)
    robust = finding(data, "robust-sparser")
    assert robust.status == "supports" and (robust.wins, robust.losses) == (6, 0)
    assert robust.sign.p_value == pytest.approx(0.03125)
    assert "59.04%" in robust.evidence[0] and "36.00%" in robust.evidence[0]
    assert "sign test p = 0.0312" in robust.summary
    order = finding(data, "order")
    assert order.status == "supports" and (order.wins, order.losses) == (18, 0)
    assert finding(data, "exist").status == "supports"


def test_the_same_effect_on_one_dataset_is_not_significant():
    data = analyse(with_control(_robust_sparser("cifar10")), meta=META)
    robust = finding(data, "robust-sparser")
    assert (robust.wins, robust.losses) == (1, 0) and robust.status == "cannot tell"
    assert robust.sign.p_value == 1.0 and "not significant at α = 0.05" in robust.summary
    order = finding(data, "order")  # 3–0: p = 0.25
    assert (order.wins, order.losses) == (3, 0) and order.status == "cannot tell"
    assert finding(data, "exist").status == "supports"  # every (one) dataset certified


def test_standard_pretraining_sparser_than_robust_contradicts_the_paper():
    rows = across(lambda d: ladder("STD", 0.5904, dataset=d) + ladder("AT", 0.2, dataset=d))
    data = analyse(with_control(rows), meta=META)
    robust = finding(data, "robust-sparser")
    assert robust.status == "contradicts" and (robust.wins, robust.losses) == (0, 6)
    assert "disagrees with the paper" in robust.summary
    assert finding(data, "order").status == "contradicts"


def test_equal_extremes_cannot_tell():
    data = analyse(with_control(ladder("STD", 0.488) + ladder("AT", 0.488)), meta=META)
    robust = finding(data, "robust-sparser")
    assert robust.status == "cannot tell" and (robust.wins, robust.losses) == (0, 0)


def test_no_matching_ticket_contradicts_existence_and_reads_as_no_rung():
    data = analyse(with_control(ladder("STD", None) + ladder("AT", None)), meta=META)
    assert all(e.extreme is None for e in data.extremes)
    exist = finding(data, "exist")
    assert exist.status == "contradicts" and exist.losses == 1
    robust = finding(data, "robust-sparser")
    assert robust.status == "cannot tell"
    assert "no double-win rung" in robust.evidence[0]
    text = "\n".join(
        str(b) for s in build_report(ladder("AT", None), meta=META).sections for b in s.blocks
    )
    assert "'none'" in text  # the double-win table says none, not a number


def test_ladders_below_the_nontrivial_sparsity_cannot_tell_existence():
    rows = [r for r in ladder("AT", None) if r["sparsity"] < 0.5]
    exist = finding(analyse(rows, meta=META), "exist")
    assert exist.status == "cannot tell"
    assert "AT's ladder has no rung ≥ 50%" in exist.evidence[0]


def test_missing_kinds_cannot_tell_and_say_what_to_add():
    data = analyse(with_control(ladder("AT", 0.5904)), meta=META)
    robust = finding(data, "robust-sparser")
    assert robust.status == "cannot tell" and "STD" in robust.note
    assert finding(data, "order").status == "cannot tell"
    assert finding(data, "imp-beats-omp").status == "cannot tell"
    assert finding(data, "landscape").status == "cannot tell"


def test_at_transfer_ra_far_above_st_supports_and_a_reversal_contradicts():
    def dense(st, at):
        return across(lambda d: rows_for("AT", "dense", 0.0, st=st, at=at, dataset=d))

    good = analyse(dense((90.0, 5.0), (80.0, 40.0)), meta=META)
    assert finding(good, "at-ra").status == "supports"
    bad = analyse(dense((90.0, 30.0), (80.0, 25.0)), meta=META)
    assert finding(bad, "at-ra").status == "contradicts"
    close = analyse(dense((90.0, 30.0), (80.0, 33.0)), meta=META)
    assert finding(close, "at-ra").status == "cannot tell"


def test_imp_beating_omp_and_random_at_equal_sparsity():
    rows = ladder("AT", 0.5904)
    rows += tickets_only("AT", None, method="omp", imp_regime="", drop=3.0)
    rows += tickets_only("AT", 0.67232, method="random", imp_regime="", drop=3.0)
    data = analyse(rows, meta=META)
    omp = finding(data, "imp-beats-omp")
    # IMP equals dense up to 59.04%, OMP is 3 points below everywhere: IMP wins at 4 rungs
    # and loses the last one (IMP 10 points below dense there, OMP only 3).
    # 4–1 is no evidence for a sign test (p = 0.375).
    assert (omp.wins, omp.losses) == (4, 1) and omp.status == "cannot tell"
    random = finding(data, "imp-beats-random")
    # random equals dense everywhere: ties at 4 rungs, IMP behind at the last.
    assert (random.wins, random.losses) == (0, 1) and random.status == "cannot tell"


def test_imp_beating_a_baseline_is_significant_insignificant_or_opposite_by_the_sign_test():
    def build(imp_last, omp_drop, datasets):
        return across(
            lambda d: (
                ladder("AT", imp_last, dataset=d)
                + tickets_only("AT", None, method="omp", imp_regime="", drop=omp_drop, dataset=d)
            ),
            datasets,
        )

    # IMP equals dense on every rung, OMP 3 points below: 30 comparisons for, none against.
    significant = finding(analyse(build(0.67232, 3.0, SIX), meta=META), "imp-beats-omp")
    assert (significant.wins, significant.losses) == (30, 0)
    assert significant.status == "supports" and significant.sign.p_value < 1e-8
    # One dataset and two rungs: 2 for, 0 against is p = 0.5.
    few = [r for r in build(0.67232, 3.0, ("cifar10",)) if r["sparsity"] in (0.0, 0.2, 0.36)]
    insignificant = finding(analyse(few, meta=META), "imp-beats-omp")
    assert (insignificant.wins, insignificant.losses) == (2, 0)
    assert insignificant.status == "cannot tell"
    # IMP 10 points below dense on every rung, OMP 3: every comparison against the paper.
    opposite = finding(analyse(build(None, 3.0, SIX), meta=META), "imp-beats-omp")
    assert (opposite.wins, opposite.losses) == (0, 30) and opposite.status == "contradicts"


def test_st_and_at_inside_imp_agreeing_supports_no_difference():
    rows = across(
        lambda d: (
            ladder("AT", 0.5904, dataset=d) + tickets_only("AT", 0.488, imp_regime="at", dataset=d)
        )
    )
    regime = finding(analyse(rows, meta=META), "imp-regime")
    assert regime.status == "supports" and "1 rung(s) apart" in regime.evidence[0]
    far = across(
        lambda d: (
            ladder("AT", 0.67232, dataset=d) + tickets_only("AT", 0.2, imp_regime="at", dataset=d)
        )
    )
    assert finding(analyse(far, meta=META), "imp-regime").status == "contradicts"
    alone = finding(analyse(ladder("AT", 0.5904), meta=META), "imp-regime")
    assert alone.status == "cannot tell" and "imp_regimes" in alone.note


def test_limited_data_findings_read_the_smaller_fractions():
    rows = []
    for fraction, (std, at) in ((1.0, (0.36, 0.488)), (0.1, (0.2, 0.5904)), (0.01, (None, 0.5904))):
        rows += ladder("STD", std, fraction=fraction) + ladder("AT", at, fraction=fraction)
    data = analyse(with_control(rows), meta=META)
    limited = finding(data, "robust-sparser-limited")
    assert limited.status == "cannot tell" and (limited.wins, limited.losses) == (2, 0)
    assert finding(data, "exist-limited").status == "supports"
    single = analyse(with_control(ladder("STD", 0.2) + ladder("AT", 0.36)), meta=META)
    assert finding(single, "robust-sparser-limited").status == "cannot tell"
    assert "single data fraction" in finding(single, "exist-limited").summary


def test_fat_ahead_at_low_and_at_ahead_at_high_sparsity_supports():
    rows = []
    for sparsity in LADDER:
        low = sparsity < 0.488
        fat, at = (85.0, 80.0) if low else (60.0, 70.0)
        rows += rows_for("FAT", "imp", sparsity, st=(fat, fat), at=(fat, fat), fraction=0.1)
        rows += rows_for("AT", "imp", sparsity, st=(at, at), at=(at, at), fraction=0.1)
    for fraction in (1.0, 0.1):
        rows += rows_for("FAT", "dense", 0.0, fraction=fraction)
        rows += rows_for("AT", "dense", 0.0, fraction=fraction)
    result = finding(analyse(with_control(rows), meta=META), "fat-low-at-high")
    # Median rung 48.8% is skipped: 2 low rungs with FAT ahead, 2 high rungs with AT ahead.
    # 4–0 is p = 0.125 under the sign test: in the paper's direction, not yet significant.
    assert (result.wins, result.losses) == (4, 0) and result.status == "cannot tell"


def test_one_seed_uses_the_fixed_tolerance_and_shows_no_spread(tmp_path):
    rows = rows_for("AT", "dense", 0.0, seeds=(0,))
    rows += rows_for("AT", "imp", 0.2, st=(89.5, 9.5), at=(79.5, 39.5), seeds=(0,))
    rows += rows_for("AT", "imp", 0.36, st=(88.0, 9.5), at=(79.5, 39.5), seeds=(0,))
    data = analyse(rows, meta=META, verdict_config=VerdictConfig(rule="paper", points=1.0))
    (extreme,) = data.extremes
    assert extreme.extreme == 0.2
    meta = {**META, "verdict": {"rule": "paper"}}
    markdown = write_report(rows, tmp_path, meta=meta).markdown.read_text()
    assert "(1 point when one seed ran)" in markdown
    assert "Matching tolerances used: 1.00–1.00 points" in markdown
    assert "| AT | cifar10 | 100% | ST | 1 | 90.00 | 10.00 |" in markdown


def test_the_verdict_config_comes_from_the_metadata_when_not_passed():
    rows = rows_for("AT", "dense", 0.0, seeds=(0,))
    rows += rows_for("AT", "imp", 0.2, st=(88.0, 10.0), seeds=(0,))
    strict = analyse(rows, meta={**META, "verdict": {"rule": "points", "points": 1.0}})
    loose = analyse(rows, meta={**META, "verdict": {"rule": "points", "points": 3.0}})
    assert strict.extremes[0].extreme is None and loose.extremes[0].extreme == 0.2
    with pytest.raises(UserError, match="verdict.tolerence"):
        analyse(rows, meta={"verdict": {"tolerence": "std"}})


def test_methods_meet_at_equal_sparsity_in_one_table():
    rows = ladder("AT", 0.5904) + tickets_only("AT", None, method="omp", imp_regime="")
    section = next(
        s
        for s in build_report(rows, meta=META).sections
        if s.title == "Ticket methods at equal sparsity"
    )
    table = section.blocks[-1]
    assert table.headers[-2:] == ("IMP (ST)", "OMP")
    first = table.rows[0]
    # Score = mean of ST SA 90, ST RA 10, AT SA 80, AT RA 40; OMP is 10 points lower.
    assert first[3] == "20.00%" and first[4] == "**55.00** ✓" and first[5] == "45.00 ✗"
    assert [b.name for b in section.blocks if isinstance(b, Figure)] == ["methods-cifar10.png"]
    alone = next(
        s
        for s in build_report(ladder("AT", 0.2), meta=META).sections
        if s.title == "Ticket methods at equal sparsity"
    )
    assert "single ticket method" in alone.blocks[0].text


def test_stale_figures_are_removed_on_rewrite(tmp_path):
    rows = ladder("AT", 0.2) + ladder("AT", 0.2, dataset="svhn")
    first = write_report(rows, tmp_path, meta=META)
    assert len(first.figures) == 3  # the forest plot and one accuracy figure per dataset
    second = write_report(ladder("AT", 0.2), tmp_path, meta=META)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(
        p.name for p in second.figures
    )


def test_compute_section_sums_the_seconds_per_stage_and_the_savings():
    rows = rows_for("AT", "dense", 0.0, seconds=1800.0)  # 4 runs of half an hour
    meta = {
        **META,
        "compute": {
            "pretrain": {"jobs": 3, "seconds": 5400.0, "passes": 3e6, "timed": 3},
            "transfer": {"jobs": 4, "seconds": 7200.0, "passes": 1e6, "timed": 4},
        },
        "on_demand": {"transfer_runs": 40, "fixed_max_runs": 100, "fixed_min_runs": 30, "waves": 3},
        "search": {"transfer_runs": 25, "full_grid_transfer_runs": 100},
    }
    section = next(s for s in build_report(rows, meta=meta).sections if s.title == "Compute")
    text = "\n".join(str(b) for b in section.blocks)
    assert "took 3.50 worker-hours" in text
    assert "('pretrain', '3', '1.500', '3e+06')" in text
    assert "40% of the 100" in text and "60 saved" in text
    assert "25 of the full grid's 100 transfer runs (25%; 75 saved)" in text
    assert "('AT', '2', '1800.0', '1.000')" in text


def test_a_row_without_a_verdict_column_is_a_user_error():
    rows = rows_for("AT", "dense", 0.0)
    del rows[1]["regime"]
    with pytest.raises(UserError, match="row 2 has no 'regime'"):
        analyse(rows)
    rows = rows_for("AT", "dense", 0.0)
    rows[0]["regime"] = "fat"
    with pytest.raises(UserError, match="not st or at"):
        analyse(rows)


def test_pretraining_kinds_come_from_metadata_then_from_the_plain_labels():
    kinds = pretraining_kinds(
        ["AT", "fat", "STD", "X", "AT-eps4", "madry", "torchvision"],
        {"pretrainings": {"X": {"regime": "at"}}},
    )
    # Only a kind's own name is read; other words in a label are never guessed at.
    assert kinds == {
        "AT": "at",
        "fat": "fat",
        "STD": "std",
        "X": "at",
        "AT-eps4": None,
        "madry": None,
        "torchvision": None,
    }


def test_pretraining_that_beats_the_control_helps_and_makes_the_findings_testable(tmp_path):
    rows = with_control(ladder("STD", 0.36) + ladder("AT", 0.5904))
    data = analyse(rows, meta=META)
    helps = finding(data, "pretraining-helps")
    # Both beat the control by 30 points of ST SA and 20 of AT RA; each side has two seeds ±1
    # around its mean, so Welch gives ± t(0.975, 2 df) · √2 = ± 6.1 points.
    # 2–0 is the paper's direction but no evidence for a sign test (p = 0.5).
    assert helps.status == "cannot tell" and (helps.wins, helps.losses) == (2, 0)
    assert "ST SA +30.0 [+23.9, +36.1], AT RA +20.0 [+13.9, +26.1]" in helps.evidence[0]
    assert data.control.testable == frozenset({("cifar10", 1.0)})
    markdown = write_report(rows, tmp_path, meta=META).markdown.read_text()
    assert "## Does pre-training help here?" in markdown
    assert "| STD | **+30.0 [+23.9, +36.1]** |" in markdown


def test_where_no_pretraining_beats_the_control_the_findings_about_pretraining_are_not_testable(
    tmp_path,
):
    rows = with_control(
        ladder("STD", 0.36) + ladder("AT", 0.5904), st=(95.0, 50.0), at=(90.0, 60.0)
    )
    data = analyse(rows, meta=META)
    helps = finding(data, "pretraining-helps")
    assert helps.status == "cannot tell" and (helps.wins, helps.losses) == (0, 2)
    for key in ("robust-sparser", "order"):
        result = finding(data, key)
        assert result.status == "not testable", key
        assert "beats the no-pre-training control" in result.note
        assert result.summary.startswith("Not testable in this setting")
    # Findings that do not compare pre-trainings are still judged.
    assert finding(data, "exist").status == "supports"
    markdown = write_report(rows, tmp_path, meta=META).markdown.read_text()
    assert "No pre-training beats the control in any setting" in markdown
    assert "**not testable**" in markdown


def test_without_a_control_whether_pretraining_helps_cannot_be_judged():
    data = analyse(ladder("STD", 0.36) + ladder("AT", 0.5904), meta=META)
    assert finding(data, "pretraining-helps").status == "cannot tell"
    robust = finding(data, "robust-sparser")
    assert robust.status == "not testable" and "no no-pre-training control" in robust.note


def test_one_seed_against_the_control_is_inconclusive():
    rows = with_control(ladder("STD", 0.36, seeds=(0,)) + ladder("AT", 0.5904, seeds=(0,)))
    data = analyse(rows, meta=META)
    assert {g.outcome for g in data.control.gains} == {"inconclusive"}
    assert finding(data, "pretraining-helps").status == "cannot tell"
    assert finding(data, "robust-sparser").status == "not testable"


def test_a_control_is_read_from_its_label_when_the_metadata_has_no_regime():
    kinds = pretraining_kinds(["CONTROL", "scratch", "STD"], {})
    assert kinds == {"CONTROL": "control", "scratch": None, "STD": "std"}


def _drawn(monkeypatch):
    """The matplotlib figures the report draws, kept instead of only their PNG bytes."""
    from doublewin.analysis.report import figures

    kept = []
    original = figures.png_bytes

    def keep(figure):
        kept.append(figure)
        return original(figure)

    monkeypatch.setattr(figures, "png_bytes", keep)
    return kept


def test_the_accuracy_figure_names_the_control_and_keeps_error_bars_within_0_to_100(
    monkeypatch,
):
    from doublewin.analysis.report import figures

    kept = _drawn(monkeypatch)
    # A ticket at 99.5% SA whose two seeds spread ±1: its interval would reach past 100.
    rows = with_control(
        rows_for("STD", "dense", 0.0) + rows_for("STD", "imp", 0.5, st=(99.5, 10.0))
    )
    data = analyse(rows, meta=META)
    figures.accuracy_vs_sparsity(
        data.cells, dataset="cifar10", fraction=1.0, ladder=("imp", "std"),
        pretrainings=["STD", "CONTROL"], double_win={},
    )  # fmt: skip
    figure = kept[-1]
    labels = [t.get_text() for legend in figure.legends for t in legend.get_texts()]
    assert "STD" in labels and "CONTROL (dense only)" in labels
    for ax in figure.axes:
        for collection in ax.collections:  # the error bars
            for segment in getattr(collection, "get_segments", lambda: [])():
                assert all(0.0 <= y <= 100.0 for _, y in segment)


def test_no_data_efficiency_figure_when_the_extremes_are_mostly_undecided():
    # Seeds far apart: every ticket's interval straddles the margin, nothing is decided.
    rows = []
    for fraction in (1.0, 0.1):
        for pretraining in ("STD", "AT"):
            rows += rows_for(pretraining, "dense", 0.0, fraction=fraction, seeds=(0, 1))
            # The ticket's seeds swap the dense spread: differences +2 and −3, undecided.
            rows += rows_for(pretraining, "imp", 0.5, fraction=fraction, seeds=(1, 0), st=(89.0, 9.0), at=(79.0, 39.0))  # fmt: skip
    document = build_report(rows, meta=META, verdict_config=VerdictConfig(rule="interval"))
    efficiency = next(s for s in document.sections if s.title == "Data efficiency")
    assert not any(isinstance(b, Figure) for b in efficiency.blocks)
    assert any("No figure: the extreme sparsity is decided at 0 of 4" in getattr(b, "text", "") for b in efficiency.blocks)  # fmt: skip


def test_the_headline_names_findings_in_words_and_the_tickets_shortfall_in_points():
    rows = with_control(
        across(lambda d: ladder("AT", 0.488, dataset=d) + ladder("STD", 0.2, dataset=d))
    )
    document = build_report(rows, meta=META)
    text = document.sections[0].blocks[0].text
    assert "(AT transfer keeps the RA that ST loses)" in text and "(at-ra)" not in text
    assert "largest shortfall from their dense models" in text
    assert re.search(r"at 67\.23%: STD -10\.0 \(\w\w \w\w\), AT -10\.0", text)


def test_an_open_verdict_at_the_plans_last_look_says_the_plan_is_spent():
    """With seeds on demand, a comparison still open at the plan's maximum is reported as
    needing more than the plan's seeds, not as 'beyond any practical count'."""
    from doublewin.analysis.verdict import SeedPlan

    seeds = tuple(range(6))
    rows = rows_for("AT", "dense", 0.0, seeds=seeds)
    ticket = rows_for("AT", "imp", 0.2, seeds=seeds)
    for row, noise in zip([r for r in ticket if r["regime"] == "at"], [2, -4] * 3, strict=True):
        row["ra_best_ra"] += noise
    config = VerdictConfig(seeds=SeedPlan(min=3, max=6, step=3))
    document = build_report(rows + ticket, meta=META, verdict_config=config)
    section = next(s for s in document.sections if s.title == "Verdicts with intervals")
    text = "\n".join(str(b) for b in section.blocks)
    assert "more than the plan's 6 seeds at this spread" in text
    assert "not within the plan's 6 seeds at this spread" in text
    assert "beyond any practical count" not in text
