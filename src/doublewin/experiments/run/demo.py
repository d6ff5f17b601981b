"""The shipped demo experiments: ``configs/demo.yaml``, ``configs/demo-quick.yaml`` and
``configs/demo-vit.yaml``.

The configs live inside the package (``doublewin/configs``, linked as ``configs/`` at the
repository root) so an installed ``doublewin demo`` finds them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from doublewin.core import paths
from doublewin.core.resources import cpu_cores


def config_dir() -> Path:
    return Path(str(resources.files("doublewin") / "configs"))


def demo_config(quick: bool = False, vit: bool = False) -> Path:
    """Path of the demo experiment file (the toy-size one with ``quick``, the one on a small
    timm ViT with ``vit``)."""
    if vit:
        return config_dir() / paths.VIT_DEMO_CONFIG
    return config_dir() / (paths.QUICK_DEMO_CONFIG if quick else paths.DEMO_CONFIG)


# Workers sharing one GPU by default: one, until the prepared GPU check (tools/gpu_check.py)
# has measured the quick demo at 1, 2, 4 and 8 (docs/benchmarks.md).
WORKERS_PER_GPU = 1


def demo_jobs(device: str = "auto", per_gpu: int | None = None) -> int:
    """Worker processes for the demo: ``per_gpu`` per GPU (small models leave a GPU idle with
    one: launch-bound), else one per CPU core up to 4 (the demo's tiny models use a core each
    better than two cores share one)."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return max(1, torch.cuda.device_count()) * (per_gpu or WORKERS_PER_GPU)
    return min(4, cpu_cores())


# `doublewin demo --landscapes`: the paper's Figure 6 at the demo's scale, added to its run (the
# IMP (ST) ticket on the rung nearest 73.79%, AT-transferred again with its trajectory at each
# fraction, from each pre-training, the first three seeds; the loss on the plane of the
# trajectory's two principal directions; docs/landscape.md).
LANDSCAPE = (
    "{sparsity: 0.7379, method: imp, imp_regime: std, regimes: [at], seeds: [0, 1, 2], "
    "plane: pca, grid: 9, images: 128, snapshots: 12, hessian_iterations: 8}"
)


def landscape_overrides() -> list[str]:
    """The ``--set`` that adds the demo's loss landscapes."""
    return [f"analysis.landscape={LANDSCAPE}"]
