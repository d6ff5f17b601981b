"""Channel tickets: whole output channels kept or pruned, consistently across the layers that
share them.

A channel of a convolution cannot be removed alone when its output meets other layers: in a
ResNet the channels of a residual stream are the outputs of the stem, of every block's last
convolution and of the downsampling convolution, added together. torch-pruning's dependency
graph (Fang et al. 2023, VainF/Torch-Pruning) finds these couplings by tracing the model; each
*group* is a set of channels that go together: the filters of its convolutions, their
BatchNorm entries and the input slices of the layers that read them.

A channel mask prunes a group's channel by zeroing, in every convolution of the group, that
output filter, and the BatchNorm weight and bias of that channel: the channel's activation is
then exactly zero everywhere, so removing it (export.py) changes no logit. Input slices of the
next layers are left as they are (they multiply zeros). The head is never pruned.

Scores: a channel's score is the sum over its group's filters of their L1 or L2 norms
(``channel_score``). Pruning is global (channels of every group ranked together by their score
over the mean score of their group, torch-pruning's "mean" normalizer, so narrow and wide
layers compete on equal terms) or per layer (each group loses the same fraction). Either way
every group keeps at least one channel; a target that cannot be met so is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from doublewin.core.errors import UserError
from doublewin.models import head_module
from doublewin.tickets.mask import Mask


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that are pruned together: ``filters`` are (convolution weight name, indices of
    the group's channels in its output dimension), ``norms`` (BatchNorm weight or bias name,
    indices) and ``reads`` (weight name, indices in its input dimension) of the layers that read
    them. ``size``: the number of channels."""

    name: str
    size: int
    filters: tuple[tuple[str, tuple[int, ...]], ...]
    norms: tuple[tuple[str, tuple[int, ...]], ...]
    reads: tuple[tuple[str, tuple[int, ...]], ...]


def channel_groups(
    model: nn.Module, input_size: int, head: nn.Module | None = None
) -> list[ChannelGroup]:
    """The coupled channel groups of ``model`` (every convolution's output, the head excluded),
    traced on a [1, 3, input_size, input_size] input."""
    # deferred: torch-pruning traces the model; only channel tickets and exports need it
    import torch_pruning as tp

    names = {module: name for name, module in model.named_modules()}
    head = head if head is not None else head_module(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    example = torch.rand(1, 3, input_size, input_size, device=device)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    out = []
    ignored = [head] if head is not None else []
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d]):
        filters, norms, reads = [], [], []
        for dep, idxs in group:
            module = dep.target.module
            if module not in names:
                continue  # an operation of the trace (add, relu), not a layer
            name = names[module]
            indices = tuple(int(i) for i in idxs)
            handler = getattr(dep.handler, "__name__", str(dep.handler))
            if isinstance(module, nn.Conv2d) and "out" in handler:
                filters.append((f"{name}.weight", indices))
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                norms += [(f"{name}.weight", indices), (f"{name}.bias", indices)]
            elif isinstance(module, (nn.Conv2d, nn.Linear)) and "in" in handler:
                reads.append((f"{name}.weight", indices))
        if filters:
            size = len(filters[0][1])
            out.append(
                ChannelGroup(filters[0][0], size, tuple(filters), tuple(norms), tuple(reads))
            )
    model.train(was_training)
    return out


def prunable_groups(groups: list[ChannelGroup], mask: Mask) -> list[ChannelGroup]:
    """The groups whose every filter is in the mask's scope (a channel is pruned in all its
    filters or not at all)."""
    return [g for g in groups if all(name in mask for name, _ in g.filters)]


def channel_mask(
    scope_mask: Mask,
    groups: list[ChannelGroup],
    pruned: Mapping[str, set[int]],
    params: Mapping[str, torch.Tensor],
) -> Mask:
    """The mask that prunes, in each group, the channel positions ``pruned[group.name]``
    (positions 0 … size − 1 of the group): its filters and BatchNorm entries."""
    mask = Mask({name: m.clone() for name, m in scope_mask.items()})
    for group in groups:
        drop = sorted(pruned.get(group.name, ()))
        for name, _ in group.norms:
            if name not in mask:
                mask[name] = torch.ones_like(params[name], dtype=torch.bool)
        if not drop:
            continue
        for name, indices in (*group.filters, *group.norms):
            mask[name][[indices[p] for p in drop]] = False
    return mask


def pruned_positions(mask: Mask, groups: list[ChannelGroup]) -> dict[str, set[int]]:
    """The channel positions of each group that ``mask`` prunes (a filter fully pruned)."""
    out = {}
    for group in groups:
        name, indices = group.filters[0]
        m = mask[name]
        out[group.name] = {p for p, i in enumerate(indices) if not bool(m[i].any())}
    return out


def channel_scores(
    groups: list[ChannelGroup], params: Mapping[str, torch.Tensor], norm: str = "l1"
) -> dict[str, torch.Tensor]:
    """Per group, each channel's score: the sum of its filters' L1 (or L2) norms."""
    order = 1 if norm == "l1" else 2
    out = {}
    for group in groups:
        total = torch.zeros(group.size)
        for name, indices in group.filters:
            w = params[name].detach().float().cpu()[list(indices)]
            total += w.flatten(1).norm(p=order, dim=1)
        out[group.name] = total
    return out


def aggregate_scores(
    groups: list[ChannelGroup], weight_scores: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Per-weight scores (SNIP, GraSP, random) summed over each channel's filters."""
    out = {}
    for group in groups:
        total = torch.zeros(group.size)
        for name, indices in group.filters:
            total += weight_scores[name].detach().float().cpu()[list(indices)].flatten(1).sum(1)
        out[group.name] = total
    return out


def prune_channels(
    scores: Mapping[str, torch.Tensor],
    groups: list[ChannelGroup],
    already: Mapping[str, set[int]],
    sparsity: float,
    ratio: str = "global",
) -> dict[str, set[int]]:
    """The pruned positions per group at channel ``sparsity`` (fraction of all channels of the
    groups), keeping those ``already`` pruned pruned and at least one channel per group."""
    total = sum(g.size for g in groups)
    target = round(sparsity * total)
    done = sum(len(already.get(g.name, ())) for g in groups)
    if target < done:
        raise UserError(
            f"channel sparsity {sparsity:.4f} is below what the mask already prunes "
            f"({done / total:.4f}); ask for a higher sparsity"
        )
    if ratio == "layer":
        out = {}
        for g in groups:
            count = round(sparsity * g.size)
            if count >= g.size:
                raise UserError(
                    f"channel sparsity {sparsity:.4f} would empty {g.name} ({g.size} channels); "
                    f"ask for at most {1 - 1 / g.size:.4f}"
                )
            out[g.name] = _lowest(scores[g.name], already.get(g.name, set()), count)
        return out
    if target > total - len(groups):
        raise UserError(
            f"channel sparsity {sparsity:.4f} would empty a layer: {len(groups)} channel groups "
            f"must keep a channel each; ask for at most {(total - len(groups)) / total:.4f}"
        )
    candidates = []
    for g in groups:
        mean = float(scores[g.name].mean()) or 1.0
        taken = already.get(g.name, set())
        for p in range(g.size):
            if p not in taken:
                candidates.append((float(scores[g.name][p]) / mean, g.name, p))
    candidates.sort()
    out = {g.name: set(already.get(g.name, set())) for g in groups}
    size = {g.name: g.size for g in groups}
    need = target - done
    for _, name, p in candidates:
        if need == 0:
            break
        if len(out[name]) + 1 >= size[name]:
            continue  # the floor: every group keeps a channel
        out[name].add(p)
        need -= 1
    return out


def _lowest(score: torch.Tensor, taken: set[int], count: int) -> set[int]:
    out = set(taken)
    for p in torch.argsort(score, stable=True).tolist():
        if len(out) >= count:
            break
        out.add(p)
    return out


def channel_sparsity(mask: Mask, groups: list[ChannelGroup]) -> float:
    """The fraction of the groups' channels ``mask`` prunes."""
    total = sum(g.size for g in groups)
    pruned = sum(len(v) for v in pruned_positions(mask, groups).values())
    return pruned / total if total else 0.0


def check_channels(mask: Mask, groups: list[ChannelGroup]) -> list[str]:
    """What breaks the channel pattern: a filter neither wholly kept nor wholly pruned, or a
    group whose filters (or BatchNorm entries) disagree on a channel. Empty when it holds."""
    problems = []
    for group in groups:
        states = []
        for name, indices in (*group.filters, *group.norms):
            if name not in mask:
                problems.append(f"{name}: not in the mask")
                continue
            m = mask[name][list(indices)]
            flat = m.reshape(len(indices), -1)
            partial = flat.any(1) & ~flat.all(1)
            if bool(partial.any()):
                problems.append(f"{name}: {int(partial.sum())} filter(s) partly pruned")
            states.append(flat.all(1))
        if states and not all(bool(torch.equal(s, states[0])) for s in states):
            problems.append(f"group {group.name}: its layers disagree on which channels are kept")
    return problems
