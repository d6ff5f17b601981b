"""Masks of a ticket spec's sparsity pattern: how a method's scores become an unstructured, a
channel or an N:M mask, one shot or round by round inside IMP.

- ``unstructured``: the lowest scores pruned globally (the paper's global magnitude pruning).
- ``channel``: per-weight scores summed over each channel's filters (channels.py); magnitude
  (OMP, IMP) uses the filters' L1 or L2 norms; random draws one score per channel.
- ``nm``: the N highest scores of every M kept (nm.py); IMP tightens (M−1):M … N:M.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from doublewin.core.errors import UserError
from doublewin.core.seeds import stream
from doublewin.core.specs import TicketSpec
from doublewin.models import arch_info, build_model
from doublewin.tickets.channel_budget import ChannelCost, allocate, channel_cost
from doublewin.tickets.channels import (
    ChannelGroup,
    aggregate_scores,
    channel_groups,
    channel_mask,
    channel_scores,
    channel_sparsity,
    check_channels,
    prunable_groups,
    prune_channels,
    pruned_positions,
)
from doublewin.tickets.ladder import check_rungs, imp_ladder, ticket_ladder
from doublewin.tickets.mask import Mask
from doublewin.tickets.nm import check_divides, check_pattern, nm_mask, ungroupable
from doublewin.tickets.pruning import (
    magnitude_scores,
    prune_fraction_of_remaining,
    prune_to_sparsity,
)
from doublewin.tickets.ticket import Ticket

# M of the N:M patterns sparse hardware runs (NVIDIA's 2:4, and its 1:2, 4:8), suggested
# when a given M fits too few layers.
NM_GROUP_SIZES = (4, 2, 8, 16)
# prune(weights, mask, round) -> the next rung's mask (IMP)
RoundPruner = Callable[[Mapping[str, torch.Tensor], Mask, int], Mask]


@dataclass
class Pattern:
    """A spec's pattern bound to a model: its channel groups when it has them."""

    spec: TicketSpec
    groups: list[ChannelGroup]
    cost: ChannelCost | None = None  # channel tickets: the cost in the budget's unit

    @classmethod
    def of(cls, spec: TicketSpec, model: nn.Module, scope_mask: Mask, input_size: int) -> Pattern:
        groups: list[ChannelGroup] = []
        cost = None
        if spec.pattern == "channel":
            groups = prunable_groups(channel_groups(model, input_size), scope_mask)
            cost = channel_cost(model, groups, input_size, spec.channel_unit)
        elif spec.pattern == "nm":
            check_divides(scope_mask, spec.nm[1])
        return cls(spec, groups, cost)

    @property
    def budgeted(self) -> bool:
        """Channels pruned to a budget (in params or FLOPs, or in rounded channel blocks)
        rather than to an exact count of channels."""
        return self.spec.channel_unit != "channels" or self.spec.channel_round > 1

    def one_shot(
        self,
        weight_scores: Mapping[str, torch.Tensor] | None,
        mask: Mask,
        sparsity: float,
        params: Mapping[str, torch.Tensor],
    ) -> Mask:
        """The mask at ``sparsity`` from per-weight scores (None: magnitude, in the pattern's
        own sense; for channels of ``method: random``, one random score per channel)."""
        spec = self.spec
        if spec.pattern == "unstructured":
            scores = weight_scores if weight_scores is not None else magnitude_scores(params, mask)
            return prune_to_sparsity(scores, mask, sparsity)
        if spec.pattern == "nm":
            n, m = spec.nm
            scores = weight_scores if weight_scores is not None else magnitude_scores(params, mask)
            return nm_mask(scores, mask, n, m)
        scores = self.channel_scores(weight_scores, params)
        already = pruned_positions_or_empty(mask, self.groups)
        if self.budgeted:
            assert self.cost is not None
            pruned = allocate(
                self.cost,
                self.groups,
                scores,
                already,
                sparsity,
                ratio=spec.channel_ratio,
                round_to=spec.channel_round,
            )
        else:
            pruned = prune_channels(scores, self.groups, already, sparsity, spec.channel_ratio)
        return channel_mask(mask, self.groups, pruned, params)

    def channel_scores(
        self, weight_scores: Mapping[str, torch.Tensor] | None, params: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        if self.spec.method == "random":
            generator = stream("random-channel-ticket", self.spec.seed)
            return {g.name: torch.rand(g.size, generator=generator) for g in self.groups}
        if weight_scores is not None:
            return aggregate_scores(self.groups, weight_scores)
        return channel_scores(self.groups, params, self.spec.channel_score)

    def imp_pruner(self) -> RoundPruner:
        """IMP's pruning after round k, from the trained weights: ``prune_rate`` of the kept
        weights (unstructured), of the kept channels (channel), or one more of every M (nm)."""
        spec = self.spec

        def prune(weights: Mapping[str, torch.Tensor], mask: Mask, k: int) -> Mask:
            if spec.pattern == "unstructured":
                return prune_fraction_of_remaining(
                    magnitude_scores(weights, mask), mask, spec.prune_rate
                )
            if spec.pattern == "nm":
                n, m = spec.nm
                return nm_mask(magnitude_scores(weights, mask), mask, m - k, m)
            return self.one_shot(None, mask, imp_ladder(spec.prune_rate, k)[-1], weights)

        return prune

    def describe(self, mask: Mask) -> dict[str, object]:
        """What a ticket file records about its pattern (nothing for unstructured tickets, so
        their files stay as they were)."""
        if self.spec.pattern == "unstructured":
            return {}
        if self.spec.pattern == "nm":
            m = self.spec.nm[1]  # an IMP rung on the way holds (M − k):M, not yet N:M
            return {"pattern": "nm", "nm": [round(mask.density * m), m]}
        out: dict[str, object] = {
            "pattern": "channel",
            "channel_sparsity": round(channel_sparsity(mask, self.groups), 6),
            "channel_groups": len(self.groups),
        }
        if self.budgeted and self.cost is not None:
            removed = pruned_positions(mask, self.groups)
            widths = [g.size - len(removed[g.name]) for g in self.groups]
            out["channel_budget"] = self.cost.unit
            out["budget_sparsity"] = round(1.0 - self.cost.cost(widths) / self.cost.dense, 6)
            out["channel_round"] = self.spec.channel_round
        return out


def pruned_positions_or_empty(mask: Mask, groups: list[ChannelGroup]) -> dict[str, set[int]]:
    """Channels ``mask`` already prunes (none when its BatchNorm entries are not there yet)."""
    if not groups or not all(name in mask for g in groups for name, _ in g.norms):
        return {}
    return pruned_positions(mask, groups)


@dataclass(frozen=True)
class PatternCheck:
    """What a ticket file says its pattern is, the numbers that describe it, and what breaks
    it (empty when the mask holds the pattern)."""

    pattern: str
    summary: str
    problems: tuple[str, ...]


def verify_pattern(mask: Mask, extra: Mapping[str, object], arch: str) -> PatternCheck:
    """Check a ticket's mask against the pattern its file records: every channel ticket's
    filter wholly kept or pruned and every channel group consistent; every N:M group keeping
    exactly N."""
    pattern = str(extra.get("pattern") or "unstructured")
    if pattern == "nm":
        n, m = (int(v) for v in extra.get("nm", (2, 4)))  # type: ignore[union-attr]
        problems = check_pattern(mask, n, m)
        groups = mask.num_total // m
        return PatternCheck(
            pattern, f"{n}:{m}, {groups:,} groups of {m} along the input dimension", tuple(problems)
        )
    if pattern == "channel":
        if not arch:
            return PatternCheck(pattern, "architecture unknown", ("no architecture to trace",))
        groups = prunable_groups(_traced_groups(arch), mask)
        problems = check_channels(mask, groups)
        total = sum(g.size for g in groups)
        summary = (
            f"{channel_sparsity(mask, groups):.2%} of {total:,} channels in {len(groups)} "
            "groups pruned"
        )
        if "budget_sparsity" in extra:
            summary += f"; {float(extra['budget_sparsity']):.2%} of the {extra['channel_budget']}"
        return PatternCheck(pattern, summary, tuple(problems))
    return PatternCheck("unstructured", "individual weights", ())


def verified(path: object, ticket: Ticket) -> Ticket:
    """``ticket`` (read from ``path``) when its mask holds the pattern its file records, else
    one UserError: a ticket labelled channel or 2:4 is exported, transferred and reported as
    that pattern, so a label its mask breaks is refused wherever the file is read."""
    check = verify_pattern(ticket.mask, ticket.info.extra, ticket.info.arch)
    if check.problems:
        raise UserError(pattern_problem(path, check))
    return ticket


def pattern_problem(path: object, check: PatternCheck) -> str:
    return (
        f"{path}: records a {check.pattern} pattern its mask does not hold "
        f"({len(check.problems)} problem(s), first: {check.problems[0]}); draw it again"
    )


@functools.lru_cache(maxsize=8)
def _traced_groups(arch: str) -> list[ChannelGroup]:
    """The channel groups of ``arch`` (traced once per process at its own input size)."""
    return channel_groups(_model(arch), arch_info(arch).input_size)


def nm_scope(spec: TicketSpec, model: nn.Module) -> tuple[TicketSpec, list[str]]:
    """An N:M spec with the layers that cannot hold the pattern (input size not a multiple of
    M, like a 3-channel stem) left out of its scope, as NVIDIA's ASP leaves them dense, and
    their names; refused only when no layer of the scope could hold it. Other patterns pass
    unchanged."""
    if spec.pattern != "nm":
        return spec, []
    n, m = spec.nm
    scope_mask = Mask.dense(model, spec.scope)
    left_out = ungroupable(scope_mask, m)
    if left_out and len(left_out) == len(scope_mask):
        raise UserError(
            f"tickets.pattern nm {n}:{m}: no layer in the scope has an input size that is a "
            f"multiple of {m} ({', '.join(left_out[:3])}…), so nothing could be pruned; "
            "choose another M or another pattern"
        )
    if not left_out:
        return spec, []
    _check_reach(scope_mask, n, m)
    scope = dataclasses.replace(spec.scope, exclude=(*spec.scope.exclude, *left_out))
    return dataclasses.replace(spec, scope=scope), left_out


def _check_reach(scope_mask: Mask, n: int, m: int) -> None:
    """Refuse an N:M pattern that the scope's larger part cannot hold: its ticket would be far
    less sparse than the 1 − N/M its name and its rung say."""
    held = _held(scope_mask, m)
    if 2 * held >= scope_mask.num_total:
        return
    total = scope_mask.num_total
    real = held * (1 - n / m) / total
    better = [k for k in NM_GROUP_SIZES if k > n and k != m and 2 * _held(scope_mask, k) >= total]
    advice = f"e.g. M = {better[0]}" if better else "or use another pattern"
    raise UserError(
        f"tickets.pattern nm {n}:{m}: only {held:,} of the scope's {total:,} weights lie in "
        f"layers whose input size is a multiple of {m}, so the ticket would be {real:.2%} "
        f"sparse, not {1 - n / m:.2%}; choose an M most layers can hold ({advice})"
    )


def _held(scope_mask: Mask, m: int) -> int:
    left_out = set(ungroupable(scope_mask, m))
    return sum(
        t.numel() for name, t in scope_mask.items() if name.rsplit(".", 1)[0] not in left_out
    )


def check_plan(spec: TicketSpec, arch: str | None, input_size: int | None = None) -> None:
    """Before anything runs: every rung of the spec's ladder keeps a weight of the
    architecture's scope (ladder.check_rungs), and its pattern fits the architecture at every
    rung (N:M: most of the scope in layers whose input size is a multiple of M; channels: no
    layer emptied). ``arch`` None (an imported file without metadata) is checked when the
    tickets are drawn."""
    if not arch:
        return
    info = arch_info(arch)
    model = _model(arch)
    spec, _ = nm_scope(spec, model)
    scope_mask = Mask.dense(model, spec.scope)
    check_rungs(spec, scope_mask.num_total, arch)
    if spec.pattern != "channel":
        return
    pattern = Pattern.of(spec, model, scope_mask, input_size or info.input_size)
    for target in ticket_ladder(spec):
        flat = {g.name: torch.zeros(g.size) for g in pattern.groups}
        if pattern.budgeted:
            assert pattern.cost is not None
            allocate(
                pattern.cost,
                pattern.groups,
                flat,
                {},
                target,
                ratio=spec.channel_ratio,
                round_to=spec.channel_round,
            )
        else:
            prune_channels(flat, pattern.groups, {}, target, spec.channel_ratio)


@functools.lru_cache(maxsize=8)
def _model(arch: str) -> nn.Module:
    """The architecture once per process: the plan checks every ticket spec against it."""
    return build_model(arch, 10)
