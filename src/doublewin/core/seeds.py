"""Named random streams: one seed, independent streams for independent purposes.

An experiment gives the same ``seed`` to a model's initialization (``torch.manual_seed``), to
its random ticket and to Gem-Miner's score initialization. Drawn from one stream, a random
mask would be a function of the initial weights — on the no-pre-training control, whose
weights *are* the initialization, a "random" ticket would not be random. Each purpose
therefore draws from its own generator, seeded by numpy's SeedSequence from (seed, purpose):
the streams are reproducible and statistically independent of each other and of
``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def stream(purpose: str, seed: int) -> torch.Generator:
    """A CPU generator for ``purpose`` (e.g. ``"random-ticket"``) and ``seed``."""
    key = zlib.crc32(purpose.encode())
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, key]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0]) & 0x7FFFFFFFFFFFFFFF)
