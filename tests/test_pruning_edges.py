"""Global pruning at its edges, each case by hand: nothing to prune, everything to prune, the
ranges of amount and sparsity, missing and NaN scores, and the tie rule's use of its own
generator and of random order among equal shares."""

from __future__ import annotations

import pytest
import torch

from doublewin.core.errors import RunFailure, UserError
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import (
    prune_fraction_of_remaining,
    prune_lowest,
    prune_to_sparsity,
)


def _mask(*sizes: int) -> Mask:
    return Mask({f"t{i}": torch.ones(n, dtype=torch.bool) for i, n in enumerate(sizes)})


def _scores(mask: Mask) -> dict[str, torch.Tensor]:
    """Distinct scores: tensor i holds i·100 + 0, 1, 2, …"""
    return {
        n: 100.0 * i + torch.arange(m.numel(), dtype=torch.float32)
        for i, (n, m) in enumerate(mask.items())
    }


def test_pruning_nothing_returns_the_same_mask_and_a_negative_count_is_refused():
    mask = prune_lowest(_scores(_mask(4, 4)), _mask(4, 4), 3)
    assert prune_lowest(_scores(mask), mask, 0).equals(mask)
    assert prune_to_sparsity(_scores(mask), mask, 3 / 8).equals(mask)  # already there
    assert prune_fraction_of_remaining(_scores(mask), mask, 0.0).equals(mask)
    with pytest.raises(ValueError, match=r"cannot prune a negative number of weights \(-1\)"):
        prune_lowest(_scores(mask), mask, -1)


@pytest.mark.parametrize("ties", [None, 0])
def test_every_kept_weight_can_be_pruned_but_not_one_more(ties):
    mask = _mask(3, 5)
    generator = None if ties is None else torch.Generator().manual_seed(ties)
    empty = prune_lowest(_scores(mask), mask, 8, ties=generator)
    assert empty.num_kept == 0
    assert prune_fraction_of_remaining(_scores(mask), mask, 1.0).num_kept == 0
    with pytest.raises(UserError, match="cannot prune 9 weights: only 8 are left"):
        prune_lowest(_scores(mask), mask, 9, ties=generator)


@pytest.mark.parametrize(("amount", "ok"), [(0.0, True), (1.0, True), (-0.1, False), (1.5, False)])
def test_a_rounds_amount_is_a_fraction_in_the_closed_unit_interval(amount, ok):
    mask = _mask(10)
    if ok:
        assert prune_fraction_of_remaining(_scores(mask), mask, amount).num_pruned == 10 * amount
    else:
        with pytest.raises(UserError, match="outside \\[0, 1\\]"):
            prune_fraction_of_remaining(_scores(mask), mask, amount)


@pytest.mark.parametrize(("sparsity", "ok"), [(0.0, True), (0.9, True), (1.0, False), (1.5, False)])
def test_a_target_sparsity_is_in_the_half_open_unit_interval(sparsity, ok):
    mask = _mask(10)
    if ok:
        assert prune_to_sparsity(_scores(mask), mask, sparsity).num_pruned == round(10 * sparsity)
    else:
        with pytest.raises(UserError, match="outside \\[0, 1\\)"):
            prune_to_sparsity(_scores(mask), mask, sparsity)


def test_missing_and_nan_scores_are_named():
    mask = _mask(2, 2, 2)
    with pytest.raises(ValueError, match="no scores for t1$"):
        prune_lowest({"t0": torch.zeros(2)}, mask, 1)
    nan = {n: torch.tensor([0.0, float("nan")]) for n in mask}
    with pytest.raises(
        RunFailure, match="pruning scores contain NaN; the model or the scoring data diverged"
    ):
        prune_lowest(nan, mask, 1)


def test_the_tie_rule_draws_from_its_own_generator_only():
    mask = _mask(6, 6)
    tied = {n: torch.zeros(6) for n in mask}
    picks = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        out = prune_lowest(tied, mask, 3, ties=torch.Generator().manual_seed(5))
        picks.append(out)
    assert picks[0].equals(picks[1])


def test_equal_shares_at_the_cut_are_taken_in_random_order():
    # Two tensors of four tied weights, one to prune: both candidates of share 1/4 are equal,
    # so each tensor must lose the weight about half the time over generator seeds.
    mask = _mask(4, 4)
    tied = {n: torch.zeros(4) for n in mask}
    first = 0
    for seed in range(200):
        out = prune_lowest(tied, mask, 1, ties=torch.Generator().manual_seed(seed))
        first += int(out["t0"].sum()) == 3
    assert 70 <= first <= 130, first  # binomial(200, ½): 100 ± 30 is beyond 4 standard deviations


def test_nan_scores_fail_with_exactly_one_line():
    mask = _mask(2)
    with pytest.raises(RunFailure) as err:
        prune_lowest({"t0": torch.tensor([0.0, float("nan")])}, mask, 1)
    assert str(err.value) == "pruning scores contain NaN; the model or the scoring data diverged"
