"""The certificate of an exported ticket: its format, its JSON Schema, how it is written,
read and hashed (docs/certificate.md).

``certificate.json`` holds what the ticket is, where it came from, the double-win claim over
seeds, the test attack in full and the exported model's own evaluation. Its SHA-256 (of the
file's bytes) is stamped into the exported weights' safetensors metadata with the ticket's
sparsity and pattern; every other file of the export is hashed inside it, except the weights
(named by their content hash, which the stamp leaves unchanged) and the model card (written
from the certificate, and checked against it).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import torch

from doublewin.core import paths
from doublewin.core.atomic import atomic_write_text
from doublewin.core.errors import UserError
from doublewin.core.foreign import reading

FORMAT = "doublewin-certificate"
VERSION = 1
CERTIFICATE_FILE = (
    "a doublewin certificate (certificate.json)",
    "pass an export folder written by doublewin export --run",
)
# The safetensors metadata a certified export's weights carry, besides doublewin's own.
STAMP_SHA256, STAMP_SPARSITY, STAMP_PATTERN = "certificate_sha256", "sparsity", "pattern"
# Files of an export the certificate does not hash byte for byte (see the module docstring).
UNHASHED = (paths.CERTIFICATE, paths.MODEL_CARD, paths.WEIGHTS)
# A re-measured accuracy agrees with a recorded one when they differ by at most the larger of
# these: a point, or two test images' worth (a borderline image flips under another random
# start or another device's rounding).
TOLERANCE_POINTS = 1.0
TOLERANCE_IMAGES = 2


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of this version, shipped beside this module."""
    return json.loads((Path(__file__).with_name(paths.CERTIFICATE_SCHEMA)).read_text())


def validate(document: Any, source: str) -> None:
    """One UserError naming the first place where ``document`` breaks the schema."""
    recorded = document.get("version") if isinstance(document, Mapping) else None
    if isinstance(document, Mapping) and document.get("format") == FORMAT and recorded != VERSION:
        raise UserError(
            f"{source}: certificate version {recorded!r}; this doublewin reads version "
            f"{VERSION}: verify it with the doublewin that wrote it"
        )
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "the top level"
        message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
        raise UserError(
            f"{source}: not a valid certificate at {where} ({message}); export the ticket "
            "again with doublewin export --run"
        )


def certificate_text(document: Mapping[str, Any]) -> str:
    """The bytes a certificate is written as (sorted keys; strict JSON, no NaN)."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_certificate(folder: Path, document: Mapping[str, Any]) -> str:
    """Validate and write ``folder/certificate.json``; returns its SHA-256 (64 hex)."""
    validate(document, str(folder / paths.CERTIFICATE))
    text = certificate_text(document)
    atomic_write_text(folder / paths.CERTIFICATE, text)
    return hashlib.sha256(text.encode()).hexdigest()


def certificate_path(path: Path) -> Path:
    """The certificate of an export folder, or the file itself."""
    path = Path(path)
    return path / paths.CERTIFICATE if path.is_dir() else path


def read_certificate(path: Path) -> tuple[dict[str, Any], str]:
    """(the certificate, the SHA-256 of its bytes) of an export folder or a certificate file,
    checked against the schema."""
    with reading(certificate_path(path), *CERTIFICATE_FILE) as file:
        raw = file.read_bytes()
        document = json.loads(raw.decode())
    validate(document, str(file))
    return document, hashlib.sha256(raw).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of an export the certificate hashes, by name."""
    return {
        p.name: file_sha256(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name not in UNHASHED
    }


def pack_points(flags: torch.Tensor) -> str:
    """Per-image right/wrong flags as base64 of ``np.packbits`` (first image first)."""
    bits = np.packbits(flags.to(torch.bool).cpu().numpy().astype(np.uint8))
    return base64.b64encode(bits.tobytes()).decode()


def unpack_points(text: str, count: int) -> np.ndarray:
    """The first ``count`` flags of `pack_points`'s text, as a bool array."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))
    return bits[:count].astype(bool)


def tolerance(images: int) -> float:
    """Points two measurements on ``images`` test images may differ by and still agree."""
    return max(TOLERANCE_POINTS, 100.0 * TOLERANCE_IMAGES / max(images, 1))


def stamp(document: Mapping[str, Any], certificate_sha256: str) -> dict[str, str]:
    """The safetensors metadata entries of a certified export's weights."""
    ticket = document["ticket"]
    return {
        STAMP_SHA256: certificate_sha256,
        STAMP_SPARSITY: repr(float(ticket["sparsity"])),
        STAMP_PATTERN: str(ticket["pattern"]),
    }
