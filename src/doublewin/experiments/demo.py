"""The shipped demo experiments: ``configs/demo.yaml``, ``configs/demo-quick.yaml`` and
``configs/demo-vit.yaml``.

The configs live inside the package (``doublewin/configs``, linked as ``configs/`` at the
repository root) so an installed ``doublewin demo`` finds them.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch

from doublewin.core import paths


def config_dir() -> Path:
    return Path(str(resources.files("doublewin") / "configs"))


def demo_config(quick: bool = False, vit: bool = False) -> Path:
    """Path of the demo experiment file (the toy-size one with ``quick``, the one on a small
    timm ViT with ``vit``)."""
    if vit:
        return config_dir() / paths.VIT_DEMO_CONFIG
    return config_dir() / (paths.QUICK_DEMO_CONFIG if quick else paths.DEMO_CONFIG)


def demo_jobs(device: str = "auto") -> int:
    """Worker processes for the demo: one per GPU, else one per pair of CPU cores' worth of
    small jobs (the demo's tiny models use a core each better than two cores share one)."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return max(1, torch.cuda.device_count())
    return max(1, min(4, os.cpu_count() or 1))
