"""RobustBench's model zoo by entry name: ``robustbench/<dataset>/<threat>/<Entry>``.

The architecture of every entry is built by RobustBench's own code (the ``robustbench`` package,
``pip install 'doublewin[robustbench]'``), so it is exactly the network its checkpoint was saved
from; doublewin never downloads anything, and reads the checkpoint file the user has.
``robustbench_entries.json`` (written by ``tools/robustbench_catalog.py`` from that package) lists
every entry with its architecture, parameters and key signature, so ``doublewin models`` and the
importer's messages work without the package.

The model keeps its own code and input processing (several entries normalize inside: DM's
``mean``/``std``, ``mu``/``sigma`` buffers, ``2x - 1``). Its class is swapped for a subclass that
applies doublewin's per-channel map to the [0, 1] input first (identity for the entry as
published), and the model records the statistics of the images it was trained on
(``source_statistics``). Transfer then maps downstream images onto those statistics (see
``architectures.normalize_inputs``), the counterpart of the official recipe's switch to the
downstream mean and std, without touching the entry's own normalization.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import importlib
import importlib.util
import json
import socket
import sys
import types
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.models.heads import head_module, replace_head
from doublewin.models.zoo import normalized

PREFIX = "robustbench/"
CATALOG_FILE = Path(__file__).with_name(paths.ROBUSTBENCH_CATALOG)
INSTALL = "pip install 'doublewin[robustbench]'"
DATASETS = ("cifar10", "cifar100", "imagenet")
THREATS = ("Linf", "L2", "corruptions")
# The statistics of each benchmark's training images (the official constants, docs/paper.md):
# what an entry's first layer saw, whatever it does with them inside.
SOURCE_STATISTICS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
# Keys left out of a key signature: input-normalization constants (RobustBench loads files
# without them) and BatchNorm's step counter (absent from old checkpoints).
_UNSIGNED = ("mu", "sigma", "mean", "std", "normalize.mean", "normalize.std")


@dataclass(frozen=True)
class Entry:
    """One entry of RobustBench's zoo. ``architecture``: the class RobustBench builds;
    ``parameters``: with the entry's own head; ``checkpoints``: files its model reads (more than
    one for an ensemble); ``builds``: False where RobustBench's constructor downloads weights
    (``note`` says which); ``signature``: a hash of the state dict's keys and shapes."""

    dataset: str
    threat: str
    name: str
    architecture: str
    parameters: int
    num_classes: int
    input_size: int
    checkpoints: int
    builds: bool
    signature: str
    note: str = ""

    @property
    def arch(self) -> str:
        return f"{PREFIX}{self.dataset}/{self.threat}/{self.name}"

    @property
    def importable(self) -> bool:
        return self.builds and self.checkpoints == 1


def is_robustbench_name(name: str) -> bool:
    return name.startswith(PREFIX)


@functools.cache
def catalog() -> tuple[Entry, ...]:
    """Every entry of the RobustBench version the catalog was written from."""
    data = json.loads(CATALOG_FILE.read_text())
    return tuple(Entry(**row) for row in data["entries"])


def catalog_version() -> str:
    return str(json.loads(CATALOG_FILE.read_text())["robustbench"])


def find_entry(name: str) -> Entry:
    """The entry ``robustbench/<dataset>/<threat>/<Entry>`` names (dataset and threat in any
    case); an unknown one is one line naming the closest entries."""
    parts = name[len(PREFIX) :].split("/") if is_robustbench_name(name) else []
    if len(parts) != 3 or not all(parts):
        raise UserError(
            f"--arch {name}: write robustbench/<dataset>/<threat>/<Entry>, e.g. "
            "robustbench/cifar10/Linf/Wang2023Better_WRN-28-10 (doublewin models --search "
            "robustbench lists them)"
        )
    dataset, threat, entry = parts[0].lower(), parts[1].lower(), parts[2]
    for row in catalog():
        if (row.dataset, row.threat.lower(), row.name) == (dataset, threat, entry):
            return row
    names = [row.arch for row in catalog()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5) or difflib.get_close_matches(
        entry, [row.name for row in catalog()], n=3, cutoff=0.5
    )
    hint = f"closest: {', '.join(close)}" if close else "doublewin models --search robustbench"
    raise UserError(f"--arch {name}: RobustBench {catalog_version()} has no such entry; {hint}")


def model_zoo() -> Mapping[Any, Any]:
    """RobustBench's ``model_dicts`` (dataset → threat model → entry → {model, gdrive_id, …})."""
    return _model_zoo()


@functools.cache
def _model_zoo() -> Mapping[Any, Any]:
    spec = importlib.util.find_spec("robustbench")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"robustbench/ architectures need the robustbench package; {INSTALL}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            zoo = importlib.import_module("robustbench.model_zoo")
        except ImportError:
            # The PyPI wheel's package __init__ imports its data loaders and evaluation, which
            # need pkg_resources and an `autoattack` module that PyPI's pyautoattack does not
            # provide; the model zoo needs neither, so it is loaded under a bare parent package.
            for key in [
                k for k in sys.modules if k == "robustbench" or k.startswith("robustbench.")
            ]:
                del sys.modules[key]
            package = types.ModuleType("robustbench")
            package.__path__ = list(spec.submodule_search_locations)
            package.__spec__ = spec
            sys.modules["robustbench"] = package
            try:
                zoo = importlib.import_module("robustbench.model_zoo")
            except ImportError as exc:
                raise UserError(
                    f"robustbench's model zoo does not import ({exc}); {INSTALL} installs "
                    "what it needs"
                ) from None
    return zoo.model_dicts


def zoo_entry(entry: Entry) -> Mapping[str, Any]:
    """RobustBench's own record of ``entry`` (its ``model`` constructor, ``gdrive_id``, …)."""
    for dataset, threats in model_zoo().items():
        if dataset.value != entry.dataset:
            continue
        for threat, entries in threats.items():
            if threat.value == entry.threat and entry.name in entries:
                return entries[entry.name]
    raise UserError(
        f"--arch {entry.arch}: the installed robustbench has no such entry (doublewin's catalog "
        f"is of robustbench {catalog_version()}); {INSTALL}"
    )


class _Download(Exception):
    """A constructor reached for the network."""


@contextlib.contextmanager
def no_downloads() -> Iterator[None]:
    """Refuse every network connection and published-weights download while a constructor
    runs: a RobustBench entry's weights come from the user's file, never from the internet."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _Download

    patches: list[tuple[Any, str]] = [
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (socket, "create_connection"),
        (torch.hub, "load_state_dict_from_url"),
        (torch.hub, "download_url_to_file"),
    ]
    for module_name, owner, attr in (
        ("timm.models._builder", None, "load_pretrained"),
        ("torchvision.models._api", "WeightsEnum", "get_state_dict"),
    ):
        module = sys.modules.get(module_name)
        if module is not None:
            patches.append((getattr(module, owner) if owner else module, attr))
    saved = [
        (obj, attr, obj.__dict__[attr] if attr in vars(obj) else getattr(obj, attr))
        for obj, attr in patches
    ]
    for obj, attr, _ in saved:
        setattr(obj, attr, refuse)
    try:
        yield
    finally:
        for obj, attr, original in saved:
            setattr(obj, attr, original)


def build_entry(entry: Entry) -> nn.Module:
    """The entry's network as RobustBench builds it, randomly initialized (eval mode)."""
    if entry.checkpoints > 1:
        raise UserError(
            f"--arch {entry.arch}: an ensemble of {entry.checkpoints} networks, each with its "
            "own checkpoint; doublewin imports single-network entries"
        )
    constructor = entry_constructor(entry.dataset, entry.threat, entry.name, zoo_entry(entry))
    try:
        with warnings.catch_warnings(), no_downloads():
            warnings.simplefilter("ignore")
            net = constructor()
    except _Download:
        raise UserError(
            f"--arch {entry.arch}: RobustBench builds this entry by downloading published "
            "weights, and doublewin never downloads; import the file you have with an "
            "architecture that builds without them (doublewin models --search robustbench)"
        ) from None
    if not isinstance(net, nn.Module):
        raise UserError(f"--arch {entry.arch}: RobustBench's constructor gave no network")
    return net


def entry_constructor(dataset: str, threat: str, name: str, record: Mapping[str, Any]) -> Any:
    """How RobustBench's ``load_model`` builds an entry: a timm model registered under
    ``<entry>_<dataset>_<threat>`` (lower case, ``-`` as ``_``) when there is one, built here
    without its published weights; else the zoo's own ``model`` constructor."""
    timm_name = f"{name.lower().replace('-', '_')}_{dataset}_{threat.lower()}"
    timm = sys.modules.get("timm")
    if timm is not None and timm.is_model(timm_name):
        classes = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}[dataset]
        return functools.partial(
            timm.create_model, timm_name, num_classes=classes, pretrained=False
        )
    return record["model"]


def state_signature(state: Mapping[str, torch.Tensor]) -> str:
    """A hash of a state dict's keys and shapes (normalization constants and BatchNorm's step
    counter left out), to recognise which architecture a checkpoint holds."""
    lines = sorted(
        f"{key}:{tuple(value.shape)}"
        for key, value in state.items()
        if key not in _UNSIGNED and not key.endswith("num_batches_tracked")
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def entries_with_signature(signature: str) -> list[Entry]:
    return [e for e in catalog() if e.signature == signature and e.importable]


def build_robustbench_model(
    name: str,
    num_classes: int,
    *,
    mean: tuple[float, ...] = (0.0, 0.0, 0.0),
    std: tuple[float, ...] = (1.0, 1.0, 1.0),
) -> nn.Module:
    """The entry ``name`` as RobustBench builds it, with ``num_classes`` outputs (a fresh head
    when they differ from the entry's), taking [0, 1] pixels through doublewin's per-channel
    map ``(x - mean) / std`` (identity: the entry as published) and recording the statistics
    of the images it was trained on."""
    entry = find_entry(name)
    net = build_entry(entry)
    if head_module(net).out_features != num_classes:
        replace_head(net, num_classes)
    # DeepMind's WideResNets keep their own constants in buffers called mean and std.
    net = normalized(net, mean, std, names=("input_mean", "input_std"))
    net.source_statistics = SOURCE_STATISTICS[entry.dataset]  # type: ignore[assignment]
    return net


def entry_row(entry: Entry) -> dict[str, Any]:
    return {**asdict(entry), "arch": entry.arch}


def entry_state(
    obj: Any, entry: Entry, expected: Mapping[str, torch.Tensor], path: Path
) -> dict[str, torch.Tensor]:
    """The state dict of a RobustBench checkpoint for ``entry``, keyed as ``expected`` (the
    built model's state dict), read as RobustBench's ``load_model`` reads its files: the
    ``last`` snapshot where its files keep two, the dict under ``state_dict`` (else the file
    itself), DataParallel's ``module.`` and a wrapper's ``model.`` prefixes removed, and
    ``model.`` added back where the built network wraps the model (its ImageNet entries).
    Input-normalization constants and BatchNorm step counters the file lacks keep the built
    model's values (RobustBench loads those files the same way); anything else must match."""
    if isinstance(obj, Mapping) and isinstance(obj.get("last"), Mapping):
        obj = obj["last"]
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: no state dict found; not a RobustBench checkpoint")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in ("module.", "model."):
        state = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
    # A network that wraps the model (RobustBench's ImageNet normalizer) names it `model.`.
    state = {
        f"model.{k}" if k not in expected and f"model.{k}" in expected else k: v
        for k, v in state.items()
    }
    for key, value in expected.items():
        if key not in state and (key in _UNSIGNED or key.endswith("num_batches_tracked")):
            state[key] = value
    return state
