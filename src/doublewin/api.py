"""doublewin from Python, on any ``nn.Module`` (docs/python.md).

    import doublewin
    tickets = doublewin.find_tickets(model, source, method="imp", sparsities=[0.5, 0.75])
    run = doublewin.transfer(model, tickets[0], train, test, regime="at", eps=8 / 255)
    print(doublewin.evaluate(run.model, test, eps=8 / 255))
    report = doublewin.judge([run.row, ...])

``model``: any ``nn.Module`` taking pixels in [0, 1] (or token ids, for text), with its
classifier head found generically or named by ``head=``. Data: ``(inputs, labels)`` tensors
(images [N, 3, H, W] floats in [0, 1] or uint8; token ids [N, L]) or a torch ``Dataset`` of
such pairs. The functions build the same specs, run the same engine and return the same
`Ticket`, metrics and verdict objects the command line writes.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.analysis.verdict import (
    ExtremeSparsity,
    TicketVerdict,
    VerdictConfig,
    extreme_sparsities,
    verdicts,
)
from doublewin.core.build import build_spec, transfer_regime
from doublewin.core.errors import UserError
from doublewin.core.results import TEST_METRICS
from doublewin.core.specs import AttackSpec, TransferSpec
from doublewin.core.typed import plain
from doublewin.data import split_loaders
from doublewin.data.tensors import (
    TENSORS,
    TensorBatches,
    floats,
    plain_loaders,
    tensor_splits,
    tensors,
)
from doublewin.models import (
    content_hash,
    head_name,
    normalize_inputs,
    normalizes_inside,
    replace_head,
)
from doublewin.stages.environment import Environment
from doublewin.stages.transfer import TransferSetup, fine_tune
from doublewin.tickets import Ticket, load_ticket
from doublewin.tickets.drawing import Source
from doublewin.tickets.find import draw_tickets
from doublewin.train import evaluate as evaluate_loader

# Images per batch when the API evaluates tensors.
EVALUATE_BATCH = 256

__all__ = ["JudgeResult", "TransferResult", "evaluate", "find_tickets", "judge", "transfer"]


def _model_head(model: nn.Module, head: str | None) -> str:
    name = head_name(model, head)
    model.head_name = name  # later calls (transfer's new head) find it again
    return name


def find_tickets(
    model: nn.Module,
    data: Any,
    *,
    method: str = "imp",
    sparsities: Sequence[float] = (),
    head: str | None = None,
    workdir: str | Path | None = None,
    device: str | torch.device = "cpu",
    **spec: Any,
) -> list[Ticket]:
    """Tickets of ``model`` (its current weights are θp) at a ladder of sparsities, drawn on
    ``data`` (the source task, for the methods that train or score on data). ``spec``: any
    field of the tickets spec (docs/specs.md): ``prune_rate``, ``rounds``, ``pattern``,
    ``scope`` (a mapping or `MaskScope`), ``train`` (a mapping or `TrainSpec`), ``seed``…"""
    _model_head(model, head)
    weights_hash = content_hash(model.state_dict())
    # The ticket records what it was drawn from: these weights (by content hash) and the
    # caller's own tensors, not a registry dataset.
    fields = {
        "method": method,
        "sparsities": list(sparsities),
        "weights": weights_hash,
        "data": {"name": TENSORS},
        **{key: plain(value) for key, value in spec.items()},
    }
    ticket_spec = build_spec("tickets", fields, path="tickets")
    x, y = tensors(data)
    x = floats(x)
    size = int(x.shape[-1]) if x.dim() == 4 else 0

    def loaders() -> tuple[Any, Any]:
        batch, seed = ticket_spec.train.batch_size, ticket_spec.seed
        return TensorBatches(x, y, batch, train=True, seed=seed), None

    source = Source(type(model).__name__, weights_hash, size)
    model = model.to(device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir) if workdir else Path(tmp)
        paths = draw_tickets(ticket_spec, model, source, loaders, workdir=folder, device=device)
        return [load_ticket(p) for p in paths]


@dataclass
class TransferResult:
    """A transfer: the fine-tuned model (at its final weights), its metrics (test accuracies
    in points at the best-val-SA and best-val-RA checkpoints, the columns of results.csv), its
    results row and the transfer spec it ran."""

    model: nn.Module
    metrics: dict[str, Any]
    row: dict[str, Any] = field(default_factory=dict)
    spec: TransferSpec | None = None


def transfer(
    model: nn.Module,
    ticket: Ticket | None,
    train: Any,
    test: Any,
    *,
    val: Any = None,
    regime: str | None = None,
    eps: float | str | None = None,
    seed: int | None = None,
    spec: TransferSpec | Mapping[str, Any] | None = None,
    head: str | None = None,
    num_classes: int | None = None,
    labels: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    **train_spec: Any,
) -> TransferResult:
    """Fine-tune ``ticket`` applied to a copy of ``model`` (None: the dense model) on
    ``train`` through the transfer stage itself: a new head for the task's classes, ST
    (``regime="st"``) or AT (``"at"``) fine-tuning validated on ``val`` (default: a
    class-stratified tenth of ``train`` held out), and test SA and RA (images only) at the
    best-val-SA and best-val-RA checkpoints with the spec's test attack.

    ``spec``: fields of the transfer spec (docs/specs.md: ``train``, ``eval_attack``,
    ``data``'s augmentation and resolution, ``normalization``…) or a `TransferSpec`;
    ``regime``, ``eps`` (the training ε: the validation and test attacks follow it),
    ``seed`` and ``train_spec`` (fields of the training spec: ``epochs``, ``lr``,
    ``batch_size``, ``attack``…) set those fields of it. ``labels``: the results row's
    pretraining, dataset and fraction."""
    fields = _transfer_fields(spec, regime, eps, seed, train_spec)
    fields["weights"] = content_hash(model.state_dict())
    run_spec = build_spec("transfer", fields, path="transfer")
    setup = _transfer_setup(model, ticket, (train, val, test), run_spec, head, num_classes, device)
    with tempfile.TemporaryDirectory() as work:
        metrics = fine_tune(run_spec, setup, Path(work), Environment(device=setup.device))
    info = ticket.info if ticket is not None else None
    row = {
        "pretraining": "model",
        "dataset": "data",
        "fraction": 1.0,
        "method": "dense" if info is None else (info.method or "ticket"),
        "imp_regime": "" if info is None else str((info.spec.get("train") or {}).get("regime", "")),
        "pattern": "" if info is None else str((info.extra or {}).get("pattern", "unstructured")),
        "sparsity": 0.0 if info is None else round(float(info.target_sparsity or info.sparsity), 6),
        "regime": "at" if run_spec.train.regime == "at" else "st",
        "seed": run_spec.seed,
        **dict(labels or {}),
        **{k: metrics[k] for k in (*TEST_METRICS, "test_images", "sparsity") if k in metrics},
    }
    return TransferResult(setup.model, metrics, row, run_spec)


def _transfer_fields(
    spec: TransferSpec | Mapping[str, Any] | None,
    regime: str | None,
    eps: float | str | None,
    seed: int | None,
    train_spec: Mapping[str, Any],
) -> dict[str, Any]:
    """The transfer spec's fields from ``spec`` and the call's arguments, on the caller's
    tensors."""
    fields = plain(spec) if spec is not None else {}
    fields = copy.deepcopy(dict(fields))
    fields["data"] = {**dict(fields.get("data") or {}), "name": TENSORS}
    train = dict(fields.get("train") or {})
    if regime is not None:
        train["regime"] = transfer_regime(regime, f"regime={regime!r}")
    if eps is not None:
        train["attack"] = {**dict(train.get("attack") or {}), "eps": eps}
    train.update({k: plain(v) for k, v in train_spec.items()})
    fields["train"] = train
    if seed is not None:
        fields["seed"] = seed
    return fields


def _transfer_setup(
    model: nn.Module,
    ticket: Ticket | None,
    data: tuple[Any, Any, Any],
    spec: TransferSpec,
    head: str | None,
    num_classes: int | None,
    device: str | torch.device,
) -> TransferSetup:
    """What the transfer stage trains, from the caller's model, ticket and tensors (as
    `prepare_transfer` makes it from files): a copy of the model with the new head (and the
    downstream normalization), the mask, the loaders."""
    train, val, test = (
        tensors(d, name) if d is not None else None
        for d, name in zip(data, ("train", "val", "test"), strict=True)
    )
    labels = [p[1] for p in (train, val, test) if p is not None]
    classes = num_classes or int(max(int(y.max()) for y in labels) + 1)
    splits, on_grid = tensor_splits(train, val, test, classes, spec.data.val_size)
    images = splits.info.mean is not None
    if spec.train.regime == "at" and not images:
        raise UserError("regime='at' attacks images; these inputs are not [N, 3, H, W] images")
    net = copy.deepcopy(model)
    _model_head(net, head or getattr(model, "head_name", None))
    replace_head(net, classes, seed=spec.seed)
    if spec.normalization == "downstream" and images and normalizes_inside(net):
        # The stage's recipe: a doublewin, timm or torchvision model sees the downstream
        # statistics; a model that normalizes by itself is left as it is.
        normalize_inputs(net, splits.info.mean, splits.info.std)
    dev = torch.device(device)
    net.to(dev)
    mask = ticket.fit(net, source="ticket").to(dev) if ticket is not None else None
    batch = spec.train.batch_size
    if on_grid:
        size = int(spec.data.resolution or splits.info.image_size)
        loaders = split_loaders(
            splits, spec.data, resolution=size, batch_size=batch, device=dev, seed=spec.seed
        )
    else:
        loaders = plain_loaders(splits, batch, seed=spec.seed)
    return TransferSetup(net, mask, *loaders, meta=None, device=dev, warnings=[], images=images)


def evaluate(
    model: nn.Module,
    data: Any,
    *,
    attack: AttackSpec | Mapping[str, Any] | None = None,
    eps: float | None = None,
    steps: int = 20,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """SA and RA (points) of ``model`` on ``data``: PGD-``steps`` at ``eps`` with the default
    step (or ``attack``, an `AttackSpec` or the fields of the evaluate spec's attack); no RA
    without either."""
    x, y = tensors(data)
    if attack is None and eps is not None:
        attack = build_spec("evaluate", {"attack": {"eps": eps, "steps": steps}}).attack
    elif isinstance(attack, Mapping):
        attack = build_spec("evaluate", {"attack": dict(attack)}, path="evaluate").attack
    batches = TensorBatches(floats(x), y, EVALUATE_BATCH, train=False)
    return evaluate_loader(model, batches, attack=attack, device=device)


@dataclass(frozen=True)
class JudgeResult:
    """Every ticket's verdict and every ladder's extreme double-win sparsity."""

    verdicts: list[TicketVerdict]
    extremes: list[ExtremeSparsity]

    def outcome(self, **key: Any) -> str | None:
        """The verdict of the one ticket whose key fields equal ``key`` (e.g. sparsity=0.5)."""
        found = [
            v for v in self.verdicts if all(getattr(v.key, k) == val for k, val in key.items())
        ]
        if len(found) != 1:
            raise UserError(f"{len(found)} tickets match {key}; name one ticket")
        return found[0].outcome


def judge(
    results: Iterable[Mapping[str, Any]], config: VerdictConfig | Mapping[str, Any] | None = None
) -> JudgeResult:
    """The double-win verdict of results rows (`TransferResult.row`, or results.csv rows)."""
    if isinstance(config, Mapping):
        config = VerdictConfig.from_mapping(config)
    judged = verdicts(list(results), config or VerdictConfig())
    return JudgeResult(judged, extreme_sparsities(judged))
