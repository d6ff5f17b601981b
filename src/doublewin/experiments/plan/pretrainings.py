"""The pre-trainings of an experiment file (``pretrain:``): each named run trained here from
its spec, or imported from a weights file, with the tickets drawn from it or given as files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doublewin.core.build import build_spec
from doublewin.core.errors import UserError
from doublewin.core.hashing import spec_hash
from doublewin.core.specs import PretrainSpec
from doublewin.data.registry import check_val_size
from doublewin.experiments.plan.fields import deep_merge
from doublewin.experiments.plan.ticket_files import TicketFile, parse_ticket_files, source_of
from doublewin.models import read_content_hash, read_weights_meta

# What a no-pre-training control keeps of the pretrain section: the rest is training.
CONTROL_KEYS = ("arch", "data", "seed", "kind")


@dataclass(frozen=True)
class Pretraining:
    """One pre-training of the comparison: trained here (``spec``) or imported (``path``).
    ``tickets``: whether tickets are drawn from it (the no-pre-training control transfers
    densely unless its entry says ``tickets: true``)."""

    label: str
    spec: PretrainSpec | None = None
    path: Path | None = None
    weights_hash: str | None = None  # content hash of an imported file, when readable
    tickets: bool = True
    # Ticket files transferred instead of drawn tickets (ticket_files.py); then ``tickets``
    # is False: nothing is drawn from this pre-training.
    ticket_files: tuple[TicketFile, ...] = ()

    @property
    def kind(self) -> str:
        """``control`` for the no-pre-training control, else the training regime (an
        imported file: ``imported``)."""
        if self.spec is None:
            return "imported"
        return "control" if self.spec.kind == "control" else self.spec.train.regime

    @property
    def ref(self) -> str:
        if self.spec is not None:
            return f"pretrain-{spec_hash('pretrain', self.spec)}"
        if self.weights_hash:
            return f"weights-{self.weights_hash}"
        return f"file-{self.path}"


def parse_pretrain(section: Any, arch: str) -> tuple[Pretraining, ...]:
    if not isinstance(section, Mapping):
        raise UserError("pretrain: expected a mapping with runs")
    runs = section.get("runs")
    if not isinstance(runs, Mapping) or not runs:
        raise UserError(
            "pretrain.runs: name at least one pre-training, e.g. "
            "runs: {STD: {train: {regime: std}}}"
        )
    base = {k: v for k, v in section.items() if k != "runs"}
    # The shared fields are checked where the user wrote them (pretrain.train.epochz, not
    # pretrain.runs.STD.train.epochz).
    build_spec("pretrain", deep_merge({"arch": arch}, base), path="pretrain")
    out = []
    for label, run in runs.items():
        run = dict(run or {}) if isinstance(run, Mapping) or run is None else run
        if not isinstance(run, Mapping):
            raise UserError(f"pretrain.runs.{label}: expected a mapping")
        tickets = run.pop("tickets", None)
        files_raw = None
        if isinstance(tickets, Mapping) or (tickets is not None and not isinstance(tickets, bool)):
            files_raw, tickets = tickets, False
        if "weights" in run:
            extra = sorted(set(run) - {"weights"})
            if extra:
                raise UserError(
                    f"pretrain.runs.{label}.{extra[0]}: an imported pre-training "
                    "takes only `weights: PATH` (and `tickets`)"
                )
            path = Path(str(run["weights"])).expanduser()
            if path.is_dir():
                # A missing file is allowed (the paper configs are costed before the weights
                # are imported); a folder is a mistake either way.
                raise UserError(
                    f"pretrain.runs.{label}.weights: {path} is a folder; name the weights file "
                    "in it (doublewin pretrain or import-weights writes one)"
                )
            weights_hash = read_content_hash(path)
            wants = True if tickets is None else tickets
            files = _files(files_raw, str(label), *source_of(arch, None, path))
            out.append(
                Pretraining(
                    str(label),
                    path=path,
                    weights_hash=weights_hash,
                    tickets=wants,
                    ticket_files=files,
                )
            )
            continue
        merged = deep_merge({"arch": arch, **base}, run)
        if merged.get("kind") == "control":
            # Not trained: only what builds the initialization names it.
            merged = {k: merged[k] for k in CONTROL_KEYS if k in merged}
        spec = build_spec("pretrain", merged, path=f"pretrain.runs.{label}")
        check_val_size(spec.data.name, spec.data.val_size, f"pretrain.runs.{label}.data.val_size")
        wants = spec.kind != "control" if tickets is None else tickets
        files = _files(files_raw, str(label), *source_of(spec.arch, spec.data.name, None))
        out.append(Pretraining(str(label), spec=spec, tickets=wants, ticket_files=files))
    return distinct_pretrainings(out)


def distinct_pretrainings(runs: list[Pretraining]) -> tuple[Pretraining, ...]:
    """``runs``, or one UserError where two labels name the same pre-training (one spec, or
    one weights file): the store keeps one entry, and the results would show one label."""
    first: dict[str, str] = {}
    for p in runs:
        if p.ref in first:
            raise UserError(
                f"pretrain.runs.{p.label}: the same pre-training as {first[p.ref]} (same "
                f"{'spec' if p.spec is not None else 'weights'}), which the results would show "
                f"once, under one label; keep one of {first[p.ref]} and {p.label}, or make "
                "them differ"
            )
        first[p.ref] = p.label
    return tuple(runs)


def _files(
    raw: Any, label: str, arch: str | None, num_classes: int | None
) -> tuple[TicketFile, ...]:
    if raw is None:
        return ()
    return parse_ticket_files(
        raw, f"pretrain.runs.{label}.tickets", arch=arch, num_classes=num_classes
    )


def arch_of(p: Pretraining) -> str | None:
    if p.spec is not None:
        return p.spec.arch
    meta = read_weights_meta(p.path) if p.path is not None else None
    return meta.arch if meta is not None else None


def input_size_of(p: Pretraining) -> int | None:
    if p.spec is not None and p.spec.data.resolution:
        return p.spec.data.resolution
    return None
