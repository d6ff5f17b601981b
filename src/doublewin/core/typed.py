"""Typed dataclasses from plain dicts (YAML), with errors that name the offending key.

A spec field may declare its allowed values through ``Literal`` types or through
``checked(...)`` metadata (a range). Floats accept fractions written as strings (``"8/255"``).
Dotted overrides (``transfer.train.epochs=5``) are applied to the plain dict before typing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol, TypeVar, Union, get_args, get_origin

import yaml

from doublewin.core.errors import UserError
from doublewin.core.foreign import checked_yaml
from doublewin.core.numbers import EPS_HINT, Range, read_number

T = TypeVar("T")


class Named(Protocol):
    name: str


N = TypeVar("N", bound=Named)


def checked(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    range: Range | None = None,
    doc: str = "",
    repeats: bool = False,
) -> Any:  # noqa: A002
    """A dataclass field with a range check (applied to scalars and to each item of a tuple);
    a tuple's items are distinct unless ``repeats`` (a list with a value twice is refused)."""
    metadata = {"range": range, "doc": doc, "repeats": repeats}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def from_dict(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys, wrong types and values out of range
    raise UserError naming the dotted key."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise UserError(f"{path or 'spec'}: expected a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)  # keys of a Python mapping may mix types
    if unknown:
        where = _join(path, str(unknown[0]))
        raise UserError(f"{where}: unknown key; known keys here: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        key = _join(path, name)
        f = fields[name]
        # A partial mapping for a nested spec fills in over the field's own default (e.g.
        # PretrainSpec.data defaults to shapes), not over the nested class's defaults.
        if (
            isinstance(value, Mapping)
            and f.default_factory is not dataclasses.MISSING
            and dataclasses.is_dataclass(hints[name])
        ):
            value = _merged(to_dict(f.default_factory()), value)
        kwargs[name] = _coerce(hints[name], value, key, f.metadata.get("range"))
        if isinstance(kwargs[name], (tuple, list)) and not f.metadata.get("repeats"):
            distinct(kwargs[name], key)
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UserError(f"{_join(path, missing[0])}: required key is missing")
    try:
        return cls(**kwargs)
    except UserError:
        raise
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path or cls.__name__}: {exc}") from None


def distinct(values: Any, key: str) -> Any:
    """``values`` unchanged, or one UserError naming the first value listed twice: it would
    count once, and silently the run would be smaller than the file says."""
    first: dict[Any, int] = {}
    for i, value in enumerate(values):
        if value in first:
            raise UserError(
                f"{key}[{i}]: {value!r} is listed twice (also {key}[{first[value]}]) and would "
                "count once; list each once"
            )
        first[value] = i
    return values


def _merged(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def to_dict(spec: Any) -> dict[str, Any]:
    """Every field, nested dataclasses as dicts, tuples as lists (YAML/JSON friendly)."""
    return plain(spec)


def replace_path(spec: T, dotted: str, value: Any) -> T:
    """A copy of ``spec`` with one dotted field replaced, typed and checked like YAML input."""
    data = to_dict(spec)
    apply_override(data, dotted, value)
    return from_dict(type(spec), data)


def apply_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = "a.b.c"``, creating mappings on the way."""
    parts = dotted.split(".")
    if not all(parts):
        raise UserError(f"--set {dotted}: empty key segment; write e.g. train.epochs=5")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise UserError(f"--set {dotted}: {where} is a value, not a section")
        node = child
    node[parts[-1]] = value


def lookup(data: Mapping[str, Any], dotted: str) -> Any:
    """``data[a][b][c]`` for ``dotted = "a.b.c"``; None where a segment is missing."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def parse_overrides(items: Iterable[str]) -> list[tuple[str, Any]]:
    """``["a.b=5", "c=8/255"]`` → ``[("a.b", 5), ("c", "8/255")]``; values parsed as YAML."""
    out = []
    given: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected key=value, e.g. train.epochs=5")
        try:
            value = checked_yaml(raw, f"--set {item}") if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        key = key.strip()
        if key in given:
            # Merged, and said: a later --set overrides an earlier one (a script's defaults
            # first, then the run's own), and the earlier value is never read.
            warnings.warn(
                f"--set {key} is given twice ({given[key]!r}, then {item!r}); the last one is used",
                stacklevel=2,
            )
        given[key] = item
        out.append((key, value))
    return out


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _coerce(tp: Any, value: Any, key: str, rng: Range | None) -> Any:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key, rng)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise UserError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (tuple, list):
        args = get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single value where a list is expected
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{key}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        items = [_coerce(item_type, v, f"{key}[{i}]", rng) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise UserError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int or tp is float:
        return read_number(value, name=key, range=rng, whole=tp is int, hint=_hint(key))
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"{key}: expected text, got {value!r}")
        return value
    if tp is Any:
        return value
    raise UserError(f"{key}: unsupported field type {tp!r}")


def _hint(key: str) -> str:
    return EPS_HINT if key.endswith((".eps", ".step")) else ""


def plain(value: Any) -> Any:
    """``value`` with dataclasses as dicts and tuples as lists, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def by_name(*records: N) -> dict[str, N]:
    """A table of records (datasets, architectures) keyed by their ``name``, in the order given."""
    return {record.name: record for record in records}
