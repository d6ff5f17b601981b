"""The landscape stage: a ticket transferred with its trajectory recorded, then the loss on a
plane through its final weights and how sharp it is (the paper's Figure 6 and Finding 4).

The transfer run is ``spec.transfer`` run again here by the transfer stage's own fine-tuning
(same seed, same data, its validation, checkpoint choice and test attack), with the plane
parameters saved at ``spec.snapshots`` points along it (measure/trajectory.py). Then, on a
fixed sample of training images: the loss grid on the plane (measure/landscape.py), the
trajectory projected onto it, and the sharpness measures (measure/sharpness.py). Everything is
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
from doublewin.measure.landscape import (
    LossSurface,
    axis,
    loss_grid,
    pca_plane,
    random_plane,
    remove_partial,
)
from doublewin.measure.sharpness import mean_increase, top_eigenvalue
from doublewin.measure.trajectory import TrajectoryRecorder, read_trajectory, snapshot_every
from doublewin.stages.environment import Environment, Inputs
from doublewin.stages.transfer import TransferSetup, fine_tune, prepare_transfer
from doublewin.train.masking import MaskEnforcer
from doublewin.train.schedules import stretched

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
    """Run ``spec.transfer`` with its trajectory, then write ``paths.LANDSCAPE_GRID`` (an
    .npz: ``coords``, ``values``, ``sharpness_coords``, ``sharpness_values``, ``trajectory``
    (T × 2 plane coordinates), ``steps``, ``centre_loss``, ``plane``, ``loss``) into ``out``.
    Returns the transfer's metrics (the test SA/RA at its best checkpoints, as a transfer job
    of the same spec writes them), the centre loss, ``sharpness`` (mean loss increase within
    ``sharpness_radius``), ``hessian_top`` and the grid's extent."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare_transfer(spec.transfer, inputs, env)
    recorder = _recorder(spec, setup, out)
    metrics = fine_tune(spec.transfer, setup, out, env, callbacks=[recorder])
    model, mask = setup.model, setup.mask  # at the run's final weights: the plane's centre
    model.eval()
    batches = training_sample(
        spec.transfer.data,
        images=spec.images,
        resolution_default=int(spec.transfer.data.resolution or setup.meta.input_size),
        batch_size=spec.batch_size,
        device=setup.device,
        seed=spec.seed,
        root=env.data_root,
    )
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
    grids = _grids(spec, setup, plane, batches, radius, out, env)
    measured = {
        "centre_loss": grids["centre_loss"],
        "sharpness": grids.pop("sharpness"),
        "radius": radius,
        "trajectory_points": len(snapshots),
        **_hessian(spec, setup, batches),
    }
    with atomic_path(out / paths.LANDSCAPE_GRID) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            **grids,
            trajectory=trajectory,
            steps=np.array([step for step, _ in snapshots]),
            plane=np.array(spec.plane),
            loss=np.array(spec.loss),
        )
    _remove_work(out)
    if env.log is not None:
        env.log.write("landscape", **measured)
    return {**metrics, **measured}


def _recorder(spec: LandscapeSpec, setup: TransferSetup, out: Path) -> TrajectoryRecorder:
    """The callback that keeps ``spec.snapshots`` points of the run's trajectory, from m ⊙ θp
    on."""
    train_spec = stretched(spec.transfer.train, len(setup.train))
    total_steps = train_spec.epochs * len(setup.train)
    MaskEnforcer(setup.model, setup.mask).zero_pruned()  # the trajectory starts at m ⊙ θp
    every = snapshot_every(total_steps, spec.snapshots)
    return TrajectoryRecorder(out / paths.TRAJECTORY_DIR, setup.model, every, total_steps)


def _grids(
    spec: LandscapeSpec,
    setup: TransferSetup,
    plane: Any,
    batches: list[tuple[Any, Any]],
    radius: float,
    out: Path,
    env: Environment,
) -> dict[str, Any]:
    """The loss on ``plane`` and on the sharpness plane (each resumed from its last finished
    row), the centre loss and the sharpness."""
    model, mask, attack = setup.model, setup.mask, loss_attack(spec)
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
    return {
        "coords": coords,
        "values": values,
        "sharpness_coords": sharp_coords,
        "sharpness_values": sharp_values,
        "centre_loss": centre_loss,
        "sharpness": mean_increase(sharp_values, sharp_coords, centre_loss, spec.sharpness_radius),
    }


def _hessian(
    spec: LandscapeSpec, setup: TransferSetup, batches: list[tuple[Any, Any]]
) -> dict[str, Any]:
    """The top Hessian eigenvalue of the loss (adversarial examples first for the adversarial
    loss), or nothing with ``hessian_iterations: 0``."""
    if spec.hessian_iterations == 0:
        return {}
    attack = loss_attack(spec)
    if attack is not None:
        pgd = PGD.from_spec(attack, bn_mode="eval")
        batches = [(pgd(setup.model, x, y), y) for x, y in batches]
    top = top_eigenvalue(
        setup.model,
        batches,
        mask=setup.mask,
        iterations=spec.hessian_iterations,
        seed=spec.seed,
    )
    return {
        "hessian_top": top.value,
        "hessian_iterations": top.iterations,
        "hessian_relative_change": top.relative_change,
    }


def _remove_work(out: Path) -> None:
    """The snapshots, partial grids and the epoch checkpoint: large, and no longer needed once
    the grid file is written."""
    shutil.rmtree(out / paths.TRAJECTORY_DIR, ignore_errors=True)
    remove_partial(out / paths.LANDSCAPE_PARTIAL)
    remove_partial(out / paths.LANDSCAPE_SHARPNESS_PARTIAL)
    with contextlib.suppress(FileNotFoundError):
        (out / paths.CHECKPOINT).unlink()
