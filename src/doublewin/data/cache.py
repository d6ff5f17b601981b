"""The cache of generated datasets: ``$DOUBLEWIN_CACHE`` (default ``~/.cache/doublewin``).

Embedded datasets are generated once and kept as safetensors files, written under a temporary
name and renamed, so a killed generation never leaves a truncated cache file behind.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from doublewin.core import paths
from doublewin.core.atomic import atomic_path


def cached_tensors(
    name: str, make: Callable[[], dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Load ``<cache>/datasets/<name>.safetensors``, or build it with ``make`` and store it.

    A cache file that cannot be read (truncated by hand, wrong content) is rebuilt.
    """
    path = paths.cached_dataset(name)
    if path.exists():
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError):
            pass  # rebuilt below: the cache is ours and is always reproducible
    tensors = {k: v.contiguous() for k, v in make().items()}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp))
    except OSError:
        pass  # a read-only cache only costs regeneration next time
    return tensors
