"""The first half of `doublewin verify`: is the export folder what its certificate says?

Each problem is one UserError naming the file: a file the certificate lists that is missing
or changed, a certificate edited after export (its SHA-256 is not the one stamped into the
weights), weights that are not the certified ones or whose metadata changed, a ticket whose
pruned weights are not zero, a model card whose results are not the certificate's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.foreign import present
from doublewin.experiments.certify.checks import Check
from doublewin.models import load_weights, read_weights_header
from doublewin.tickets import load_ticket
from doublewin.tickets.card import front_matter, model_index
from doublewin.tickets.certificate import (
    STAMP_PATTERN,
    STAMP_SHA256,
    STAMP_SPARSITY,
    file_sha256,
    read_certificate,
)

# How close the stamped and recorded sparsities must be (they are the same float, printed).
SPARSITY_SLACK = 1e-9
EXPORT = (
    "a file of the export",
    "copy the whole export folder again, or export the ticket again",
)


def check_export(folder: Path) -> tuple[dict[str, Any], str, list[Check], dict[str, torch.Tensor]]:
    """(the certificate, its SHA-256, the checks that passed, the weights' state dict) of an
    export folder; the first problem found is a UserError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; pass the folder doublewin export --run wrote")
    document, sha256 = read_certificate(folder)
    listed = document["hashes"]["files"]
    for name, recorded in sorted(listed.items()):
        path = present(folder / name, *EXPORT)
        actual = file_sha256(path)
        if actual != recorded:
            raise UserError(
                f"{path}: changed since export (SHA-256 {actual[:16]}…, the certificate records "
                f"{recorded[:16]}…); {EXPORT[1]}"
            )
    state = _check_weights(folder, document, sha256)
    if paths.EXPORT_TICKET in listed:
        _check_ticket(folder / paths.EXPORT_TICKET, document, state)
    _check_card(folder, document)
    checks = [
        Check(
            "certificate.json is the one the weights were stamped with",
            sha256[:16],
            sha256[:16],
            True,
        ),
        Check(f"{len(listed)} listed file(s) unchanged", "SHA-256 each", "equal", True),
        Check(
            "the weights' tensors",
            document["hashes"]["weights"],
            document["hashes"]["weights"],
            True,
        ),
    ]
    return document, sha256, checks, state


def _check_weights(
    folder: Path, document: Mapping[str, Any], sha256: str
) -> dict[str, torch.Tensor]:
    path = present(folder / paths.WEIGHTS, *EXPORT)
    header = read_weights_header(path)
    stamped = header.get(STAMP_SHA256)
    if stamped is None:
        raise UserError(
            f"{path}: carries no certificate hash in its metadata, so it is not the weights of "
            "a certified export; export the ticket again with doublewin export --run"
        )
    if stamped != sha256:
        raise UserError(
            f"{folder / paths.CERTIFICATE}: changed since export (SHA-256 {sha256[:16]}…, the "
            f"weights record {stamped[:16]}…); its claims cannot be trusted: export the ticket "
            "again"
        )
    ticket = document["ticket"]
    if (
        abs(float(header.get(STAMP_SPARSITY, "nan")) - ticket["sparsity"]) > SPARSITY_SLACK
        or header.get(STAMP_PATTERN) != ticket["pattern"]
    ):
        raise UserError(
            f"{path}: its metadata says sparsity {header.get(STAMP_SPARSITY)} "
            f"({header.get(STAMP_PATTERN)}), the certificate {ticket['sparsity']!r} "
            f"({ticket['pattern']}); {EXPORT[1]}"
        )
    state, meta = load_weights(path)  # checks the tensors against their recorded hash
    if meta.content_hash != document["hashes"]["weights"]:
        raise UserError(
            f"{path}: holds other weights (content hash {meta.content_hash}, the certificate "
            f"records {document['hashes']['weights']}); {EXPORT[1]}"
        )
    recorded = document["weights"]
    actual = {
        "arch": meta.arch,
        "num_classes": int(meta.num_classes),
        "mean": [float(v) for v in meta.mean],
        "std": [float(v) for v in meta.std],
        "input_size": int(meta.input_size),
    }
    for key, value in actual.items():
        if value != recorded[key]:
            raise UserError(
                f"{path}: its metadata's {key} is {value}, the certificate's {recorded[key]}; "
                f"{EXPORT[1]}"
            )
    return state


def _check_ticket(
    path: Path, document: Mapping[str, Any], state: Mapping[str, torch.Tensor]
) -> None:
    ticket = load_ticket(path)  # checks the mask against its recorded hash
    if ticket.mask.content_hash() != document["hashes"]["ticket"]:
        raise UserError(
            f"{path}: another mask (hash {ticket.mask.content_hash()}, the certificate records "
            f"{document['hashes']['ticket']}); {EXPORT[1]}"
        )
    for name, keep in ticket.mask.items():
        tensor = state.get(name)
        if tensor is None or tuple(tensor.shape) != tuple(keep.shape):
            raise UserError(f"{path}: masks {name}, which the weights do not hold as masked")
        revived = int((tensor[~keep.bool()] != 0).sum())
        if revived:
            raise UserError(
                f"{path.with_name(paths.WEIGHTS)}: {revived} weight(s) of {name} that the "
                f"ticket prunes are not zero; {EXPORT[1]}"
            )


def _check_card(folder: Path, document: Mapping[str, Any]) -> None:
    path = present(folder / paths.MODEL_CARD, *EXPORT)
    front = front_matter(path.read_text(errors="replace"))
    if front is None:
        raise UserError(f"{path}: no YAML front matter; {EXPORT[1]}")
    if front.get("model-index") != model_index(document):
        raise UserError(
            f"{path}: its model-index results differ from certificate.json's; the card was "
            f"edited: {EXPORT[1]}"
        )
