"""A ticket: a mask and its provenance (what it was drawn from, how, at which sparsity).

The file formats that store tickets are files.py (doublewin's) and official.py (the
official Double-Win-LTH ``*_mask`` state dicts).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope
from doublewin.tickets.mask import Mask

FORMAT = paths.TICKET_FORMAT


class TicketWeightsWarning(UserWarning):
    """A ticket is applied to weights other than those it was drawn from."""


@dataclass(frozen=True)
class TicketInfo:
    """Provenance of a ticket. Sparsities are fractions in [0, 1]; hashes are hex strings
    ("" when unknown, e.g. for an official file)."""

    arch: str = ""
    method: str = ""
    target_sparsity: float | None = None
    sparsity: float = 0.0
    kept: int = 0
    total: int = 0
    weights_hash: str = ""
    mask_hash: str = ""
    scope: MaskScope = field(default_factory=MaskScope)
    spec: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["scope"] = {
            "include_linear": self.scope.include_linear,
            "exclude": list(self.scope.exclude),
        }
        return out


@dataclass(frozen=True)
class Ticket:
    """A mask and where it came from."""

    mask: Mask
    info: TicketInfo

    def fit(
        self, model: nn.Module, *, weights_hash: str = "", arch: str = "", source: str = "ticket"
    ) -> Mask:
        """The mask, checked against ``model``.

        A ticket for another architecture or other shapes is a UserError. Weights other than
        those the ticket was drawn from are allowed, with a `TicketWeightsWarning` naming both
        content hashes (pass ``weights_hash`` of the weights the model holds).
        """
        if arch and self.info.arch and arch != self.info.arch:
            raise UserError(
                f"{source} was drawn for {self.info.arch}, the model is {arch}; "
                f"use a ticket drawn for {arch}"
            )
        try:
            self.mask.check_fits(model, what=source)
        except UserError:
            if self.info.extra.get("network"):
                raise UserError(
                    f"{source} is a ticket of its own network (a SuperTicket: another "
                    "architecture than the supernet); pass the network beside it, "
                    f"{self.info.extra['network']}, as the weights"
                ) from None
            raise
        if weights_hash and self.info.weights_hash and weights_hash != self.info.weights_hash:
            warnings.warn(
                f"{source} was drawn from weights {self.info.weights_hash} but is applied to "
                f"weights {weights_hash}",
                TicketWeightsWarning,
                stacklevel=2,
            )
        return self.mask


def make_info(
    mask: Mask,
    *,
    arch: str,
    method: str,
    weights_hash: str,
    target_sparsity: float | None = None,
    scope: MaskScope | None = None,
    spec: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> TicketInfo:
    """TicketInfo with the counts and the mask hash computed from ``mask``."""
    return TicketInfo(
        arch=arch,
        method=method,
        target_sparsity=target_sparsity,
        sparsity=mask.sparsity,
        kept=mask.num_kept,
        total=mask.num_total,
        weights_hash=weights_hash,
        mask_hash=mask.content_hash(),
        scope=scope or MaskScope(),
        spec=dict(spec or {}),
        extra=dict(extra or {}),
    )
