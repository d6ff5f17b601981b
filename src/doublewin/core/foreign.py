"""One reader of foreign files: whatever is wrong with a file a user names, one line.

Every reader of a file from outside (weights, tickets, checkpoints to import, results tables,
YAML configs) opens it through `reading`: a missing path, a folder where a file was expected,
an empty file, and any failure of the parser underneath (safetensors, torch.load, YAML, CSV,
JSON, a text decoder) become one `UserError` that names the file, what it was expected to be
and the fix. The readers' own checks (a ticket given as weights, a wrong architecture) raise
their own `UserError` inside, which passes through unchanged.
"""

from __future__ import annotations

import csv
import json
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from safetensors import SafetensorError

from doublewin.core.errors import UserError

# What a parser raises on bytes it cannot read (torch.load raises RuntimeError on a broken
# zip, safetensors its own error, the text decoder UnicodeDecodeError, a short read EOFError).
MALFORMED = (
    SafetensorError,
    pickle.UnpicklingError,
    EOFError,
    UnicodeDecodeError,
    ValueError,
    RuntimeError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    struct.error,
    zipfile.BadZipFile,
    tarfile.TarError,
    yaml.YAMLError,
    json.JSONDecodeError,
    csv.Error,
    OverflowError,
    zlib.error,
    MemoryError,
)


# (what a reader expects, what to pass instead) of the files every command reads.
WEIGHTS_FILE = (
    "a doublewin weights file (safetensors)",
    "pass a file from doublewin pretrain, or import a foreign checkpoint with doublewin "
    "import-weights",
)
TICKET_FILE = (
    "a ticket file (doublewin safetensors or an official mask state dict)",
    "pass a ticket from doublewin find-tickets or an official *_mask file",
)
RESULTS_TABLE = (
    "a results table (CSV text)",
    "pass a results.csv of `doublewin run` / `doublewin report` (docs/report.md)",
)


def present(path: str | Path, expected: str, fix: str) -> Path:
    """``path`` if it is a non-empty file, else one UserError: what a command checks before
    loading anything, so a missing input fails at once."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found; {fix}")
    if path.is_dir():
        raise UserError(f"{path}: a folder, not {expected}; {fix}")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: an empty file, not {expected}; {fix}")
    return path


@contextmanager
def reading(path: str | Path, expected: str, fix: str) -> Iterator[Path]:
    """Open ``path`` as ``expected`` (e.g. "a doublewin ticket file"); ``fix`` says what to
    pass instead. Yields the path; any parser failure inside becomes one UserError."""
    path = present(path, expected, fix)
    try:
        yield path
    except UserError:
        raise
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc}); {fix}") from None
    except MALFORMED as exc:
        raise UserError(f"{path}: not {expected} ({_first_line(exc)}); {fix}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 120 else first[:117] + "..."
