"""Metrics logs: one JSON object per line (``log.jsonl``), mirrored to TensorBoard when the
``tensorboard`` package is installed."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from doublewin.core.paths import TENSORBOARD_DIR


class JsonlLog:
    """Append-only JSONL log. Each record gets ``event`` and a wall-clock ``time``."""

    def __init__(self, path: str | Path, *, tensorboard: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = _tensorboard_writer(self.path.parent / TENSORBOARD_DIR) if tensorboard else None

    def write(self, event: str, step: int | None = None, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3)}
        if step is not None:
            record["step"] = step
        record.update({k: _jsonable(v) for k, v in fields.items()})
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._tb is not None and step is not None:
            for key, value in fields.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{event}/{key}", value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (a killed writer) is skipped."""
    out = []
    path = Path(path)
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _tensorboard_writer(folder: Path) -> Any:
    try:
        # deferred: tensorboard is optional; without it the log is JSONL only
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: JSONL only
        return None
    return SummaryWriter(str(folder))
