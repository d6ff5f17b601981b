"""The exported model measured again: SA and RA (and AutoAttack RA) under the certificate's
attack on its test images, held against the certificate's record of each image; for a
fine-tuned model also against the run's own test of it and the claim's per-seed range."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doublewin.analysis.verdict.claim import recorded_values
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.specs import AttackSpec, DataSpec, EvaluateSpec
from doublewin.core.typed import from_dict
from doublewin.data import test_split
from doublewin.experiments.certify.checks import Check, near, span, within
from doublewin.stages import Environment, Inputs
from doublewin.stages.evaluate import measure
from doublewin.tickets.certificate import tolerance, unpack_points

ATTACK_FIELDS = ("norm", "eps", "step", "steps", "random_start", "restarts", "loss", "early_stop")


def certified_attack(document: Mapping[str, Any]) -> AttackSpec:
    """The certificate's test attack as a spec (run in eval mode)."""
    attack = document["attack"]
    return AttackSpec(**{k: attack[k] for k in ATTACK_FIELDS}, bn_mode="eval")


def same_split(data: DataSpec, recorded_hash: str, root: str | Path | None, option: str) -> None:
    """Refuse a test split other than the one the certificate was measured on."""
    images, _ = test_split(data, root)
    if images.fingerprint() != recorded_hash:
        raise UserError(
            f"{option}: its test split here ({len(images)} images, hash {images.fingerprint()}) "
            f"is not the one the certificate was measured on (hash {recorded_hash}); point "
            "--data-root at the same files"
        )


def remeasure(
    folder: Path,
    document: Mapping[str, Any],
    data: str,
    *,
    autoattack: int,
    limit: int | None,
    points_tolerance: float | None,
    env: Environment,
) -> tuple[list[Check], list[str]]:
    """The checks of the model's own evaluation (and, for a fine-tuned model measured on every
    test image, of the claim), and notes on what was not checked."""
    evaluation = document["evaluation"]
    full = from_dict(DataSpec, {**evaluation["data"], "name": data}, path="evaluation.data")
    same_split(full, evaluation["test_split_hash"], env.data_root, f"--data {data}")
    images = min(limit or int(evaluation["test_images"]), int(evaluation["test_images"]))
    limited = full
    if limit is not None:
        # The first images of the recorded split: never more than it had.
        limited = from_dict(DataSpec, {**evaluation["data"], "name": data, "test_limit": images})
    # AutoAttack runs on the first N points there are, as at export.
    recorded_aa, asked_aa = int(evaluation["autoattack_points"]), min(autoattack, images)
    if recorded_aa and asked_aa > recorded_aa:
        raise UserError(
            f"--autoattack {autoattack}: the certificate's AutoAttack covers its first "
            f"{recorded_aa} test points; pass at most {recorded_aa}"
        )
    spec = EvaluateSpec(data=limited, attack=certified_attack(document), autoattack=autoattack)
    report = measure(spec, Inputs(weights=folder / paths.WEIGHTS), env).report
    n = report.n
    tol = points_tolerance if points_tolerance is not None else tolerance(n)
    steps = document["attack"]["steps"]
    checks = [
        near(f"SA on the first {n} test images", _certified(evaluation, "sa", n), report.sa, tol),
        near(
            f"RA (PGD-{steps}) on the first {n} test images",
            _certified(evaluation, "ra", n),
            report.ra,
            tol,
        ),
    ]
    notes = []
    if autoattack and recorded_aa:
        k = report.autoattack_n
        checks.append(
            near(
                f"RA (AutoAttack) on the first {k} test points",
                _certified(evaluation, "autoattack_ra", k),
                float(report.autoattack_ra),  # type: ignore[arg-type]
                points_tolerance if points_tolerance is not None else tolerance(k),
            )
        )
    elif autoattack:
        notes.append(
            f"AutoAttack RA {report.autoattack_ra:.2f} on {report.autoattack_n} points measured; "
            "the certificate records no AutoAttack to hold it against"
        )
    if document["fine_tuned"] is not None:
        if n == int(document["claim"]["test_images"]):
            checks += claim_checks(document, report.sa, report.ra, points_tolerance)
        else:
            notes.append(
                f"the claim is about all {document['claim']['test_images']} test images; "
                f"measured on {n}, it was not checked"
            )
    return checks, notes


# The per-image record of each accuracy of the evaluation, and how many images it covers.
RECORDS = {
    "sa": ("clean", "test_images"),
    "ra": ("robust", "test_images"),
    "autoattack_ra": ("autoattack", "autoattack_points"),
}


def _certified(evaluation: Mapping[str, Any], key: str, n: int) -> float:
    """The certified accuracy on the first ``n`` images: the certificate's number when that
    is all it measured, else the share of its per-image record."""
    record, count = RECORDS[key]
    if n == int(evaluation[count]):
        return float(evaluation[key])
    flags = unpack_points(evaluation["points"][record], n)
    return 100.0 * float(flags.mean()) if len(flags) else float("nan")


def claim_checks(
    document: Mapping[str, Any], sa: float, ra: float, points_tolerance: float | None
) -> list[Check]:
    """A fine-tuned model's SA and RA against the run's own test of it, and, for the metrics
    the verdict reads at its checkpoint, against the claim's per-seed range of the ticket."""
    tuned, claim = document["fine_tuned"], document["claim"]
    tol = points_tolerance if points_tolerance is not None else tolerance(claim["test_images"])
    measured = {"sa": sa, "ra": ra}
    regime = tuned["regime"].upper()
    checks = []
    for metric, value in measured.items():
        recorded = tuned["test"][metric]
        if recorded is not None:
            checks.append(
                near(
                    f"{metric.upper()}: the run's test of seed {tuned['seed']} "
                    f"({tuned['checkpoint']})",
                    recorded,
                    value,
                    tol,
                )
            )
    ticket = recorded_values(claim, "ticket")[tuned["regime"]]
    for metric in read_at(claim["rule"]["selection"], tuned["checkpoint"]):
        bounds = span(ticket[metric].values())
        if bounds is not None:
            checks.append(
                within(
                    f"{metric.upper()} inside the certified per-seed range ({regime})",
                    *bounds,
                    measured[metric],
                    tol,
                )
            )
    return checks


def read_at(selection: str, checkpoint: str) -> tuple[str, ...]:
    """The metrics the verdict reads at ``checkpoint`` under the checkpoint ``selection``."""
    if selection == "per-metric":
        return (checkpoint.removeprefix("best_"),)
    return ("sa", "ra") if selection == f"best-{checkpoint.removeprefix('best_')}" else ()
