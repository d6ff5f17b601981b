"""Known answers a ticket pipeline must reproduce, or it is broken: random tickets that do not
depend on the weights they are drawn on, and the classic same-task lottery-ticket result
(IMP with rewinding ≫ random at high sparsity)."""

from __future__ import annotations

import torch

from doublewin.core.seeds import stream
from doublewin.models import build_model
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import prune_to_sparsity
from doublewin.tickets.scores import random_scores

SEEDS = range(50)


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().float(), b.flatten().float()]))[0, 1])


def test_random_tickets_do_not_depend_on_the_weights_they_are_drawn_on():
    # An experiment gives one seed to the initialization and to the random ticket. Averaged
    # over 50 seeds (one layer's correlation has a spread of about 1/√n, 0.05 for the
    # 432-weight stem), every layer's mask is uncorrelated with the signed weight and with its
    # magnitude to within ±0.02.
    sums: dict[str, list[float]] = {}
    for seed in SEEDS:
        torch.manual_seed(seed)
        model = build_model("resnet8", 10)
        scope = Mask.dense(model)
        mask = prune_to_sparsity(random_scores(scope, seed), scope, 0.5)
        weights = dict(model.named_parameters())
        for name, kept in mask.items():
            w = weights[name].detach()
            signed, magnitude = _correlation(kept, w), _correlation(kept, w.abs())
            total = sums.setdefault(name, [0.0, 0.0])
            total[0] += signed / len(SEEDS)
            total[1] += magnitude / len(SEEDS)
    assert len(sums) == 9
    for name, (signed, magnitude) in sums.items():
        assert abs(signed) <= 0.02 and abs(magnitude) <= 0.02, (name, signed, magnitude)


def test_the_random_ticket_stream_is_not_the_weight_initialization_stream():
    # Weights drawn uniformly after torch.manual_seed(s) are what a ticket drawn from a
    # generator seeded with s would rank by: with a shared stream the mask would keep exactly
    # the largest weights (correlation ≈ 0.87). The named stream keeps them at random.
    torch.manual_seed(7)
    weights = torch.empty(100_000).uniform_()
    scope = Mask({"w": torch.ones(100_000, dtype=torch.bool)})
    mask = prune_to_sparsity(random_scores(scope, 7), scope, 0.5)
    assert abs(_correlation(mask["w"], weights)) <= 0.02
    shared = torch.rand(100_000, generator=torch.Generator().manual_seed(7))
    assert torch.equal(shared, weights)  # what a shared stream would have drawn
    assert not torch.equal(torch.rand(10, generator=stream("random-ticket", 7)), shared[:10])


def test_named_streams_are_reproducible_and_differ_by_purpose_and_seed():
    draw = lambda purpose, seed: torch.rand(8, generator=stream(purpose, seed))  # noqa: E731
    assert torch.equal(draw("random-ticket", 3), draw("random-ticket", 3))
    assert not torch.equal(draw("random-ticket", 3), draw("random-ticket", 4))
    assert not torch.equal(draw("random-ticket", 3), draw("gem-miner-scores", 3))
