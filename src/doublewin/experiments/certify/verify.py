"""``doublewin verify EXPORT_DIR --data D``: check an export against its certificate anywhere.

First every hash (experiments/certify/integrity.py: one line and exit 2 for a missing or
changed file, an edited certificate, other weights). Then the claims the certificate makes
about ``D``: on the dataset the exported model measured itself on, that measurement again
(remeasure.py); on a ticket's downstream dataset, with ``--transfer``, its transfers again
(retransfer.py). A dataset the certificate says nothing about, or a test split other than the
certified one, is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from doublewin.core.errors import UserError
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.experiments.certify.checks import Verification
from doublewin.experiments.certify.integrity import check_export
from doublewin.experiments.certify.remeasure import remeasure
from doublewin.experiments.certify.retransfer import retransfer
from doublewin.stages import Environment

FOLDER_DATA = "folder:"  # an ImageFolder tree: its path differs from machine to machine


def verify_export(
    folder: Path,
    data: str,
    *,
    autoattack: int = 0,
    limit: int | None = None,
    transfer: bool = False,
    seeds: Sequence[int] | None = None,
    points_tolerance: float | None = None,
    work: Path | None = None,
    device: torch.device = torch.device("cpu"),
    data_root: str | Path | None = None,
    progress: Progress = NULL_PROGRESS,
) -> Verification:
    """Every check of the export in ``folder`` that ``data`` allows (see the module
    docstring). ``points_tolerance``: how far a re-measured accuracy may be from the
    certified one (default: tickets/certificate.py's `tolerance` of the images compared);
    ``work``: where ``transfer`` keeps its runs (default: core/paths.verify_work)."""
    document, sha256, checks, _ = check_export(folder)
    on_evaluation, on_claim = _targets(document, data)
    if limit is not None and transfer:
        raise UserError(
            "--limit re-measures the exported model on fewer images; --transfer reruns the "
            "certified transfers on their own test split: pass one of them"
        )
    if transfer and not on_claim:
        raise UserError(
            f"--transfer reruns the transfers to {document['claim']['dataset']}; pass --data "
            f"{document['claim']['dataset']}"
        )
    if document["kind"] == "ticket" and on_claim and not on_evaluation and not transfer:
        raise UserError(
            f"--data {data}: the ticket's claim on {data} is measured by transferring it; add "
            f"--transfer, or pass --data {document['evaluation']['data']['name']} to measure "
            "the ticket itself on its source task"
        )
    folder = Path(folder)
    result = Verification(folder, sha256, document["kind"], list(checks))
    # What both rechecks take: how close is close enough, and where they compute.
    shared = {"points_tolerance": points_tolerance, "env": Environment(device, data_root, progress)}
    if transfer:
        result.add(*retransfer(folder, document, sha256, data, seeds=seeds, work=work, **shared))
    elif on_evaluation:
        result.add(*remeasure(folder, document, data, autoattack=autoattack, limit=limit, **shared))
    return result


def _targets(document: Mapping[str, Any], data: str) -> tuple[bool, bool]:
    """Whether ``data`` is the dataset of the model's own evaluation, and of the claim."""
    evaluated = document["evaluation"]["data"]["name"]
    claimed = document["claim"]["dataset"]

    def same(name: str) -> bool:
        # Two folder datasets are the same when their test splits are (checked by hash).
        return name == data or (name.startswith(FOLDER_DATA) and data.startswith(FOLDER_DATA))

    if not same(evaluated) and not same(claimed):
        shown = (
            f"{evaluated} (the model's own evaluation)"
            if evaluated == claimed
            else f"{evaluated} (the model's own evaluation) and {claimed} (its transfer claim)"
        )
        raise UserError(f"--data {data}: the certificate's measurements are on {shown}; pass one")
    return same(evaluated), same(claimed)
