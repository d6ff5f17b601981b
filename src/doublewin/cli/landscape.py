"""`doublewin landscape`: a ticket transferred with its trajectory, the loss on a plane through
its final weights, the contour-plus-trajectory figure and the sharpness (the paper's Figure 6).

Options map to fields of the landscape spec (``transfer.*`` for the transfer run; docs/specs.md).
The output folder keeps the training checkpoint, the snapshots and the finished grid rows, so
the same command resumes after an interruption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.cli.standalone import StageEnv, TransferRun, stage_env, transfer_run
from doublewin.core import paths
from doublewin.core.atomic import atomic_write_bytes

RUN = transfer_run(
    "landscape",
    "transfer.",
    data="Downstream dataset (transfer.data.name).",
    regime="st or at transfer (default at, or the --config's)",
)


def _field(flag: str, kind: type, key: str, text: str) -> object:
    return opt.field_option(flag, kind, "landscape", key, text)


@app.command("landscape")
@RUN.add("run")
@stage_env().add("env")
def landscape_command(
    *,
    run: TransferRun,
    out: Annotated[Path, typer.Option("--out", help="Folder for the grid, figure and metrics.")],
    plane: _field("--plane", str, "plane", "random (filter-normalized) or pca") = None,
    loss: _field("--loss", str, "loss", "clean or adversarial") = None,
    grid: _field("--grid", int, "grid", "points per axis (odd)") = None,
    radius: _field("--radius", float, "radius", "the plane spans [-radius, radius]²") = None,
    images: _field("--images", int, "images", "training images the loss averages over") = None,
    snapshots: _field("--snapshots", int, "snapshots", "trajectory points along the run") = None,
    hessian_iterations: _field(
        "--hessian-iterations", int, "hessian_iterations", "power iterations (0 = off)"
    ) = None,
    env: StageEnv,
) -> None:
    """Loss contours and training trajectory of a transferred ticket, with its sharpness."""
    # Figure 6 is AT transfer; a --config's own regime stands otherwise.
    given = run.overrides(regime="at" if env.config is None else None)
    fields = {
        "plane": plane,
        "loss": loss,
        "grid": grid,
        "radius": radius,
        "images": images,
        "snapshots": snapshots,
        "hessian_iterations": hessian_iterations,
    }
    spec = env.spec("landscape", {**given, **fields})
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.analysis.report.landscape_figure import panel_png

    m = env.run("landscape", spec, run.inputs(), out, metrics=True)
    if m is None:  # another rank of a torchrun
        return
    shown = "AT" if spec.transfer.train.regime == "at" else "ST"
    title = f"{run.data}, {shown}, sparsity {m['sparsity']:.2%}"
    atomic_write_bytes(out / paths.LANDSCAPE_FIGURE, panel_png(out / paths.LANDSCAPE_GRID, title))
    if env.as_json:
        print_json(m)
        return
    hessian = f", top Hessian eigenvalue {m['hessian_top']:.4g}" if "hessian_top" in m else ""
    console.print(
        f"{title}: loss {m['centre_loss']:.4f} at the centre; sharpness (mean increase within "
        f"radius {spec.sharpness_radius:g}) {m['sharpness']:.4f}{hessian}; "
        f"test at the best-val-RA checkpoint: SA {m['sa_best_ra']:.2f}% RA {m['ra_best_ra']:.2f}%"
    )
    console.print(f"figure: {out / paths.LANDSCAPE_FIGURE}; grid: {out / paths.LANDSCAPE_GRID}")
