"""The verdict rule of a run in words: the report's run section and `doublewin verdict` print
it."""

from __future__ import annotations

from typing import Any

from doublewin.analysis.report.data import points
from doublewin.analysis.verdict import VerdictConfig


def on_demand_text(spent: Any, config: VerdictConfig) -> str:
    """What seeds on demand spent (the run's ``on_demand`` metadata), as one sentence."""
    if not spent or config.seeds is None:
        return ""
    share = spent["transfer_runs"] / max(1, spent["fixed_max_runs"])
    return (
        f" Seeds on demand spent {spent['transfer_runs']} transfer runs in {spent['waves']} "
        f"waves: {share:.0%} of the {spent['fixed_max_runs']} that {config.seeds.max} seeds "
        f"everywhere take ({spent['fixed_min_runs']} for {config.seeds.min})."
    )


def verdict_rule(config: VerdictConfig) -> str:
    """The matching rule of ``config`` in a few sentences."""
    selection = {
        "per-metric": "SA at the best-validation-SA checkpoint and RA at the best-validation-RA "
        "checkpoint",
        "best-sa": "SA and RA both at the best-validation-SA checkpoint",
        "best-ra": "SA and RA both at the best-validation-RA checkpoint",
    }[config.selection]
    multiplier = "" if config.std_multiplier == 1 else f"{config.std_multiplier:g} × "
    if config.rule == "interval":
        pairing = "paired by seed" if config.pairing == "seed" else "Welch's, unpaired"
        single = (
            "with one seed the single difference is held against δ"
            if config.single_seed == "margin"
            else "with one seed there is no interval and the comparison is inconclusive"
        )
        rule = (
            f"**Verdict rule (interval).** For each ticket, regime and metric, the ticket − "
            f"dense difference over the seeds both ran gets its {100 * config.confidence:g}% "
            f"t-interval ({pairing}). The margin is δ = max({points(config.margin_floor)}, "
            f"{multiplier}the dense runs' standard deviation). The ticket is *matching* when "
            "the interval's lower end is ≥ −δ, *not matching* when its upper end is < −δ, and "
            f"*inconclusive* otherwise; {single}."
        )
    elif config.rule == "paper":
        rule = (
            "**Verdict rule (paper).** A ticket *matches* on a metric under a transfer regime "
            f"when its mean is at least the dense mean minus {multiplier}the dense runs' "
            f"standard deviation ({points(config.points)} when one seed ran), over the seeds "
            "both ran."
        )
    else:
        rule = (
            "**Verdict rule (points).** A ticket *matches* on a metric under a transfer regime "
            f"when its mean is at least the dense mean minus {points(config.points)}, over the "
            "seeds both ran."
        )
    if config.rule == "interval" and config.seeds is not None:
        plan = config.seeds
        rule += (
            f" **Seeds on demand** ({plan.spending} boundaries): every ticket ran "
            f"{plan.min} seeds, then only its still inconclusive regimes got {plan.step} more "
            f"at a time, up to {plan.max}; each comparison is judged at the last planned look "
            f"its seeds reach ({', '.join(map(str, plan.looks))} seeds), with that look's "
            "group-sequential interval, which keeps the chance of certifying a ticket exactly "
            f"δ below its dense model at most {50 * (1 - config.confidence):g}% on each side "
            "over the whole sequence."
        )
    counted = "SA and RA" if "ra" in config.st_metrics else "SA only"
    return (
        f"{rule} A ticket is *double-win* when it matches on SA and RA under AT transfer and "
        f"on {counted} under ST transfer; *not double-win* when any of those is not matching; "
        f"*inconclusive* otherwise. Accuracies are read as {selection}."
    )
