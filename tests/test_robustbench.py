"""RobustBench entries by name: every family of its zoo imports a file saved the way
RobustBench ships it and reproduces the logits of the network RobustBench's own code builds;
a DM model goes through the pipeline; the catalog is RobustBench's; bad names are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from doublewin.models import load_model, normalize_inputs
from doublewin.models.robustbench import (
    catalog,
    entry_constructor,
    find_entry,
    model_zoo,
    state_signature,
    zoo_entry,
)
from test_bad_input import fails

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


def reference(arch: str) -> torch.nn.Module:
    """The entry's network as RobustBench's own code builds it, with seeded random weights and
    BatchNorm statistics far from their defaults (so a misplaced tensor shows in the logits)."""
    entry = find_entry(arch)
    torch.manual_seed(0)
    net = entry_constructor(entry.dataset, entry.threat, entry.name, zoo_entry(entry))()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("running_mean") or (name.endswith("bias") and tensor.dim() == 1):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
    return net.eval()


def ship(net: torch.nn.Module, path: Path, layout: str, drop: tuple[str, ...] = ()) -> None:
    """Save ``net`` as RobustBench's files hold it: DataParallel's ``module.`` under
    ``state_dict``, a plain state dict, the ``last`` of two snapshots, or (ImageNet) the
    wrapped model's own keys without the normalizer's."""
    state = {k: v for k, v in net.state_dict().items() if k not in drop}
    if layout == "module":
        obj = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 99}
    elif layout == "last":
        obj = {"last": state, "best": state}
    elif layout == "imagenet":
        obj = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    else:
        obj = state
    torch.save(obj, path)


# (family, entry, layout, normalization keys the shipped file lacks)
FAMILIES = [
    ("WideResNet with sub_block1", "cifar10/Linf/Carmon2019Unlabeled", "module", ()),
    ("WideResNet, mu/sigma inside", "cifar10/corruptions/Hendrycks2020AugMix_WRN", "plain", ("mu", "sigma")),
    ("DMWideResNet, SiLU", "cifar10/Linf/Wang2023Better_WRN-28-10", "module", ()),
    ("DMPreActResNet, Swish", "cifar10/Linf/Gowal2021Improving_R18_ddpm_100m", "plain", ()),
    ("PreActResNet, PreActBlock, no BN before fc", "cifar10/Linf/Andriushchenko2020Understanding", "last", ()),
    ("PreActResNet, PreActBlockV2, BN before fc", "cifar100/Linf/Addepalli2021Towards_PARN18", "module", ()),
    ("ResNet-18", "cifar10/Linf/Sehwag2021Proxy_R18", "plain", ()),
    ("ResNet-50, normalization inside", "cifar10/Linf/Engstrom2019Robustness", "module", ()),
    ("torchvision ResNet-18 (ImageNet)", "imagenet/Linf/Salman2020Do_R18", "imagenet", ()),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("family", "name", "layout", "drop"), FAMILIES, ids=[f[0] for f in FAMILIES]
)
def test_a_robustbench_file_imports_by_entry_name_and_reproduces_robustbench_logits(
    family, name, layout, drop, tmp_path, cli
):
    arch = f"robustbench/{name}"
    net = reference(arch)
    source = tmp_path / "entry.pt"
    ship(net, source, layout, drop)
    out = tmp_path / "w.safetensors"
    code, _, err = cli(
        "import-weights", source, "--format", "robustbench", "--arch", arch, "--out", out
    )
    assert code == 0, err
    model, meta = load_model(out)
    entry = find_entry(arch)
    assert (meta.arch, meta.dataset, meta.num_classes) == (arch, entry.dataset, entry.num_classes)
    x = torch.rand(
        2, 3, entry.input_size, entry.input_size, generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        expected = net(x)
        got = model.eval()(x)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    if entry.dataset != "imagenet":
        # RobustBench's own loader reads the same file to the same network.
        from robustbench.utils import load_model as robustbench_load

        folder = tmp_path / "zoo" / entry.dataset / entry.threat
        folder.mkdir(parents=True)
        source.rename(folder / f"{entry.name}.pt")
        theirs = robustbench_load(entry.name, tmp_path / "zoo", entry.dataset, entry.threat)
        with torch.no_grad():
            assert (theirs(x) - got).abs().max() <= 1e-4 * expected.abs().max()


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["imagenet/Linf/Debenedetti2022Light_XCiT-S12", "imagenet/Linf/Peng2023Robust"],
    ids=["timm XCiT (ImageNet)", "RaWideResNet (ImageNet)"],
)
def test_the_imagenet_timm_and_robustarch_entries_import_to_their_logits(name, tmp_path, cli):
    arch = f"robustbench/{name}"
    net = reference(arch)
    source = tmp_path / "entry.pt"
    ship(net, source, "plain")
    out = tmp_path / "w.safetensors"
    code, _, err = cli(
        "import-weights", source, "--format", "robustbench", "--arch", arch, "--out", out
    )
    assert code == 0, err
    model, _ = load_model(out)
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = net(x)
        got = model.eval()(x)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_the_catalog_is_robustbench_zoo_entry_for_entry():
    zoo = {
        (d.value, t.value, name)
        for d, threats in model_zoo().items()
        for t, entries in threats.items()
        for name in entries
    }
    assert {(e.dataset, e.threat, e.name) for e in catalog()} == zoo
    linf = {e.dataset for e in catalog() if e.threat == "Linf" and e.importable}
    assert linf == {"cifar10", "cifar100", "imagenet"}
    for name in ("cifar10/Linf/Andriushchenko2020Understanding", "cifar100/Linf/Addepalli2021Towards_PARN18"):  # fmt: skip
        entry = find_entry(f"robustbench/{name}")
        with torch.device("meta"):
            net = entry_constructor(entry.dataset, entry.threat, entry.name, zoo_entry(entry))()
        assert entry.architecture == type(net).__name__
        assert entry.parameters == sum(p.numel() for p in net.parameters())
        assert entry.signature == state_signature(net.state_dict())


def test_models_search_lists_the_entries_with_architecture_and_parameters(cli):
    code, out, _ = cli("models", "--search", "robustbench")
    assert code == 0
    assert "robustbench/cifar10/Linf/<entry>" in out and "robustbench/imagenet/Linf/<entry>" in out
    row = next(line for line in out.splitlines() if line.startswith("Wang2023Better_WRN-28-10 "))
    assert "36.5M" in row and "DMWideResNet" in row
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith("RobustBench"))
    code, out, _ = cli("models", "--search", "DMPreAct", "--json")
    assert code == 0
    rows = json.loads(out)["robustbench"]
    assert rows and all(r["architecture"] == "DMPreActResNet" for r in rows)
    assert {"arch", "dataset", "parameters"} <= set(rows[0])


def test_an_unknown_entry_is_one_line_naming_the_closest(tmp_path, capsys):
    torch.save({}, tmp_path / "x.pt")
    message = fails(
        ["import-weights", tmp_path / "x.pt", "--format", "robustbench",
         "--arch", "robustbench/cifar10/Linf/Andrushenko2020Understanding", "--out", tmp_path / "w.safetensors"],
        capsys, watch=tmp_path,
    )  # fmt: skip
    assert "no such entry" in message
    assert "robustbench/cifar10/Linf/Andriushchenko2020Understanding" in message
    message = fails(
        ["import-weights", tmp_path / "x.pt", "--format", "robustbench",
         "--arch", "robustbench/cifar10/Andriushchenko2020Understanding", "--out", tmp_path / "w.safetensors"],
        capsys, watch=tmp_path,
    )  # fmt: skip
    assert "robustbench/<dataset>/<threat>/<Entry>" in message


def test_a_file_of_another_variant_names_the_variant_and_the_arch_that_reads_it(tmp_path, capsys):
    """The file RobustBench distributes for its PreAct ResNet-18 (no BatchNorm before the
    head) given to doublewin's preact_resnet18 (BatchNorm before the head)."""
    arch = "robustbench/cifar10/Linf/Andriushchenko2020Understanding"
    source = tmp_path / "preact.pt"
    ship(reference(arch), source, "module")
    message = fails(
        ["import-weights", source, "--format", "robustbench", "--arch", "preact_resnet18",
         "--out", tmp_path / "w.safetensors"],
        capsys, watch=tmp_path,
    )  # fmt: skip
    assert "missing 5 keys" in message and "bn.weight" in message
    assert "PreActResNet" in message and f"--arch {arch}" in message


def test_an_ensemble_entry_is_refused_in_one_line(tmp_path, capsys):
    torch.save({}, tmp_path / "x.pt")
    message = fails(
        ["import-weights", tmp_path / "x.pt", "--format", "robustbench",
         "--arch", "robustbench/cifar10/Linf/Chen2020Adversarial", "--out", tmp_path / "w.safetensors"],
        capsys, watch=tmp_path,
    )  # fmt: skip
    assert "ensemble of 3 networks" in message


def test_transfer_maps_downstream_images_onto_the_statistics_an_entry_normalizes_with():
    """A DM model standardizes with its CIFAR-10 constants inside; after the downstream switch
    it computes what it would with the downstream mean and std in their place."""
    from doublewin.models import build_model

    arch = "robustbench/cifar10/Linf/Gowal2021Improving_R18_ddpm_100m"
    model = build_model(arch, 10).eval()
    mean, std = (0.2, 0.3, 0.4), (0.1, 0.2, 0.3)
    normalize_inputs(model, mean, std)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = model(x)
        # The entry's own forward with the downstream statistics in its own buffers.
        model.input_mean.zero_()
        model.input_std.fill_(1.0)
        model.mean.copy_(torch.tensor(mean).view(3, 1, 1))
        model.std.copy_(torch.tensor(std).view(3, 1, 1))
        expected = model(x)
    # The entry's own constants (CIFAR10_STD 0.2471) and the official ones (0.2470) differ in
    # the fourth digit: a relative tolerance of 1e-3 covers it.
    assert (got - expected).abs().max() <= 1e-3 * expected.abs().max()


@pytest.mark.slow
def test_an_imported_dm_model_goes_through_tickets_transfer_evaluate_and_export(tmp_path, cli):
    """DeepMind's PreAct ResNet-18 (Swish, its own CIFAR-10 normalization inside): OMP at 50%
    over its convolutions, standard transfer to a slice of strokes with a new head, evaluate,
    export; each step reads the previous step's file."""
    arch = "robustbench/cifar10/Linf/Gowal2021Improving_R18_ddpm_100m"
    source = tmp_path / "entry.pt"
    ship(reference(arch), source, "module")
    theta = tmp_path / "theta.safetensors"

    def ok(*args):
        code, out, err = cli(*args)
        assert code == 0, err
        return out

    ok("import-weights", source, "--format", "robustbench", "--arch", arch, "--out", theta)
    ok("find-tickets", "--weights", theta, "--method", "omp", "--sparsities", "0.5", "--out", tmp_path / "t")  # fmt: skip
    ticket = tmp_path / "t" / "ticket-0.500000.safetensors"
    masks = load_ticket_masks(ticket)
    model, _ = load_model(theta)
    convs = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert set(masks) == convs  # the conv scope: every convolution, no head, no BatchNorm
    kept = sum(int(m.sum()) for m in masks.values())
    assert kept / sum(m.numel() for m in masks.values()) == pytest.approx(0.5, abs=1e-4)
    ok(
        "transfer", "--weights", theta, "--ticket", ticket, "--data", "strokes", "--regime", "st",
        "--epochs", "1", "--fraction", "0.02", "--seed", "0", "--resolution", "32", "--out", tmp_path / "x",
        "--set", "data.test_limit=32", "--set", "eval_attack.steps=2", "--set", "data.augment=none",
        "--set", "train.batch_size=30", "--set", "data.val_size=30",
    )  # fmt: skip
    metrics = json.loads((tmp_path / "x" / "metrics.json").read_text())
    assert metrics["test_images"] == 32 and metrics["sparsity"] == pytest.approx(0.5, abs=1e-4)
    fine_tuned = tmp_path / "x" / "best_sa.safetensors"
    tuned, meta = load_model(fine_tuned)
    assert meta.num_classes == 10 and meta.dataset == "strokes"
    for name, mask in masks.items():  # pruned weights stayed exactly zero through training
        assert not tuned.get_parameter(name)[~mask.bool()].any()
    out = ok(
        "evaluate", "--weights", fine_tuned, "--data", "strokes", "--resolution", "32", "--steps", "2",
        "--eps", "8/255", "--step", "4/255", "--check-points", "32", "--limit", "32", "--json",
    )  # fmt: skip
    evaluated = json.loads(out)
    # The same weights on the same 32 points: the transfer's own test SA.
    assert evaluated["sa"] == pytest.approx(metrics["sa_best_sa"], abs=0.01)  # 2 decimals
    ok("export", "--weights", theta, "--ticket", ticket, "--out", tmp_path / "e")
    exported, _ = load_model(tmp_path / "e" / "weights.safetensors")
    masked, _ = load_model(theta)
    with torch.no_grad():
        for name, mask in masks.items():
            masked.get_parameter(name).mul_(mask.to(masked.get_parameter(name).dtype))
        x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
        expected = masked.eval()(x)
        assert (exported.eval()(x) - expected).abs().max() <= 1e-4 * expected.abs().max()


def load_ticket_masks(path: Path) -> dict[str, torch.Tensor]:
    from doublewin.tickets import load_ticket

    return {k: v.to(torch.float32) for k, v in load_ticket(path).mask.items()}
