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
from typing import Any

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


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (which YAML would let the
    later silently replace: a pre-training named twice would vanish) and a key that is not
    text (``1:`` or ``on:``, which YAML reads as a number or true). Merge keys (``<<: *common``)
    are standard YAML and merge as YAML says: the mapping's own keys win."""


MERGE_TAG = "tag:yaml.org,2002:merge"


def _unique_mapping(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise KeyNotText(key, getattr(key_node, "value", key), line)
        if key in seen:
            raise DuplicateKey(key, line)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int):
        super().__init__(f"key {key!r} given twice (line {line})")
        self.key, self.line = key, line


class KeyNotText(yaml.YAMLError):
    def __init__(self, key: Any, written: Any, line: int):
        super().__init__(f"key {written!r} is not text (line {line})")
        self.key, self.written, self.line = key, written, line


def checked_yaml(text: str, where: str) -> Any:
    """The data of a YAML text; ``where`` (a file, ``--set ITEM``) names it in the errors a
    key given twice or a key that is not text raise. Other YAML errors pass through."""
    try:
        return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKey as exc:
        raise UserError(
            f"{where} line {exc.line}: {exc.key!r} is given twice in one mapping, and YAML "
            "would keep only the last; give each key once"
        ) from None
    except KeyNotText as exc:
        kind = "true/false" if isinstance(exc.key, bool) else type(exc.key).__name__
        raise UserError(
            f"{where} line {exc.line}: the key {exc.written} is read by YAML as {kind} "
            f"{exc.key!r}, not a name; keys are names: quote it ('{exc.written}')"
        ) from None


def yaml_data(text: str, path: Path) -> Any:
    """The data of a YAML text (of the file ``path``); a key given twice in one mapping or a
    key that is not text is an error naming it and its line, any other YAML error names the
    line."""
    try:
        return checked_yaml(text, str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(f"{path}: not valid YAML{where}; fix the syntax") from None


def load_yaml(path: str | Path, what: str = "an experiment YAML") -> dict[str, Any]:
    """Read a YAML mapping; a missing or malformed file is a UserError naming the path."""
    with reading(path, what, f"pass the path of {what}") as path:
        data = yaml_data(path.read_text(), path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(
            f"{path}: expected a mapping of keys at the top level (a YAML file of {what}), "
            f"got {type(data).__name__}"
        )
    return data
