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
import dataclasses
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from doublewin.core.errors import UserError
from doublewin.core.specs import AttackSpec, TicketSpec, TrainSpec
from doublewin.core.typed import from_dict
from doublewin.models import content_hash, head_name, replace_head
from doublewin.tickets import Ticket, load_ticket
from doublewin.tickets.find import Source, draw_tickets
from doublewin.train import evaluate as evaluate_loader
from doublewin.train import train as train_engine

__all__ = ["JudgeResult", "TransferResult", "evaluate", "find_tickets", "judge", "transfer"]


class Batches:
    """(x, y) batches over tensors, reshuffled each epoch from ``seed`` (the engine's loader
    interface: ``len``, ``set_epoch``, ``num_samples``)."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, train: bool, seed: int = 0
    ):
        self.x, self.y, self.batch_size, self.train, self.seed = x, y, batch_size, train, seed
        self.epoch = 0
        self.num_samples = len(y)
        self.drop_last = train and self.num_samples % batch_size == 1  # BatchNorm's single image

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = (
            torch.randperm(self.num_samples, generator=g)
            if self.train
            else torch.arange(self.num_samples)
        )
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.x[index], self.y[index]


# The dataset name a spec records for data the caller passes as tensors.
TENSORS = "tensors"


def tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` from a pair of tensors or a torch Dataset of pairs; uint8 images
    become floats in [0, 1]."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        x, y = data
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        pairs = [data[i] for i in range(len(data))]
        x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
        y = torch.as_tensor([int(p[1]) for p in pairs])
    else:
        raise UserError(
            "data: pass (inputs, labels) tensors or a torch Dataset of (input, label) pairs"
        )
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    if len(x) != len(y):
        raise UserError(f"data: {len(x)} inputs but {len(y)} labels; give one label per input")
    return x, y.long()


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
        **spec,
    }
    for key in ("scope", "train", "data"):
        if dataclasses.is_dataclass(fields.get(key)):
            fields[key] = dataclasses.asdict(fields[key])
    ticket_spec = from_dict(TicketSpec, fields, path="tickets")
    x, y = tensors(data)
    size = int(x.shape[-1]) if x.dim() == 4 else 0

    def loaders() -> tuple[Any, Any]:
        return Batches(x, y, ticket_spec.train.batch_size, train=True, seed=ticket_spec.seed), None

    source = Source(type(model).__name__, weights_hash, size)
    model = model.to(device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir) if workdir else Path(tmp)
        paths = draw_tickets(ticket_spec, model, source, loaders, workdir=folder, device=device)
        return [load_ticket(p) for p in paths]


@dataclass
class TransferResult:
    """A transfer: the fine-tuned model, its metrics (test accuracies in points, the columns
    of results.csv) and its results row."""

    model: nn.Module
    metrics: dict[str, Any]
    row: dict[str, Any] = field(default_factory=dict)


def transfer(
    model: nn.Module,
    ticket: Ticket | None,
    train: Any,
    test: Any,
    *,
    regime: str = "st",
    eps: float = 8 / 255,
    eval_steps: int = 10,
    seed: int = 0,
    head: str | None = None,
    num_classes: int | None = None,
    labels: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    **train_spec: Any,
) -> TransferResult:
    """Fine-tune ``ticket`` applied to a copy of ``model`` (None: the dense model) on
    ``train`` with ST (``regime="st"``) or AT (``"at"``: PGD at ``eps``), a new head for the
    task's classes, and test SA (and RA under PGD-``eval_steps`` for images). ``train_spec``:
    fields of the training spec (``epochs``, ``lr``, ``batch_size``, ``attack``…);
    ``labels``: the results row's pretraining, dataset and fraction."""
    if regime not in ("st", "at"):
        raise UserError(f"regime={regime!r}: use 'st' (standard) or 'at' (adversarial)")
    x, y = tensors(train)
    tx, ty = tensors(test)
    images = x.dim() == 4
    net = copy.deepcopy(model)
    _model_head(net, head or getattr(model, "head_name", None))
    classes = num_classes or int(max(int(y.max()), int(ty.max())) + 1)
    replace_head(net, classes, seed=seed)
    mask = ticket.fit(net, source="ticket") if ticket is not None else None
    fields: dict[str, Any] = {"regime": "std" if regime == "st" else "at", **train_spec}
    if regime == "at":
        fields.setdefault("attack", {"eps": eps, "step": eps / 4, "steps": 10})
    spec = from_dict(TrainSpec, fields, path="train")
    train_engine(net, spec, Batches(x, y, spec.batch_size, train=True, seed=seed), mask=mask,
                 device=device, seed=seed)  # fmt: skip
    attack = AttackSpec(eps=eps, step=eps / 4, steps=eval_steps, bn_mode="eval") if images else None
    result = evaluate_loader(net, Batches(tx, ty, 256, train=False), attack=attack, device=device)
    sa, ra = (
        round(float(result["sa"]), 2),
        None if result["ra"] is None else round(float(result["ra"]), 2),
    )
    metrics = {"sa_best_sa": sa, "ra_best_sa": ra, "sa_best_ra": sa, "ra_best_ra": ra,
               "test_images": int(result["n"]), "sparsity": round(mask.sparsity, 6) if mask else 0.0}  # fmt: skip
    info = ticket.info if ticket is not None else None
    row = {
        "pretraining": "model",
        "dataset": "data",
        "fraction": 1.0,
        "method": "dense" if info is None else (info.method or "ticket"),
        "imp_regime": "" if info is None else str((info.spec.get("train") or {}).get("regime", "")),
        "pattern": "" if info is None else str((info.extra or {}).get("pattern", "unstructured")),
        "sparsity": 0.0 if info is None else round(float(info.target_sparsity or info.sparsity), 6),
        "regime": regime,
        "seed": seed,
        **dict(labels or {}),
        **metrics,
    }
    return TransferResult(net, metrics, row)


def evaluate(
    model: nn.Module,
    data: Any,
    *,
    attack: AttackSpec | Mapping[str, Any] | None = None,
    eps: float | None = None,
    steps: int = 20,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """SA and RA (points) of ``model`` on ``data``: PGD-``steps`` at ``eps`` (or ``attack``, an
    `AttackSpec` or its fields); no RA without either."""
    x, y = tensors(data)
    if attack is None and eps is not None:
        attack = AttackSpec(eps=eps, step=eps / 4, steps=steps, bn_mode="eval")
    elif isinstance(attack, Mapping):
        attack = from_dict(AttackSpec, {"bn_mode": "eval", **attack}, path="attack")
    return evaluate_loader(model, Batches(x, y, 256, train=False), attack=attack, device=device)


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
