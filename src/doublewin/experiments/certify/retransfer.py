"""`doublewin verify --transfer`: a ticket export's ST and AT transfers run again for the
seeds asked, each held against the certified per-seed range, their mean difference from the
certified dense numbers against the certified interval, and the verdict judged again under
the certificate's rule against its dense numbers.

The transfers run through a store under the cache (core/paths.verify_work), so an interrupted
verification resumes and a second one reuses them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from doublewin.analysis.verdict import TicketKey, metric_value
from doublewin.analysis.verdict.claim import recorded_values, rejudge
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.results import METRICS, REGIMES, UNSTRUCTURED
from doublewin.core.specs import TransferSpec
from doublewin.core.typed import from_dict, to_dict
from doublewin.experiments.certify.checks import Check, span, within
from doublewin.experiments.certify.remeasure import same_split
from doublewin.experiments.store.store import Store
from doublewin.stages import Environment, Inputs, run_stage
from doublewin.tickets.certificate import tolerance

Values = Mapping[str, Mapping[str, Mapping[int, float]]]  # regime → metric → seed → points


def transfer_seeds(claim: Mapping[str, Any], asked: Sequence[int] | None) -> list[int]:
    """The seeds to rerun: those asked (each one the claim has), else every claimed seed."""
    claimed = sorted({r["seed"] for regime in REGIMES for r in claim["regimes"][regime]["seeds"]})
    if asked is None:
        return claimed
    unknown = sorted(set(asked) - set(claimed))
    if unknown:
        raise UserError(
            f"--seeds: the certificate claims seeds {', '.join(map(str, claimed))}, not "
            f"{', '.join(map(str, unknown))}; pass some of those"
        )
    return sorted(set(asked))


def retransfer(
    folder: Path,
    document: Mapping[str, Any],
    sha256: str,
    data: str,
    *,
    seeds: Sequence[int] | None,
    points_tolerance: float | None,
    work: Path | None,
    env: Environment,
) -> tuple[list[Check], list[str]]:
    """Rerun the claim's transfers of ``seeds`` from the exported ticket (in the store at
    ``work``, default core/paths.verify_work) and check them."""
    claim = document["claim"]
    if document["kind"] != "ticket":
        raise UserError(
            "--transfer reruns a ticket's transfers; this export is a fine-tuned model: verify "
            "it without --transfer"
        )
    if document["ticket"]["pattern"] == "channel":
        raise UserError(
            "--transfer: a channel export holds the physically smaller network, which trains "
            "differently from the masked ticket; verify a channel ticket's transfers from its "
            "run, or export it as an unstructured ticket"
        )
    chosen = transfer_seeds(claim, seeds)
    specs = {
        (regime, seed): from_dict(
            TransferSpec,
            {**claim["transfer"][regime], "seed": seed},
            path=f"claim.transfer.{regime}",
        )
        for regime in REGIMES
        for seed in chosen
    }
    first = next(iter(specs.values()))
    same_split(_named(first, data).data, claim["test_split_hash"], env.data_root, f"--data {data}")
    store = Store(work if work is not None else paths.verify_work(sha256))
    inputs = Inputs(weights=folder / paths.WEIGHTS, ticket=folder / paths.EXPORT_TICKET)
    selection = claim["rule"]["selection"]
    measured: dict[str, dict[str, dict[int, float]]] = {
        r: {m: {} for m in METRICS} for r in REGIMES
    }
    for (regime, seed), spec in specs.items():
        spec = _named(spec, data)
        entry = store.get_or_run(
            "transfer",
            spec,
            lambda entry, spec=spec: run_stage(
                "transfer",
                spec,
                inputs,
                entry.path,
                device=env.device,
                data_root=env.data_root,
                progress=env.progress,
            ),
            resumable=True,
        )
        metrics = entry.metrics()
        for metric in METRICS:
            value = metric_value(metrics, metric, selection)
            if value is not None:
                measured[regime][metric][seed] = value
    tol = points_tolerance if points_tolerance is not None else tolerance(claim["test_images"])
    verdict, notes = _verdict(document, measured, chosen)
    notes.append(f"the transfers ran in {store.root} (kept: a second verification reuses them)")
    return _checks(document, measured, tol) + verdict, notes


def _named(spec: TransferSpec, data: str) -> TransferSpec:
    """``spec`` on the user's ``--data`` (a ``folder:`` dataset may sit elsewhere here)."""
    if spec.data.name == data:
        return spec
    fields = to_dict(spec)
    fields["data"]["name"] = data
    return from_dict(TransferSpec, fields)


def _checks(document: Mapping[str, Any], measured: Values, tol: float) -> list[Check]:
    claim = document["claim"]
    ticket = recorded_values(claim, "ticket")
    dense = recorded_values(claim, "dense")
    checks = []
    for regime in REGIMES:
        for metric in METRICS:
            name = f"{regime.upper()} {metric.upper()}"
            bounds = span(ticket[regime][metric].values())
            for seed, value in sorted(measured[regime][metric].items()):
                if bounds is not None:
                    checks.append(
                        within(
                            f"{name} seed {seed}: inside the certified per-seed range",
                            *bounds,
                            value,
                            tol,
                        )
                    )
            checks += _interval(claim, regime, metric, measured, dense, tol)
    return checks


def _interval(
    claim: Mapping[str, Any], regime: str, metric: str, measured: Values, dense: Values, tol: float
) -> list[Check]:
    """The mean re-measured ticket − certified dense difference against the certified
    interval (none where the certificate has no interval)."""
    recorded = claim["regimes"][regime]["comparisons"][metric]["difference"]
    common = sorted(set(measured[regime][metric]) & set(dense[regime][metric]))
    if recorded is None or recorded["low"] is None or not common:
        return []
    mean = statistics.fmean(measured[regime][metric][s] - dense[regime][metric][s] for s in common)
    return [
        within(
            f"{regime.upper()} {metric.upper()}: ticket − dense over seeds "
            f"{', '.join(map(str, common))} inside the certified interval",
            recorded["low"],
            recorded["high"],
            mean,
            tol,
        )
    ]


def _verdict(
    document: Mapping[str, Any], measured: Values, seeds: list[int]
) -> tuple[list[Check], list[str]]:
    """The verdict judged again: a check when every certified seed ran again, else a note
    (on fewer seeds the interval is wider, and the verdict may rightly differ)."""
    claim, ticket = document["claim"], document["ticket"]
    method = ticket["method"]
    if ticket["pattern"] != UNSTRUCTURED:
        method = f"{method}:{ticket['pattern']}"
    key = TicketKey(
        document["pretraining"]["label"],
        claim["dataset"],
        float(claim["fraction"]),
        method,
        ticket["imp_regime"],
        float(ticket["sparsity"]),
    )
    outcome = rejudge(claim, measured, key).outcome or "undetermined"
    certified = claim["verdict"] or "undetermined"
    if seeds == transfer_seeds(claim, None):
        return [Check("verdict judged again", certified, outcome, outcome == certified)], []
    return [], [f"on seeds {', '.join(map(str, seeds))} alone the verdict is {outcome}"]
