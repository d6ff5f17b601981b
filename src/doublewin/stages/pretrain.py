"""The pretrain stage: θp trained from scratch on a source dataset (STD, FAT or AT), or the
no-pre-training control (the seeded initialization, not trained).

The weights file carries what a reader needs to trust and reuse it: the architecture, the
classes, the regime with its ε and steps, the source dataset, the source SA and RA on its
validation split, and the content hash that tickets and transfer specs refer to.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from doublewin.core import distributed, paths
from doublewin.core.specs import PretrainSpec
from doublewin.core.typed import to_dict
from doublewin.data import dataset_info, stage_data
from doublewin.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WeightsMeta,
    arch_info,
    build_model,
    content_hash,
    normalize_inputs,
    save_weights,
)
from doublewin.stages.environment import Environment, Inputs
from doublewin.train import evaluate, train


def resolution_for(arch: str, requested: int | None) -> int:
    """The input side in pixels: the data spec's, else the architecture's default."""
    return int(requested) if requested else int(arch_info(arch).input_size)


def pretrain(spec: PretrainSpec, inputs: Inputs, out: Path, env: Environment) -> dict[str, Any]:
    """Train ``spec.arch`` on ``spec.data`` with ``spec.train``; write θp to ``out/WEIGHTS``.

    ``out/TRAIN_DIR`` keeps the per-epoch checkpoint, so an interrupted call resumes. The
    weights file is written atomically once training and the source evaluation are done.
    Returns the training metrics with ``source_sa``, ``source_ra`` (points, on the validation
    split), ``content_hash`` and ``collapsed`` (a FAT run stopped by the overfit guard).
    """
    del inputs  # trained from scratch: nothing to read
    if spec.kind == "control":
        return _control(spec, out)
    device = distributed.local_device(env.device)
    resolution = resolution_for(spec.arch, spec.data.resolution)
    train_loader, val_loader, _, info = stage_data(
        spec, resolution_default=resolution, device=device, root=env.data_root
    )
    torch.manual_seed(spec.seed)
    model = build_model(spec.arch, info.num_classes)
    mean, std = normalize_inputs(model, info.mean, info.std)
    model.to(device)
    result = train(
        model,
        spec.train,
        train_loader,
        val_loader,
        workdir=out / paths.TRAIN_DIR,
        device=device,
        seed=spec.seed,
        progress=env.progress,
        log=env.log,
        compile=env.compile,
    )
    # θp is the final weights (the FAT guard has already restored the last good ones on a
    # collapse); source SA/RA are measured on the held-out validation split.
    source = evaluate(
        model,
        val_loader,
        attack=spec.eval_attack,
        device=device,
        progress=env.progress,
        label="source SA/RA on the validation split",
    )
    collapsed = bool(result.metrics.get("collapsed"))
    meta = _weights_meta(spec, info.num_classes, (mean, std), resolution, source, collapsed)
    if distributed.is_main():
        digest = save_weights(out / paths.WEIGHTS, model, meta)
        # The epoch checkpoint (optimizer state, best weights) only serves a resume; the
        # weights file is written, so it goes.
        shutil.rmtree(out / paths.TRAIN_DIR, ignore_errors=True)
    else:
        digest = content_hash(model.state_dict())
    distributed.barrier()
    if env.log is not None:
        env.log.write("pretrain", source_sa=meta.source_sa, source_ra=meta.source_ra)
    return {
        **{k: v for k, v in result.metrics.items() if _plain(v)},
        "source_sa": meta.source_sa,
        "source_ra": meta.source_ra,
        "content_hash": digest,
        "collapsed": collapsed,
    }


def _weights_meta(
    spec: PretrainSpec,
    num_classes: int,
    normalization: tuple[Any, Any],
    resolution: int,
    source: dict[str, Any],
    collapsed: bool,
) -> WeightsMeta:
    """What θp's weights file records: the network, how it was trained (regime, ε, attack
    steps), the source SA/RA (points, on the validation split) and the spec."""
    attack = spec.train.attack if spec.train.regime != "std" else None
    mean, std = normalization
    return WeightsMeta(
        arch=spec.arch,
        num_classes=num_classes,
        mean=mean,
        std=std,
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
            "collapsed": collapsed,
            "eval_attack": to_dict(spec.eval_attack),
        },
    )


def _control(spec: PretrainSpec, out: Path) -> dict[str, Any]:
    """The no-pre-training control: ``spec.arch`` initialised from ``spec.seed`` with the
    source dataset's classes, saved untrained. No data is read (the class count and statistics
    come from the registry; transfer replaces the head and the normalization anyway), so it
    costs nothing and has no source accuracy."""
    info = dataset_info(spec.data.name)
    mean = info.mean or IMAGENET_MEAN
    std = info.std or IMAGENET_STD
    classes = info.num_classes or 1000  # a folder: tree's classes are unknown without it
    torch.manual_seed(spec.seed)
    model = build_model(spec.arch, classes)
    mean, std = normalize_inputs(model, mean, std)
    meta = WeightsMeta(
        arch=spec.arch,
        num_classes=classes,
        mean=mean,
        std=std,
        input_size=resolution_for(spec.arch, spec.data.resolution),
        dataset=spec.data.name,
        regime="control",
        source="control",
        extra={"spec": to_dict(spec)},
    )
    digest = save_weights(out / paths.WEIGHTS, model, meta) if distributed.is_main() else ""
    return {"content_hash": digest, "kind": "control", "collapsed": False}


def _plain(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None
