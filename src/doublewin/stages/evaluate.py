"""The evaluate stage: SA and RA of a weights file, with the gradient-masking checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doublewin.core.errors import UserError
from doublewin.core.specs import EvaluateSpec
from doublewin.data import load_dataset, make_loader
from doublewin.models import load_model
from doublewin.stages.environment import Environment, Inputs
from doublewin.train import robustness_report


def evaluate(
    spec: EvaluateSpec, inputs: Inputs, out: Path | None, env: Environment
) -> dict[str, Any]:
    """`robustness_report` of ``inputs.weights`` on ``spec.data``'s ``spec.split``.

    The images are resized to ``spec.data.resolution``, else the weights' ``input_size``. It
    writes no file (``out`` is unused); the metrics are the report (``RobustnessReport.as_dict``)
    with the weights' ``arch``, the dataset and the split. A dataset whose number of classes
    differs from the weights' is a UserError.
    """
    del out  # the report is the metrics: nothing else to keep
    if inputs.weights is None:
        raise UserError("evaluate needs a weights file; pass --weights FILE")
    device = env.device
    model, meta = load_model(inputs.weights, device=device)
    splits = load_dataset(spec.data.name, env.data_root, val_size=spec.data.val_size)
    info = splits.info
    if int(info.num_classes) != int(meta.num_classes):
        raise UserError(
            f"{inputs.weights} has {meta.num_classes} classes but {spec.data.name} "
            f"has {info.num_classes}; evaluate on the dataset the weights were "
            "trained or transferred on"
        )
    images = splits.test if spec.split == "test" else splits.val
    loader = make_loader(
        images,
        batch_size=spec.batch_size,
        train=False,
        resolution=int(spec.data.resolution or meta.input_size),
        test_transform=spec.data.test_transform,
        device=device,
        seed=spec.seed,
    )
    report = robustness_report(
        model,
        loader,
        attack=spec.attack,
        num_classes=int(info.num_classes),
        autoattack_n=spec.autoattack,
        check_points=spec.check_points,
        device=device,
        seed=spec.seed,
        progress=env.progress,
    )
    return {"arch": meta.arch, "data": spec.data.name, "split": spec.split, **report.as_dict()}
