"""Importing torchvision, robustness and fast_adversarial checkpoints; unsafe pickles refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torchvision

from doublewin.cli import main
from doublewin.core.errors import UserError
from doublewin.models import IMAGENET_MEAN, IMAGENET_STD, load_model
from doublewin.models.importers import import_checkpoint


@pytest.fixture(scope="module")
def original() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).state_dict()


def _robustness(state: dict[str, torch.Tensor]) -> dict:
    """The MadryLab layout: model + attacker copies, normalizer buffers, training state."""
    model = {
        "module.normalizer.new_mean": torch.tensor(IMAGENET_MEAN).view(3, 1, 1),
        "module.normalizer.new_std": torch.tensor(IMAGENET_STD).view(3, 1, 1),
        "module.attacker.normalize.new_mean": torch.tensor(IMAGENET_MEAN).view(3, 1, 1),
        "module.attacker.normalize.new_std": torch.tensor(IMAGENET_STD).view(3, 1, 1),
    }
    for k, v in state.items():
        model[f"module.model.{k}"] = v
        model[f"module.attacker.model.{k}"] = v + 1  # a different copy that must be dropped
    return {
        "model": model,
        "optimizer": {"state": {}, "param_groups": []},
        "schedule": None,
        "epoch": 90,
    }


@pytest.mark.parametrize("fmt", ["torchvision", "robustness", "fast-adversarial"])
def test_each_format_imports_to_identical_weights(fmt: str, original, tmp_path: Path) -> None:
    payload = {
        "torchvision": original,
        "robustness": _robustness(original),
        "fast-adversarial": {
            "epoch": 15,
            "arch": "resnet18",
            "best_prec1": 43.0,
            "state_dict": {f"module.{k}": v for k, v in original.items()},
            "optimizer": {"state": {}, "param_groups": []},
        },
    }[fmt]
    path = tmp_path / "ckpt.pth"
    torch.save(payload, path)
    state, meta = import_checkpoint(path, format=fmt, arch="resnet18", eps=4 / 255)
    assert set(state) == set(original)
    for k, v in original.items():
        assert torch.equal(state[k], v), k
    assert meta.num_classes == 10 and meta.mean == IMAGENET_MEAN
    assert meta.regime == {"torchvision": "std", "robustness": "at", "fast-adversarial": "fat"}[fmt]


class _RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_a_command_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _RunsACommand(marker)}, path)
    with pytest.raises(UserError, match="--trust-pickle"):
        import_checkpoint(path, format="torchvision", arch="resnet18")
    assert not marker.exists()


def test_wrong_arch_or_format_is_one_clear_error_through_the_cli(
    original, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "tv.pth"
    torch.save(original, path)
    for args, words in (
        (["--arch", "resnet50", "--format", "torchvision"], "wrong --arch"),
        (["--arch", "resnet18", "--format", "robustness"], "wrong --format"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["import-weights", str(path), *args, "--out", str(tmp_path / "o.safetensors")])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) <= 2
    assert not (tmp_path / "o.safetensors").exists()


def test_the_cli_writes_a_weights_file_that_loads_with_imagenet_normalization(
    original, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "tv.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in original.items()}}, path)
    out = tmp_path / "fat.safetensors"
    main(
        [
            "import-weights",
            str(path),
            "--format",
            "fast-adversarial",
            "--arch",
            "resnet18",
            "--eps",
            "4/255",
            "--out",
            str(out),
            "--json",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    model, meta = load_model(out)
    assert summary["content_hash"] == meta.content_hash and meta.eps == pytest.approx(4 / 255)
    reference = torchvision.models.resnet18(num_classes=10)
    reference.load_state_dict(original)
    x = torch.rand(2, 3, 64, 64)
    mean, std = (
        torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
    )
    model.eval()
    reference.eval()
    expected = reference((x - mean) / std)
    assert (model(x) - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_a_robustness_normalizer_that_is_not_imagenets_is_refused(original, tmp_path: Path) -> None:
    payload = _robustness(original)
    payload["model"]["module.normalizer.new_mean"] = torch.tensor([0.4914, 0.4822, 0.4465]).view(
        3, 1, 1
    )
    path = tmp_path / "cifar_normalizer.pt"
    torch.save(payload, path)
    with pytest.raises(UserError, match="not ImageNet's"):
        import_checkpoint(path, format="robustness", arch="resnet18")


def test_the_robustness_normalizer_is_recorded_in_the_metadata(original, tmp_path: Path) -> None:
    path = tmp_path / "robust.pt"
    torch.save(_robustness(original), path)
    _, meta = import_checkpoint(path, format="robustness", arch="resnet18")
    assert meta.extra["normalizer_new_mean"] == tuple(round(v, 4) for v in IMAGENET_MEAN)
    assert meta.extra["normalizer_new_std"] == tuple(round(v, 4) for v in IMAGENET_STD)


def test_an_older_robustness_resnet50_under_state_dict_keeps_torchvision_names(
    tmp_path: Path,
) -> None:
    # Shapes from the meta device (no init cost); values are just distinct per tensor.
    with torch.device("meta"):
        layout = torchvision.models.resnet50().state_dict()
    state = {
        k: torch.full(v.shape, float(i), dtype=v.dtype) for i, (k, v) in enumerate(layout.items())
    }
    payload = _robustness(state)
    path = tmp_path / "old_robust50.pt"
    torch.save({"state_dict": payload["model"], "epoch": 90}, path)
    imported, meta = import_checkpoint(path, format="robustness", arch="resnet50")
    assert list(imported) == list(layout) and meta.num_classes == 1000
    assert all(torch.equal(imported[k], v) for k, v in state.items())


class _Harmless:
    """A custom class, as in a dill-pickled robustness checkpoint: needs full unpickling."""

    def __init__(self, value: int):
        self.value = value


def test_trust_pickle_alone_allows_a_custom_class(original, tmp_path: Path) -> None:
    path = tmp_path / "custom.pt"
    torch.save({"state_dict": original, "args": _Harmless(3)}, path)
    with pytest.raises(UserError, match="arbitrary code"):
        import_checkpoint(path, format="torchvision", arch="resnet18")
    state, _ = import_checkpoint(path, format="torchvision", arch="resnet18", trust_pickle=True)
    assert all(torch.equal(state[k], v) for k, v in original.items())


def test_a_safetensors_checkpoint_imports_without_unpickling(original, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "tv.safetensors"
    save_file({k: v.contiguous() for k, v in original.items()}, str(path))
    state, meta = import_checkpoint(path, format="torchvision", arch="resnet18")
    assert all(torch.equal(state[k], v) for k, v in original.items())
    assert meta.regime == "std" and meta.source == "torchvision"


def test_a_file_that_is_not_a_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(b"hello, not a checkpoint")
    with pytest.raises(UserError, match="not a torch checkpoint"):
        import_checkpoint(path, format="torchvision", arch="resnet18")
