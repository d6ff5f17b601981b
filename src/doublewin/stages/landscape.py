"""The landscape stage: a ticket transferred with its trajectory recorded, then the loss on a
plane through its final weights and how sharp it is (the paper's Figure 6 and Finding 4).

The transfer run is ``spec.transfer`` trained again here (same seed, same data), with the
plane parameters saved at ``spec.snapshots`` points along it (train/trajectory.py). Then, on a
fixed sample of training images: the loss grid on the plane (train/landscape.py), the
trajectory projected onto it, and the sharpness measures (train/sharpness.py). Everything is
resumable: training from its epoch checkpoint, the grids from their last finished row. Once
the grid file is written, the snapshots and the checkpoint are removed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from doublewin.attacks import PGD
from doublewin.core import paths
from doublewin.core.atomic import atomic_path
from doublewin.core.specs import AttackSpec, LandscapeSpec
from doublewin.core.typed import to_dict
from doublewin.data import training_sample
from doublewin.stages.environment import Environment, Inputs
from doublewin.stages.transfer import prepare_transfer
from doublewin.train import evaluate, train
from doublewin.train.landscape import (
    LossSurface,
    axis,
    loss_grid,
    pca_plane,
    random_plane,
    remove_partial,
)
from doublewin.train.masking import MaskEnforcer
from doublewin.train.schedules import stretched
from doublewin.train.sharpness import mean_increase, top_eigenvalue
from doublewin.train.trajectory import TrajectoryRecorder, read_trajectory, snapshot_every

# The pca plane's default radius: this much beyond the trajectory's farthest coordinate.
PCA_MARGIN = 1.25
# The sharpness grid: points per axis over [-sharpness_radius, sharpness_radius].
SHARPNESS_GRID = 11


def loss_attack(spec: LandscapeSpec) -> AttackSpec | None:
    """The attack of the adversarial loss (None for the clean loss): ``spec.attack``, else the
    transfer's training attack."""
    if spec.loss == "clean":
        return None
    return spec.attack or spec.transfer.train.attack


def landscape(spec: LandscapeSpec, inputs: Inputs, out: Path, env: Environment) -> dict[str, Any]:
    """Train ``spec.transfer`` with its trajectory, then write ``paths.LANDSCAPE_GRID`` (an
    .npz: ``coords``, ``values``, ``sharpness_coords``, ``sharpness_values``, ``trajectory``
    (T × 2 plane coordinates), ``steps``, ``centre_loss``, ``plane``, ``loss``) into ``out``.
    Returns the metrics: the final weights' test SA/RA, the centre loss, ``sharpness`` (mean
    loss increase within ``sharpness_radius``), ``hessian_top`` and the grid's extent."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare_transfer(spec.transfer, inputs, env)
    model, mask, device = setup.model, setup.mask, setup.device
    train_spec = stretched(spec.transfer.train, len(setup.train))
    total_steps = train_spec.epochs * len(setup.train)
    MaskEnforcer(model, mask).zero_pruned()  # the trajectory starts at m ⊙ θp
    recorder = TrajectoryRecorder(
        out / paths.TRAJECTORY_DIR, model, snapshot_every(total_steps, spec.snapshots), total_steps
    )
    train(
        model,
        spec.transfer.train,
        setup.train,
        setup.val,
        mask=mask,
        workdir=out,
        device=device,
        seed=spec.transfer.seed,
        progress=env.progress,
        log=env.log,
        callbacks=[recorder],
        compile=env.compile,
    )
    model.eval()
    test = evaluate(model, setup.test, attack=spec.transfer.eval_attack, device=device)
    batches = training_sample(
        spec.transfer.data,
        images=spec.images,
        resolution_default=int(spec.transfer.data.resolution or setup.meta.input_size),
        batch_size=spec.batch_size,
        device=device,
        seed=spec.seed,
        root=env.data_root,
    )
    attack = loss_attack(spec)
    snapshots = read_trajectory(out / paths.TRAJECTORY_DIR)
    plane = (
        pca_plane(model, [s for _, s in snapshots])
        if spec.plane == "pca"
        else random_plane(model, mask, spec.seed)
    )
    trajectory = np.array([plane.project(s) for _, s in snapshots])
    radius = spec.radius or (
        PCA_MARGIN * float(np.abs(trajectory).max()) if spec.plane == "pca" else 1.0
    )
    identity = json.dumps({**to_dict(spec), "radius": radius}, sort_keys=True)
    coords = axis(spec.grid, radius)
    task = env.progress.task("landscape grid", spec.grid + SHARPNESS_GRID)

    def advance(done: int, total: int) -> None:
        task.advance(1)

    surface = LossSurface(model, plane, batches, attack=attack, seed=spec.seed)
    values = loss_grid(
        surface, coords, partial=out / paths.LANDSCAPE_PARTIAL, identity=identity, on_row=advance
    )
    # Sharpness on the filter-normalized random plane, whatever plane the figure uses.
    sharp_plane = plane if spec.plane == "random" else random_plane(model, mask, spec.seed)
    sharp_surface = LossSurface(model, sharp_plane, batches, attack=attack, seed=spec.seed + 1)
    sharp_coords = axis(SHARPNESS_GRID, spec.sharpness_radius)
    sharp_values = loss_grid(
        sharp_surface,
        sharp_coords,
        partial=out / paths.LANDSCAPE_SHARPNESS_PARTIAL,
        identity=identity,
        on_row=advance,
    )
    task.close()
    middle = SHARPNESS_GRID // 2
    centre_loss = float(sharp_values[middle, middle])
    sharpness = mean_increase(sharp_values, sharp_coords, centre_loss, spec.sharpness_radius)
    metrics: dict[str, Any] = {
        "sa": round(float(test["sa"]), 2),
        "ra": round(float(test["ra"]), 2) if test["ra"] is not None else None,
        "sparsity": round(float(mask.sparsity), 6) if mask is not None else 0.0,
        "centre_loss": centre_loss,
        "sharpness": sharpness,
        "radius": radius,
        "trajectory_points": len(snapshots),
    }
    if spec.hessian_iterations > 0:
        hessian_batches = batches
        if attack is not None:
            pgd = PGD.from_spec(attack, bn_mode="eval")
            hessian_batches = [(pgd(model, x, y), y) for x, y in batches]
        top = top_eigenvalue(
            model, hessian_batches, mask=mask, iterations=spec.hessian_iterations, seed=spec.seed
        )
        metrics.update(
            hessian_top=top.value,
            hessian_iterations=top.iterations,
            hessian_relative_change=top.relative_change,
        )
    with atomic_path(out / paths.LANDSCAPE_GRID) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            coords=coords,
            values=values,
            sharpness_coords=sharp_coords,
            sharpness_values=sharp_values,
            trajectory=trajectory,
            steps=np.array([step for step, _ in snapshots]),
            centre_loss=centre_loss,
            plane=np.array(spec.plane),
            loss=np.array(spec.loss),
        )
    # The snapshots, partial grids and the epoch checkpoint are large and no longer needed.
    shutil.rmtree(out / paths.TRAJECTORY_DIR, ignore_errors=True)
    remove_partial(out / paths.LANDSCAPE_PARTIAL)
    remove_partial(out / paths.LANDSCAPE_SHARPNESS_PARTIAL)
    with contextlib.suppress(FileNotFoundError):
        (out / paths.CHECKPOINT).unlink()
    if env.log is not None:
        env.log.write("landscape", **{k: v for k, v in metrics.items() if k != "ra"})
    return metrics
