"""The transfer stage: a ticket m ⊙ θp fine-tuned on a downstream task (the paper's ST and AT).

A new head is drawn for the downstream classes, the mask is enforced by the training engine
for the whole run, and SA and RA on the test split are measured at the two checkpoints the
official code reports: the best validation SA and the best validation RA.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core import distributed, paths
from doublewin.core.errors import UserError
from doublewin.core.results import TEST_METRICS
from doublewin.core.specs import TransferSpec
from doublewin.data import stage_data
from doublewin.measure.robustness import autoattack_accuracy
from doublewin.models import (
    get_normalization,
    load_model,
    normalize_inputs,
    replace_head,
    save_weights,
)
from doublewin.stages.environment import Environment, Inputs
from doublewin.tickets import load_ticket
from doublewin.tickets.macs import model_macs
from doublewin.train import Callback, TrainResult, evaluate, train


def transfer(spec: TransferSpec, inputs: Inputs, out: Path, env: Environment) -> dict[str, Any]:
    """Fine-tune the ticket ``inputs.ticket`` (or the dense θp when it is None) of
    ``inputs.weights`` on ``spec.data``.

    ``out`` keeps the per-epoch checkpoint (an interrupted call resumes; removed at the end)
    and receives the fine-tuned weights at the best-val-SA and/or best-val-RA checkpoints
    (``paths.BEST_WEIGHTS``) that ``spec.save_models`` asks for.
    Returns the test SA/RA (points) at both checkpoints (``TEST_METRICS``), with
    ``spec.autoattack`` AutoAttack's accuracy of the best-val-RA checkpoint (``aa``), the training
    metrics, and ``warnings``: what applying the ticket warned about (other weights than it was
    drawn from), one string each.
    """
    setup = prepare_transfer(spec, inputs, env)
    mask = setup.mask
    # One image's multiply-accumulates, dense and with the pruned weights skipped: where
    # tickets of different architectures (SuperTickets' shrunk networks) meet.
    size = int(spec.data.resolution or setup.meta.input_size)
    macs, kept_macs = model_macs(setup.model, size, mask)
    sparsity = float(mask.sparsity) if mask is not None else 0.0
    head = {"sparsity": round(sparsity, 6), "macs": macs, "kept_macs": kept_macs}
    metrics = fine_tune(spec, setup, Path(out), env, metrics=head)
    # The per-epoch checkpoint holds optimizer state and best weights: large and no longer
    # needed once the test numbers are written.
    with contextlib.suppress(FileNotFoundError):
        (Path(out) / paths.CHECKPOINT).unlink()
    if setup.warnings:
        metrics["warnings"] = setup.warnings
    return metrics


def fine_tune(
    spec: TransferSpec,
    setup: TransferSetup,
    out: Path,
    env: Environment,
    *,
    metrics: dict[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Train ``setup.model`` (masked by ``setup.mask``) with ``spec.train``, validating on
    ``setup.val``; test it with ``spec.eval_attack`` at the best-val-SA and best-val-RA
    checkpoints and keep the weights ``spec.save_models`` asks for (in ``out``, with the
    per-epoch checkpoint). ``callbacks`` run in the training loop (a landscape's trajectory).
    Returns ``metrics`` with the test numbers (``TEST_METRICS``, points) and the training
    metrics added; the model is left at its final weights."""
    metrics = dict(metrics or {})
    if "sparsity" not in metrics:
        sparsity = float(setup.mask.sparsity) if setup.mask is not None else 0.0
        metrics["sparsity"] = round(sparsity, 6)
    model, device = setup.model, setup.device
    result = train(
        model,
        spec.train,
        setup.train,
        setup.val,
        mask=setup.mask,
        workdir=out,
        device=device,
        seed=spec.seed,
        progress=env.progress,
        log=env.log,
        callbacks=callbacks,
        compile=env.compile,
    )
    metrics["num_classes"] = setup.info.num_classes
    metrics["train_images"] = setup.train.num_samples
    final_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # The official scripts also print test SA at the last epoch.
    metrics["sa_last"] = round(float(evaluate(model, setup.test, device=device)["sa"]), 2)
    metrics.update(_test_checkpoints(spec, setup, result, final_state, out))
    for key, value in result.metrics.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            metrics.setdefault(key, value)
    if env.log is not None:
        env.log.write("transfer", **{k: metrics[k] for k in TEST_METRICS})
    model.load_state_dict(final_state)
    return metrics


def _test_checkpoints(
    spec: TransferSpec,
    setup: TransferSetup,
    result: TrainResult,
    final_state: dict[str, torch.Tensor],
    out: Path,
) -> dict[str, Any]:
    """Test SA and RA (``spec.eval_attack``) at the best-val-SA and best-val-RA checkpoints
    (the final weights without validation), saving those ``spec.save_models`` asks for."""
    model = setup.model
    states = dict(result.best_states)
    if "ra" not in states and "sa" in states:
        # No validation RA (train.val_ra: false): the best-SA checkpoint stands for both.
        states["ra"] = states["sa"]
    same_checkpoint = states.get("ra") is not None and states.get("ra") is states.get("sa")
    same_checkpoint = same_checkpoint or (
        result.metrics.get("best_val_sa_epoch") is not None
        and result.metrics.get("best_val_sa_epoch") == result.metrics.get("best_val_ra_epoch")
    )
    attack = spec.eval_attack if setup.images else None
    metrics: dict[str, Any] = {}
    test: dict[str, Any] = {}
    for which in ("sa", "ra"):
        model.load_state_dict(states.get(which) or final_state)
        if not (which == "ra" and same_checkpoint):
            # One checkpoint is best on both: its test numbers are measured once.
            test = evaluate(model, setup.test, attack=attack, device=setup.device)
        metrics[f"sa_best_{which}"] = round(float(test["sa"]), 2)
        metrics[f"ra_best_{which}"] = None if test["ra"] is None else round(float(test["ra"]), 2)
        if distributed.is_main() and spec.save_models in (f"best_{which}", "both"):
            _save_fine_tuned(spec, setup, out / paths.BEST_WEIGHTS[which])
    metrics["test_images"] = int(test["n"])
    if spec.autoattack > 0:
        # The AP benchmark's measure: AutoAttack on the robust (best-val-RA) checkpoint.
        model.load_state_dict(states.get("ra") or final_state)
        metrics.update(
            autoattack_accuracy(
                model,
                setup.test,
                points=spec.autoattack,
                attack=spec.eval_attack,
                num_classes=setup.info.num_classes,
                device=setup.device,
                seed=spec.seed,
            )
        )
    return metrics


def _save_fine_tuned(spec: TransferSpec, setup: TransferSetup, path: Path) -> None:
    mean, std = get_normalization(setup.model)
    meta = setup.meta
    fine_tuned = dataclasses.replace(
        meta,
        num_classes=setup.info.num_classes,
        dataset=spec.data.name,
        source="transfer",
        regime=spec.train.regime,
        # The normalization the fine-tuned model runs with (the downstream statistics by
        # default): reloading the file must give the model that was tested.
        mean=mean,
        std=std,
        input_size=int(spec.data.resolution or meta.input_size),
    )
    save_weights(path, setup.model, fine_tuned)


@dataclass
class TransferSetup:
    """What a transfer run trains: θp with the downstream head (and normalization), the
    ticket's mask (None: dense), the loaders, the dataset's info, θp's metadata (None for a
    model the Python API was given), what applying the ticket warned about, and whether the
    inputs are images (an attack perturbs them; token ids are not)."""

    model: nn.Module
    mask: Any
    train: Any
    val: Any
    test: Any
    info: Any
    meta: Any
    device: torch.device
    warnings: list[str]
    images: bool = True


def prepare_transfer(spec: TransferSpec, inputs: Inputs, env: Environment) -> TransferSetup:
    """Load θp and the ticket of ``inputs`` and the data of ``spec`` (transfer and landscape
    stages alike)."""
    if inputs.weights is None:
        raise UserError("transfer needs the pre-trained weights θp; pass --weights FILE")
    weights_path, ticket_path = inputs.weights, inputs.ticket
    device = distributed.local_device(env.device)
    model, meta = load_model(weights_path, device=device)
    resolution = int(spec.data.resolution or meta.input_size)
    train_loader, val_loader, test_loader, info = stage_data(
        spec, resolution_default=resolution, device=device, root=env.data_root
    )
    replace_head(model, info.num_classes, seed=spec.seed)
    if spec.normalization == "downstream":
        # The official recipe normalizes with the downstream dataset's statistics.
        normalize_inputs(model, info.mean, info.std)
    model.to(device)

    mask = None
    caught: list[str] = []
    if ticket_path is not None:
        ticket = load_ticket(ticket_path)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            mask = ticket.fit(
                model, weights_hash=meta.content_hash, arch=meta.arch, source=str(ticket_path)
            )
        caught = [str(w.message) for w in seen]
        mask = mask.to(device)
    return TransferSetup(
        model, mask, train_loader, val_loader, test_loader, info, meta, device, caught
    )
