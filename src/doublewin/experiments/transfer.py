"""Transfer of a ticket m ⊙ θp to a downstream task (the paper's ST and AT fine-tuning).

A new head is drawn for the downstream classes, the mask is enforced by the training engine
for the whole run, and SA and RA on the test split are measured at the two checkpoints the
official code reports: the best validation SA and the best validation RA.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from doublewin import distributed
from doublewin.experiments.specs import TransferSpec
from doublewin.logs import JsonlLog
from doublewin.progress import NULL_PROGRESS, Progress

TEST_METRICS = ("sa_best_sa", "ra_best_sa", "sa_best_ra", "ra_best_ra")


@dataclass(frozen=True)
class TransferResult:
    """Test SA/RA (points 0–100) at the best-val-SA and best-val-RA checkpoints, and more."""

    metrics: dict[str, Any]
    warnings: tuple[str, ...] = ()


def transfer(
    spec: TransferSpec,
    weights_path: str | Path,
    ticket_path: str | Path | None,
    *,
    workdir: str | Path,
    device: str | torch.device = "cpu",
    data_root: str | Path | None = None,
    progress: Progress = NULL_PROGRESS,
    log: JsonlLog | None = None,
    save_models: bool = True,
    compile: bool = False,
) -> TransferResult:
    """Fine-tune the ticket (or the dense θp when ``ticket_path`` is None) on ``spec.data``.

    ``workdir`` keeps the per-epoch checkpoint (an interrupted call resumes) and, with
    ``save_models``, receives ``best_sa.safetensors`` and ``best_ra.safetensors``.
    """
    from doublewin.data import prepare_data
    from doublewin.models import load_model, replace_head, save_weights, set_normalization
    from doublewin.tickets import load_ticket
    from doublewin.train import evaluate, train

    device = distributed.local_device(device)
    workdir = Path(workdir)
    model, meta = load_model(weights_path, device=device)
    resolution = int(spec.data.resolution or meta.input_size)
    train_loader, val_loader, test_loader, info = prepare_data(
        spec.data,
        resolution_default=resolution,
        batch_size=spec.train.batch_size,
        device=device,
        seed=spec.seed,
        root=data_root,
    )
    replace_head(model, info.num_classes, seed=spec.seed)
    if spec.normalization == "downstream":
        # The official recipe normalizes with the downstream dataset's statistics.
        set_normalization(model, info.mean, info.std)
    model.to(device)

    mask = None
    caught: list[str] = []
    sparsity = 0.0
    if ticket_path is not None:
        ticket = load_ticket(ticket_path)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            mask = ticket.fit(
                model, weights_hash=meta.content_hash, arch=meta.arch, source=str(ticket_path)
            )
        caught = [str(w.message) for w in seen]
        mask = mask.to(device)
        sparsity = float(mask.sparsity)

    result = train(
        model,
        spec.train,
        train_loader,
        val_loader,
        mask=mask,
        workdir=workdir,
        device=device,
        seed=spec.seed,
        progress=progress,
        log=log,
        compile=compile,
    )
    metrics: dict[str, Any] = {
        "sparsity": round(sparsity, 6),
        "num_classes": info.num_classes,
        "train_images": train_loader.num_samples,
    }
    final_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    same_checkpoint = result.metrics.get("best_val_sa_epoch") is not None and result.metrics.get(
        "best_val_sa_epoch"
    ) == result.metrics.get("best_val_ra_epoch")
    test: dict[str, Any] = {}
    for which in ("sa", "ra"):
        state = result.best_states.get(which) or final_state
        model.load_state_dict(state)
        if not (which == "ra" and same_checkpoint):
            # One checkpoint is best on both: its test numbers are measured once.
            test = evaluate(model, test_loader, attack=spec.eval_attack, device=device)
        metrics[f"sa_best_{which}"] = round(float(test["sa"]), 2)
        metrics[f"ra_best_{which}"] = round(float(test["ra"]), 2)
        if save_models and distributed.is_main():
            fine_tuned = _replace(
                meta,
                num_classes=info.num_classes,
                dataset=spec.data.name,
                source="transfer",
                regime=spec.train.regime,
            )
            save_weights(workdir / f"best_{which}.safetensors", model, fine_tuned)
    metrics["test_images"] = int(test["n"])
    for key, value in result.metrics.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            metrics.setdefault(key, value)
    if log is not None:
        log.write("transfer", **{k: metrics[k] for k in TEST_METRICS})
    # The per-epoch checkpoint holds optimizer state and best weights: large and no longer
    # needed once the test numbers are written.
    with contextlib.suppress(FileNotFoundError):
        (workdir / "checkpoint.pt").unlink()
    return TransferResult(metrics, tuple(caught))


def _replace(meta: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(meta, **changes)
