"""Pre-training θp from scratch on a source dataset (STD, FAT or AT).

The weights file carries what a reader needs to trust and reuse it: the architecture, the
classes, the regime with its ε and steps, the source dataset, the source SA and RA on its
validation split, and the content hash that tickets and transfer specs refer to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from doublewin import distributed
from doublewin.experiments.specs import PretrainSpec
from doublewin.experiments.typed import to_dict
from doublewin.logs import JsonlLog
from doublewin.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class PretrainResult:
    """The saved weights and how good they are on the source (points 0–100)."""

    path: Path
    content_hash: str
    source_sa: float
    source_ra: float
    collapsed: bool
    metrics: dict[str, Any]


def resolution_for(arch: str, requested: int | None) -> int:
    """The input side in pixels: the data spec's, else the architecture's default."""
    from doublewin.models import arch_info

    return int(requested) if requested else int(arch_info(arch).input_size)


def pretrain(
    spec: PretrainSpec,
    out: str | Path,
    *,
    workdir: str | Path,
    device: str | torch.device = "cpu",
    data_root: str | Path | None = None,
    progress: Progress = NULL_PROGRESS,
    log: JsonlLog | None = None,
    compile: bool = False,
) -> PretrainResult:
    """Train ``spec.arch`` on ``spec.data`` with ``spec.train`` and save θp to ``out``.

    ``workdir`` keeps the per-epoch checkpoint, so an interrupted call resumes. The file at
    ``out`` is written atomically once training and the source evaluation are done.
    """
    from doublewin.data import prepare_data
    from doublewin.models import WeightsMeta, build_model, save_weights
    from doublewin.train import evaluate, train

    device = distributed.local_device(device)
    resolution = resolution_for(spec.arch, spec.data.resolution)
    train_loader, val_loader, _, info = prepare_data(
        spec.data,
        resolution_default=resolution,
        batch_size=spec.train.batch_size,
        device=device,
        seed=spec.seed,
        root=data_root,
    )
    torch.manual_seed(spec.seed)
    model = build_model(spec.arch, info.num_classes, mean=info.mean, std=info.std).to(device)
    result = train(
        model,
        spec.train,
        train_loader,
        val_loader,
        workdir=Path(workdir),
        device=device,
        seed=spec.seed,
        progress=progress,
        log=log,
        compile=compile,
    )
    # θp is the final weights (the FAT guard has already restored the last good ones on a
    # collapse); source SA/RA are measured on the held-out validation split.
    source = evaluate(model, val_loader, attack=spec.eval_attack, device=device)
    attack = spec.train.attack if spec.train.regime != "std" else None
    meta = WeightsMeta(
        arch=spec.arch,
        num_classes=info.num_classes,
        mean=tuple(info.mean),
        std=tuple(info.std),
        input_size=resolution,
        dataset=spec.data.name,
        regime=spec.train.regime,
        eps=attack.eps if attack else None,
        attack_steps=(1 if spec.train.regime == "fat" else attack.steps) if attack else None,
        source="pretrain",
        source_sa=round(float(source["sa"]), 2),
        source_ra=round(float(source["ra"]), 2),
        extra={
            "spec": to_dict(spec),
            "collapsed": bool(result.metrics.get("collapsed")),
            "eval_attack": to_dict(spec.eval_attack),
        },
    )
    if distributed.is_main():
        digest = save_weights(out, model, meta)
    else:
        from doublewin.models import content_hash

        digest = content_hash(model.state_dict())
    distributed.barrier()
    metrics = {
        **{k: v for k, v in result.metrics.items() if _plain(v)},
        "source_sa": meta.source_sa,
        "source_ra": meta.source_ra,
        "content_hash": digest,
    }
    if log is not None:
        log.write("pretrain", source_sa=meta.source_sa, source_ra=meta.source_ra)
    return PretrainResult(
        Path(out),
        digest,
        meta.source_sa,
        meta.source_ra,
        bool(result.metrics.get("collapsed")),
        metrics,
    )


def _plain(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None
