"""Canonical strings and content hashes of specs.

A spec's canonical form keeps only the fields that differ from their defaults (recursively,
against the default of the enclosing field), so adding a field with a neutral default leaves
every existing hash — and therefore every finished store entry — valid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from doublewin.core.typed import plain

HASH_LENGTH = 16


def canonical(spec: Any, default: Any = None) -> dict[str, Any]:
    """The fields of ``spec`` that differ from ``default`` (the class defaults when None)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if default is not None:
            base = getattr(default, f.name)
        elif f.default is not dataclasses.MISSING:
            base = f.default
        elif f.default_factory is not dataclasses.MISSING:
            base = f.default_factory()
        else:
            base = dataclasses.MISSING  # required field: always part of the identity
        if dataclasses.is_dataclass(value) and dataclasses.is_dataclass(base):
            nested = canonical(value, base)
            if nested:
                out[f.name] = nested
            continue
        if base is not dataclasses.MISSING and plain(value) == plain(base):
            continue
        out[f.name] = plain(value)
    return out


def canonical_string(stage: str, spec: Any) -> str:
    """``{"spec": ..., "stage": ...}`` as compact, key-sorted JSON."""
    return json.dumps(
        {"stage": stage, "spec": canonical(spec)},
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )


def spec_hash(stage: str, spec: Any) -> str:
    """The first 16 hex digits of the SHA-256 of the canonical string."""
    return hashlib.sha256(canonical_string(stage, spec).encode()).hexdigest()[:HASH_LENGTH]
