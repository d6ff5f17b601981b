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
from doublewin.cli.app import app, console, print_json, set_threads
from doublewin.cli.standalone import overrides_of, run_alone, transfer_overrides
from doublewin.core import paths
from doublewin.core.atomic import atomic_write_bytes
from doublewin.core.build import load_spec

TRANSFER = opt.TrainingOptions("landscape", "transfer.")


@app.command("landscape")
def landscape_command(
    weights: opt.Weights,
    data: Annotated[str, typer.Option("--data", help="Downstream dataset (transfer.data.name).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the grid, figure and metrics.")],
    ticket: opt.Ticket = None,
    fraction: TRANSFER.Fraction = None,
    regime: Annotated[
        str | None,
        typer.Option("--regime", help="st or at transfer (default at, or the --config's)"),
    ] = None,
    seed: TRANSFER.Seed = None,
    epochs: TRANSFER.Epochs = None,
    lr: TRANSFER.Lr = None,
    resolution: TRANSFER.Resolution = None,
    plane: opt.field_option(
        "--plane", str, "landscape", "plane", "random (filter-normalized) or pca"
    ) = None,
    loss: opt.field_option("--loss", str, "landscape", "loss", "clean or adversarial") = None,
    grid: opt.field_option("--grid", int, "landscape", "grid", "points per axis (odd)") = None,
    radius: opt.field_option(
        "--radius", float, "landscape", "radius", "the plane spans [-radius, radius]²"
    ) = None,
    images: opt.field_option(
        "--images", int, "landscape", "images", "training images the loss averages over"
    ) = None,
    snapshots: opt.field_option(
        "--snapshots", int, "landscape", "snapshots", "trajectory points along the run"
    ) = None,
    hessian_iterations: opt.field_option(
        "--hessian-iterations", int, "landscape", "hessian_iterations", "power iterations (0 = off)"
    ) = None,
    config: opt.Config = None,
    overrides: opt.SetSpec = None,
    device: opt.Device = "auto",
    data_root: opt.DataRoot = None,
    threads: opt.Threads = None,
    as_json: opt.Json = False,
) -> None:
    """Loss contours and training trajectory of a transferred ticket, with its sharpness."""
    set_threads(threads)
    if regime is None and config is None:
        regime = "at"  # Figure 6 is AT transfer; a --config's own regime stands otherwise
    given = transfer_overrides(
        "transfer.",
        weights,
        ticket,
        data=data,
        fraction=fraction,
        regime=regime,
        seed=seed,
        epochs=epochs,
        lr=lr,
        resolution=resolution,
    )
    spec = load_spec(
        "landscape",
        config,
        overrides_of(
            {
                **given,
                "plane": plane,
                "loss": loss,
                "grid": grid,
                "radius": radius,
                "images": images,
                "snapshots": snapshots,
                "hessian_iterations": hessian_iterations,
            },
            overrides,
        ),
    )
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.analysis.report.landscape_figure import panel_png
    from doublewin.stages import Inputs

    inputs = Inputs(weights=weights, ticket=ticket)
    m = run_alone(
        "landscape",
        spec,
        inputs,
        out,
        device=device,
        data_root=data_root,
        as_json=as_json,
        metrics=True,
    )
    if m is None:  # another rank of a torchrun
        return
    shown = "AT" if spec.transfer.train.regime == "at" else "ST"
    title = f"{data}, {shown}, sparsity {m['sparsity']:.2%}"
    atomic_write_bytes(out / paths.LANDSCAPE_FIGURE, panel_png(out / paths.LANDSCAPE_GRID, title))
    if as_json:
        print_json(m)
        return
    hessian = f", top Hessian eigenvalue {m['hessian_top']:.4g}" if "hessian_top" in m else ""
    console.print(
        f"{title}: loss {m['centre_loss']:.4f} at the centre; sharpness (mean increase within "
        f"radius {spec.sharpness_radius:g}) {m['sharpness']:.4f}{hessian}; "
        f"test at the best-val-RA checkpoint: SA {m['sa_best_ra']:.2f}% RA {m['ra_best_ra']:.2f}%"
    )
    console.print(f"figure: {out / paths.LANDSCAPE_FIGURE}; grid: {out / paths.LANDSCAPE_GRID}")
