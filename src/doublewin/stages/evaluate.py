"""The evaluate stage: SA and RA of a weights file, with the gradient-masking checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doublewin.attacks.autoattack import require_torchattacks
from doublewin.core.errors import UserError
from doublewin.core.specs import EvaluateSpec
from doublewin.data import ImageSet, first_images, load_dataset, make_loader
from doublewin.measure import robustness_report
from doublewin.measure.robustness import RobustnessReport
from doublewin.models import WeightsMeta, load_model
from doublewin.stages.environment import Environment, Inputs
from doublewin.tickets import load_ticket
from doublewin.train.batchnorm import recalibrate_bn


@dataclass(frozen=True)
class Measured:
    """What `measure` found: the report, the images it measured (in order), the weights'
    metadata and what the ticket and BatchNorm re-estimation add to the metrics."""

    report: RobustnessReport
    images: ImageSet
    meta: WeightsMeta
    extra: dict[str, Any] = field(default_factory=dict)


def evaluate(
    spec: EvaluateSpec, inputs: Inputs, out: Path | None, env: Environment
) -> dict[str, Any]:
    """`robustness_report` of ``inputs.weights`` (masked by ``inputs.ticket`` when given) on
    ``spec.data``'s ``spec.split``, after re-estimating BatchNorm statistics on
    ``spec.recalibrate_bn`` training batches when that is > 0.

    The images are resized to ``spec.data.resolution``, else the weights' ``input_size``. It
    writes no file (``out`` is unused); the metrics are the report (``RobustnessReport.as_dict``)
    with the weights' ``arch``, the dataset and the split. A dataset whose number of classes
    differs from the weights' is a UserError.
    """
    del out  # the report is the metrics: nothing else to keep
    measured = measure(spec, inputs, env)
    return {
        "arch": measured.meta.arch,
        "data": spec.data.name,
        "split": spec.split,
        **measured.extra,
        **measured.report.as_dict(),
    }


def measure(spec: EvaluateSpec, inputs: Inputs, env: Environment) -> Measured:
    """The evaluate stage's measurement, with the images it ran on (see `evaluate`)."""
    if inputs.weights is None:
        raise UserError("evaluate needs a weights file; pass --weights FILE")
    if spec.autoattack:
        require_torchattacks()  # before the PGD evaluation, not after it
    device = env.device
    model, meta = load_model(inputs.weights, device=device)
    splits = load_dataset(
        spec.data.name,
        env.data_root,
        val_size=spec.data.val_size,
        test_size=spec.data.test_limit if spec.split == "test" else None,
    )
    info = splits.info
    if int(info.num_classes) != int(meta.num_classes):
        raise UserError(
            f"{inputs.weights} has {meta.num_classes} classes but {spec.data.name} "
            f"has {info.num_classes}; evaluate on the dataset the weights were "
            "trained or transferred on"
        )
    resolution = int(spec.data.resolution or meta.input_size)

    def loader_of(images):
        return make_loader(
            images,
            batch_size=spec.batch_size,
            train=False,
            resolution=resolution,
            test_transform=spec.data.test_transform,
            device=device,
            seed=spec.seed,
        )

    extra: dict[str, Any] = {}
    if inputs.ticket is not None:
        ticket = load_ticket(inputs.ticket)
        mask = ticket.fit(
            model, weights_hash=meta.content_hash, arch=meta.arch, source=str(inputs.ticket)
        )
        mask.apply_to(model)
        extra.update(ticket=str(inputs.ticket), sparsity=mask.sparsity)
    if spec.recalibrate_bn:
        # Training images without augmentation: the statistics the ticket meets on its task.
        used = recalibrate_bn(model, loader_of(splits.train), spec.recalibrate_bn, device=device)
        extra["recalibrated_bn_batches"] = used
    images = first_images(splits.test if spec.split == "test" else splits.val, spec.data.test_limit)
    report = robustness_report(
        model,
        loader_of(images),
        attack=spec.attack,
        num_classes=int(info.num_classes),
        autoattack_n=spec.autoattack,
        check_points=spec.check_points,
        device=device,
        seed=spec.seed,
        progress=env.progress,
    )
    return Measured(report, images, meta, extra)
