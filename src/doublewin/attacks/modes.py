"""Running an attack in a chosen train/eval mode and putting the model back as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

from torch import nn

BnMode = Literal["train", "eval"]


@contextlib.contextmanager
def model_mode(model: nn.Module, mode: BnMode | None) -> Iterator[nn.Module]:
    """Put ``model`` in ``mode`` (``None``: leave it as it is) for the block, then restore every
    module's own ``training`` flag — a model with some submodules frozen in eval mode comes back
    exactly as it went in."""
    if mode is None:
        yield model
        return
    flags = [(m, m.training) for m in model.modules()]
    model.train(mode == "train")
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag
