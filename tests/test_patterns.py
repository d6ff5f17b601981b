"""Sparsity patterns: N:M masks keep exactly N of every M, IMP's N:M ladder ends at 1 − N/M,
channel masks prune whole coupled channels, exports match the masked model, the channel
export is physically smaller and loads without doublewin, and unstructured tickets are what
they were."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from doublewin.cli import main
from doublewin.core.build import load_spec
from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope, TicketSpec
from doublewin.models import WeightsMeta, build_model, load_model, save_weights
from doublewin.tickets import Mask, find_tickets, load_ticket
from doublewin.tickets.channels import (
    channel_groups,
    channel_sparsity,
    check_channels,
    prunable_groups,
)
from doublewin.tickets.export import TOLERANCE, export_ticket
from doublewin.tickets.ladder import ticket_ladder
from doublewin.tickets.nm import check_pattern, nm_ladder, nm_mask
from doublewin.tickets.patterned import Pattern, check_plan
from test_bad_input import fails


@pytest.fixture(scope="module")
def theta(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("resnet8", 10)
    # BatchNorm statistics that are not the identity, so a wrong channel cut would show.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    path = tmp_path_factory.mktemp("theta") / "theta.safetensors"
    save_weights(
        path, model, WeightsMeta(arch="resnet8", num_classes=10, input_size=8, dataset="digits")
    )
    return path


@pytest.mark.parametrize(("n", "m"), [(1, 4), (2, 4), (3, 4), (2, 8), (4, 8)])
def test_nm_masks_keep_exactly_n_of_every_m_in_every_layer(n, m):
    torch.manual_seed(n * 10 + m)
    model = build_model("resnet20", 10)
    mask = Mask.dense(model, MaskScope(include_linear=False, exclude=("conv1",)))
    scores = {name: torch.randn(t.shape) for name, t in mask.items()}
    kept = nm_mask(scores, mask, n, m)
    assert check_pattern(kept, n, m) == []
    assert kept.sparsity == pytest.approx(1 - n / m)
    for name, t in kept.items():  # the highest scores of each group are the kept ones
        s = scores[name].movedim(1, -1).reshape(-1, m)
        k = t.movedim(1, -1).reshape(-1, m)
        assert torch.equal(k, torch.zeros_like(k).scatter_(1, s.topk(n, 1).indices, True))


def test_imps_nm_ladder_ends_exactly_at_one_minus_n_over_m(theta):
    assert nm_ladder(2, 4) == (0.25, 0.5) and nm_ladder(1, 8)[-1] == 0.875
    spec = load_spec(
        "tickets",
        {"weights": str(theta), "method": "imp", "pattern": "nm", "nm": [2, 4],
         "scope": {"exclude": ["conv1"]}, "train": {"epochs": 1, "batch_size": 64},
         "data": {"name": "digits", "fraction": 0.2, "augment": "none", "val_size": 50}},
    )  # fmt: skip
    assert ticket_ladder(spec) == (0.25, 0.5)
    files = find_tickets(spec, theta, workdir=theta.parent / "imp-nm")
    last = load_ticket(files[-1])
    assert last.mask.sparsity == 0.5 and check_pattern(last.mask, 2, 4) == []
    assert check_pattern(load_ticket(files[0]).mask, 3, 4) == []  # 3:4 on the way
    assert dict(last.info.extra)["nm"] == [2, 4]


@pytest.mark.parametrize("ratio", ["global", "layer"])
@pytest.mark.parametrize("method", ["omp", "random", "imp"])
def test_channel_tickets_prune_whole_coupled_channels(theta, ratio, method):
    spec = load_spec(
        "tickets",
        {"weights": str(theta), "method": method, "pattern": "channel", "channel_ratio": ratio,
         "prune_rate": 0.5, "rounds": 2, "train": {"epochs": 1, "batch_size": 64},
         "data": {"name": "digits", "fraction": 0.2, "augment": "none", "val_size": 50}},
    )  # fmt: skip
    model, _ = load_model(theta)
    groups = prunable_groups(channel_groups(model, 8), Mask.dense(model))
    for path, target in zip(
        find_tickets(spec, theta, workdir=theta.parent / f"ch-{method}-{ratio}"),
        (0.5, 0.75),
        strict=True,
    ):
        ticket = load_ticket(path)
        assert check_channels(ticket.mask, groups) == []
        assert channel_sparsity(ticket.mask, groups) == pytest.approx(target, abs=1 / 224)
        for g in groups:  # the floor: no layer emptied
            name, indices = g.filters[0]
            assert bool(ticket.mask[name][list(indices)].flatten(1).any(1).any())
        if ratio == "layer":
            for g in groups:
                name, indices = g.filters[0]
                pruned = int((~ticket.mask[name][list(indices)].flatten(1).any(1)).sum())
                assert pruned == round(target * g.size)


@pytest.mark.parametrize("pattern", ["unstructured", "channel", "nm"])
def test_every_export_agrees_with_the_masked_model(theta, tmp_path, pattern):
    extra = {"scope": {"exclude": ["conv1"]}} if pattern == "nm" else {}
    sparsities = [] if pattern == "nm" else [0.5]
    spec = load_spec(
        "tickets",
        {"weights": str(theta), "method": "omp", "pattern": pattern, "sparsities": sparsities, **extra},
    )  # fmt: skip
    (ticket,) = find_tickets(spec, theta, workdir=tmp_path / "t")
    done = export_ticket(theta, ticket, tmp_path / "out", csr=pattern == "unstructured")
    assert done.agrees and done.largest_logit > 0
    assert not (tmp_path / "out.partial").exists()
    summary = json.loads((tmp_path / "out" / "export.json").read_text())
    assert summary["pattern"] == pattern and summary["dense"]["params"] > 0


def test_a_channel_export_is_smaller_and_loads_with_and_without_doublewin(theta, tmp_path, capsys):
    spec = load_spec("tickets", {"weights": str(theta), "method": "omp", "pattern": "channel",
                                 "sparsities": [0.5]})  # fmt: skip
    (ticket,) = find_tickets(spec, theta, workdir=tmp_path / "t")
    out = tmp_path / "slim"
    done = export_ticket(theta, ticket, out)
    assert done.exported.params < 0.3 * done.dense.params
    assert done.exported.flops < 0.4 * done.dense.flops
    # doublewin loads it (its own widths) and it gives the masked model's logits.
    model, meta = load_model(out / "weights.safetensors")
    masked, _ = load_model(theta)
    load_ticket(ticket).mask.apply_to(masked)
    x = torch.rand(4, 3, 8, 8)
    expected = masked.eval()(x)
    assert (model.eval()(x) - expected).abs().max() <= TOLERANCE * max(1, expected.abs().max())
    code = 0
    try:
        main(["evaluate", "--weights", str(out / "weights.safetensors"), "--data", "digits",
              "--steps", "1", "--json"])  # fmt: skip
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0 and json.loads(capsys.readouterr().out)["n"] > 0
    # Plain torch, from the module definition the export wrote: doublewin never imported.
    probe = (
        "import json, sys, torch\n"
        "from safetensors.torch import load_file\n"
        "from model import SlimResNet\n"
        "net = SlimResNet(json.load(open('architecture.json')))\n"
        "net.load_state_dict(load_file('weights.safetensors'))\n"
        "torch.manual_seed(0)\n"
        "print(json.dumps(net.eval()(torch.rand(4, 3, 8, 8)).tolist()))\n"
        "assert not any(m.startswith('doublewin') for m in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=out, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    torch.manual_seed(0)
    expected = masked.eval()(torch.rand(4, 3, 8, 8))
    difference = (torch.tensor(json.loads(run.stdout)) - expected).abs().max()
    assert difference <= TOLERANCE * max(1, expected.abs().max())


def test_a_half_channel_ticket_of_cifar_resnet18_exports_to_under_30_percent(tmp_path):
    torch.manual_seed(0)
    model = build_model("cifar_resnet18", 10)
    path = tmp_path / "r18.safetensors"
    save_weights(path, model, WeightsMeta(arch="cifar_resnet18", num_classes=10, input_size=32))
    spec = load_spec("tickets", {"weights": str(path), "method": "omp", "pattern": "channel",
                                 "sparsities": [0.5]})  # fmt: skip
    (ticket,) = find_tickets(spec, path, workdir=tmp_path / "t")
    done = export_ticket(path, ticket, tmp_path / "out", batch=torch.rand(2, 3, 32, 32))
    assert done.exported.params <= 0.30 * done.dense.params
    assert done.agrees and done.largest_logit > 0


def test_an_unstructured_ticket_records_nothing_new(theta, tmp_path):
    spec = load_spec("tickets", {"weights": str(theta), "method": "omp", "sparsities": [0.5]})
    (ticket,) = find_tickets(spec, theta, workdir=tmp_path)
    with safe_open(str(ticket), "pt") as handle:
        meta = handle.metadata()
    assert set(meta) == {
        "format", "version", "encoding", "arch", "method", "target_sparsity", "sparsity",
        "kept", "total", "weights_hash", "mask_hash", "scope", "masks", "spec", "extra",
    }  # fmt: skip
    recorded = json.loads(meta["spec"])
    assert not {"pattern", "channel_score", "channel_ratio", "nm"} & set(recorded)
    assert json.loads(meta["extra"]) == {}
    assert TicketSpec().pattern == "unstructured"


# ---------------------------------------------------------------- bad input


def _find(theta: Path, out: Path, *sets: str) -> list:
    return ["find-tickets", "--weights", theta, "--method", "omp", "--out", out,
            *[a for s in sets for a in ("--set", s)]]  # fmt: skip


@pytest.mark.parametrize(
    ("sets", "names"),
    [
        (("pattern=nm", "nm=[4,4]"), ("tickets.nm", "N < M")),
        (("pattern=nm", "nm=[5,2]"), ("tickets.nm",)),
        (("pattern=nm", "nm=[3,7]"), ("no layer in the scope", "multiple of 7")),
        (("pattern=channel", "sparsities=[0.99]"), ("would empty a layer",)),
        (("pattern=channel", "channel_ratio=layer", "sparsities=[0.97]"), ("would empty",)),
    ],
)
def test_a_pattern_that_cannot_be_drawn_is_one_line_before_compute(
    theta, tmp_path, capsys, sets, names
):
    fails(_find(theta, tmp_path / "out", *sets), capsys, names=names, watch=tmp_path)


@pytest.mark.parametrize("method", ["synflow", "gem-miner"])
def test_a_pattern_on_a_method_that_cannot_produce_it_is_refused(method):
    with pytest.raises(UserError, match=f"not available for {method}"):
        load_spec("tickets", {"method": method, "pattern": "channel"})


def test_an_experiment_checks_its_patterns_before_anything_runs(tmp_path, capsys):
    experiment = tmp_path / "e.yaml"
    experiment.write_text(
        "pretrain: {data: {name: chars}, runs: {STD: {train: {regime: std}}}}\n"
        "tickets: {methods: [omp], patterns: [unstructured, nm], nm: [3, 7]}\n"
    )
    fails(["run", experiment, "--out", tmp_path / "run", "--dry-run"], capsys,
          names=("no layer in the scope",), watch=tmp_path)  # fmt: skip


def test_an_nm_ticket_leaves_dense_and_names_the_layers_that_cannot_hold_it(
    theta, tmp_path, capsys
):
    """The 3-channel stem cannot be grouped by 4: it stays dense (NVIDIA's ASP does the same),
    the command says so, and the ticket's scope records it; every other layer is exactly 2:4."""
    code = _code(_find(theta, tmp_path / "out", "pattern=nm", "sparsities=[]"))
    assert code == 0, capsys.readouterr().err
    said = capsys.readouterr()
    assert "leaves dense" in said.out + said.err and "conv1" in said.out + said.err
    (path,) = sorted((tmp_path / "out").glob("ticket-*.safetensors"))
    ticket = load_ticket(path)
    assert "conv1.weight" not in ticket.mask and "conv1" in ticket.info.scope.exclude
    assert ticket.mask and check_pattern(ticket.mask, 2, 4) == []


def test_exporting_a_ticket_of_other_shapes_is_one_line(theta, tmp_path, capsys):
    other = tmp_path / "r20.safetensors"
    save_weights(other, build_model("resnet20", 10), WeightsMeta(arch="resnet20", num_classes=10))
    main(["find-tickets", "--weights", str(other), "--method", "omp", "--sparsities", "0.5",
          "--out", str(tmp_path / "t"), "--json"])  # fmt: skip
    capsys.readouterr()
    fails(["export", "--weights", theta, "--ticket", tmp_path / "t" / "ticket-0.500000.safetensors",
           "--out", tmp_path / "out"], capsys, names=("resnet20",), watch=tmp_path)  # fmt: skip


def test_check_plan_accepts_a_pattern_that_fits():
    check_plan(TicketSpec(method="omp", pattern="channel", sparsities=(0.5,)), "resnet8", 8)
    check_plan(
        TicketSpec(method="omp", pattern="nm", scope=MaskScope(exclude=("conv1",))), "resnet8"
    )
    model = build_model("resnet8", 10)
    assert Pattern.of(TicketSpec(pattern="channel"), model, Mask.dense(model), 8).groups


def test_a_quick_demo_slice_with_channel_tickets_reports_both_patterns(tmp_path):
    """The quick demo's slice (one seed, STD and the control) with tickets.patterns
    [unstructured, channel]: results.csv carries the pattern, the verdicts and the report show
    both patterns' ladders, and the paper's findings read the unstructured ones."""
    from doublewin.analysis.results_table import read_results_csv
    from runs import SLICE, doublewin

    out = tmp_path / "run"
    done = subprocess.run(
        doublewin("demo", "--quick", "--out", str(out), "--json", *SLICE,
                  "--set", "tickets.patterns=[unstructured, channel]",
                  "--set", "tickets.rounds=3", "--set", "tickets.transfer_rungs=[1, 2]"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_results_csv(out / "results.csv")
    patterns = {(r["method"], r["pattern"]) for r in rows}
    assert {("dense", ""), ("imp", "unstructured"), ("imp", "channel")} <= patterns
    markdown = (out / "report" / "report.md").read_text()
    assert "IMP (ST), channel" in markdown and "IMP (ST)" in markdown
    assert "better tickets than standard pre-training in every sparsity pattern" in markdown


def _code(argv) -> int:
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
