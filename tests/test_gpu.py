"""The CUDA path, stage by stage, on a lent GPU (tools/gpu_check.py runs these): every stage on
`cuda`, the CPU and the GPU agreeing, bf16 within noise of fp32, masks exact in every precision,
out-of-memory as one line, and the quick demo end to end. Each test skips, saying why, where
there is no CUDA device; CI has none."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from doublewin.cli import main
from doublewin.core import paths
from doublewin.core.build import load_spec
from doublewin.data import load_dataset, make_loader
from doublewin.stages import Inputs, run_stage
from doublewin.tickets import load_ticket
from test_bad_input import fails

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA device (the prepared GPU check, tools/gpu_check.py, runs these)",
    ),
    pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
]
CUDA = "cuda"


def _ok(capsys, *argv) -> str:
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    return capsys.readouterr().out


def _transfer(capsys, weights, out, *extra, regime="st", device=CUDA) -> dict:
    _ok(capsys, "transfer", "--weights", weights, "--data", "digits", "--regime", regime,
        "--epochs", "1", "--fraction", "0.5", "--out", out, "--device", device,
        "--set", "data.test_limit=200", "--set", "eval_attack.steps=3",
        "--set", "train.attack.steps=2", *extra)  # fmt: skip
    return json.loads((out / paths.METRICS).read_text())


# --- every stage on cuda ------------------------------------------------------------------------


@pytest.mark.parametrize("regime", ["std", "fat", "at"])
def test_pretraining_runs_on_cuda(tmp_path, capsys, regime):
    out = tmp_path / "w.safetensors"
    _ok(capsys, "pretrain", "--arch", "resnet8", "--data", "digits", "--regime", regime,
        "--epochs", "1", "--out", out, "--device", CUDA, "--json",
        "--set", "data.fraction=0.5", "--set", "eval_attack.steps=2")  # fmt: skip
    from doublewin.models import load_weights

    state, meta = load_weights(out)
    assert meta.regime == regime and 0 <= meta.source_sa <= 100
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_an_imp_round_runs_on_cuda(tmp_path, capsys, files):
    _ok(capsys, "find-tickets", "--weights", files["weights"], "--method", "imp", "--rate", "0.5",
        "--rounds", "1", "--data", "digits", "--out", tmp_path / "t", "--device", CUDA,
        "--set", "train.epochs=1", "--set", "data.fraction=0.5")  # fmt: skip
    ticket = load_ticket(tmp_path / "t" / "ticket-0.500000.safetensors")
    assert ticket.mask.sparsity == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("method", ["omp", "snip", "grasp", "synflow", "gem-miner"])
def test_one_shot_methods_draw_a_rung_on_cuda(tmp_path, capsys, files, method):
    extra = ["--set", "gem_miner.epochs=2"] if method == "gem-miner" else []
    _ok(capsys, "find-tickets", "--weights", files["weights"], "--method", method,
        "--sparsities", "0.8", "--data", "digits", "--out", tmp_path / "t", "--device", CUDA,
        "--set", "data.fraction=0.2", *extra)  # fmt: skip
    ticket = load_ticket(tmp_path / "t" / "ticket-0.800000.safetensors")
    assert ticket.mask.sparsity == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize(
    ("method", "pattern"),
    [("hydra", "unstructured"), ("harp", "unstructured"), ("harp", "channel")],
)
def test_score_searches_draw_a_rung_on_cuda(tmp_path, capsys, files, method, pattern):
    _ok(
        capsys,
        "find-tickets",
        "--weights",
        files["weights"],
        "--method",
        method,
        "--sparsities",
        "0.5",
        "--data",
        "digits",
        "--out",
        tmp_path / "t",
        "--device",
        CUDA,
        "--set",
        "data.fraction=0.2",
        "--set",
        f"{method}.epochs=2",
        "--set",
        f"{method}.attack.steps=2",
        "--set",
        f"pattern={pattern}",
    )
    ticket = load_ticket(tmp_path / "t" / "ticket-0.500000.safetensors")
    if pattern == "unstructured":
        assert ticket.mask.sparsity == pytest.approx(0.5, abs=1e-4)
    else:
        assert ticket.info.extra["budget_sparsity"] >= 0.5


@pytest.mark.parametrize("regime", ["st", "at"])
def test_transfer_of_a_ticket_runs_on_cuda(tmp_path, capsys, files, regime):
    m = _transfer(
        capsys, files["weights"], tmp_path / "x", "--ticket", files["ticket"], regime=regime
    )
    assert 0 <= m["ra_best_sa"] <= m["sa_best_sa"] <= 100 and m["sparsity"] == pytest.approx(0.5)


def test_evaluate_runs_pgd_and_autoattack_on_cuda(tmp_path, capsys, files):
    pytest.importorskip(
        "torchattacks", reason="AutoAttack comes with torchattacks (a carried wheel)"
    )
    out = _ok(capsys, "evaluate", "--weights", files["weights"], "--data", "digits", "--limit",
              "64", "--steps", "5", "--autoattack", "16", "--check-points", "64",
              "--device", CUDA, "--json")  # fmt: skip
    report = json.loads(out)
    assert report["autoattack_ra"] <= report["sa"] and report["ra"] <= report["sa"]


def test_a_landscape_runs_on_cuda(tmp_path, capsys, files):
    _ok(capsys, "landscape", "--weights", files["weights"], "--ticket", files["ticket"], "--data",
        "digits", "--fraction", "0.5", "--epochs", "2", "--grid", "3", "--images", "64",
        "--snapshots", "3", "--hessian-iterations", "2", "--out", tmp_path / "l",
        "--device", CUDA, "--json")  # fmt: skip
    assert any((tmp_path / "l").iterdir())


def test_a_channel_and_a_2_to_4_ticket_export_on_cuda(tmp_path, capsys, files):
    for pattern, extra in (("channel", ["--sparsities", "0.5"]), ("nm", [])):
        folder = tmp_path / pattern
        _ok(capsys, "find-tickets", "--weights", files["weights"], "--method", "omp",
            "--out", folder, "--set", f"pattern={pattern}", *extra)  # fmt: skip
        (ticket,) = sorted(folder.glob("ticket-*.safetensors"))
        out = _ok(capsys, "export", "--weights", files["weights"], "--ticket", ticket,
                  "--out", tmp_path / f"e-{pattern}", "--json")  # fmt: skip
        summary = json.loads(out)
        assert summary["max_logit_difference"] <= 1e-4 * max(1.0, summary["largest_logit"])
        if pattern == "nm" and torch.cuda.get_device_capability() >= (8, 0):
            # sparse tensor cores: the 2:4 layers were converted and checked
            assert any("semi-structured" in note for note in summary["notes"]), summary["notes"]


# --- the CPU and the GPU agree; precision; masks -----------------------------------------------


def test_cpu_and_gpu_agree_on_a_tiny_fp32_run(tmp_path, capsys, files, monkeypatch):
    """The same one-epoch fp32 ST transfer on both devices, deterministic algorithms on: the
    final weights agree to 1e-3 of their size and SA within 1 point (5 of the 539 test
    images: float sums run in another order on the GPU, so the last bits differ and a few
    borderline images may flip)."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        runs = {
            device: _transfer(
                capsys,
                files["weights"],
                tmp_path / device,
                "--save-models",
                "best_sa",
                "--set",
                "train.precision=fp32",
                device=device,
            )  # fmt: skip
            for device in ("cpu", CUDA)
        }
    finally:
        torch.use_deterministic_algorithms(False)
    assert abs(runs["cpu"]["sa_best_sa"] - runs[CUDA]["sa_best_sa"]) <= 1.0
    from doublewin.models import load_weights

    cpu, _ = load_weights(tmp_path / "cpu" / paths.BEST_WEIGHTS["sa"])
    gpu, _ = load_weights(tmp_path / CUDA / paths.BEST_WEIGHTS["sa"])
    for name, tensor in cpu.items():
        if tensor.is_floating_point():
            assert (tensor - gpu[name]).abs().max() <= 1e-3 * max(1.0, float(tensor.abs().max()))


def test_the_resident_loader_yields_the_cpu_loaders_batches(tmp_path):
    """Crop, flip and the 8 → 16 px resize batched on the GPU: the same images as on the CPU
    for the same seed (crops and flips exactly; the resize to float round-off)."""
    images = load_dataset("digits").train
    loaders = {
        device: make_loader(
            images,
            batch_size=64,
            train=True,
            resolution=16,
            augment="crop-flip",
            device=device,
            seed=3,
        )  # fmt: skip
        for device in ("cpu", CUDA)
    }
    for (x_cpu, y_cpu), (x_gpu, y_gpu) in zip(loaders["cpu"], loaders[CUDA], strict=True):
        assert torch.equal(y_cpu, y_gpu.cpu())
        assert (x_cpu - x_gpu.cpu()).abs().max() <= 1e-5


def test_bf16_autocast_gives_sa_and_ra_within_noise_of_fp32(tmp_path, capsys, files):
    """Three seeds each: bf16's mean SA and RA within max(2 points, 3 × fp32's seed spread) of
    fp32's. The tolerance is the run-to-run noise of this tiny task (a seed moves SA by a
    point or two), not a property of bf16 alone: the claim is that bf16 changes nothing a
    verdict could see."""
    means = {}
    for precision in ("fp32", "bf16"):
        runs = [
            _transfer(
                capsys,
                files["weights"],
                tmp_path / f"{precision}{seed}",
                "--seed",
                str(seed),
                "--set",
                f"train.precision={precision}",
                regime="at",
            )  # fmt: skip
            for seed in range(3)
        ]
        means[precision] = {k: [r[k] for r in runs] for k in ("sa_best_sa", "ra_best_sa")}
    for key in ("sa_best_sa", "ra_best_sa"):
        spread = statistics.stdev(means["fp32"][key])
        gap = abs(statistics.fmean(means["fp32"][key]) - statistics.fmean(means["bf16"][key]))
        assert gap <= max(2.0, 3 * spread), (key, means)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_pruned_weights_stay_exactly_zero_on_the_gpu(tmp_path, capsys, files, precision):
    _transfer(capsys, files["weights"], tmp_path / "x", "--ticket", files["ticket"],
              "--save-models", "best_sa", "--set", f"train.precision={precision}", regime="at")  # fmt: skip
    from doublewin.models import load_weights

    state, _ = load_weights(tmp_path / "x" / paths.BEST_WEIGHTS["sa"])
    for name, keep in load_ticket(files["ticket"]).mask.items():
        assert not state[name][~keep.bool()].any(), name


def test_cuda_out_of_memory_is_one_line_naming_the_batch_size(tmp_path, capsys, files):
    """The GPU nearly filled first, then a transfer: one line, exit 2, nothing written."""
    free, _ = torch.cuda.mem_get_info()
    filler = torch.empty(max(0, free - (256 << 20)), dtype=torch.uint8, device=CUDA)
    try:
        fails(["transfer", "--weights", files["weights"], "--data", "digits", "--regime", "at",
               "--resolution", "224", "--out", tmp_path / "out", "--device", CUDA,
               "--set", "train.batch_size=512"], capsys,
              names=("CUDA out of memory", "batch size 512"), watch=tmp_path)  # fmt: skip
    finally:
        del filler
        torch.cuda.empty_cache()


def test_the_quick_demo_runs_end_to_end_on_cuda(tmp_path, capsys):
    _ok(capsys, "demo", "--quick", "--out", tmp_path / "demo", "--device", CUDA, "--json")
    report = (tmp_path / "demo" / "report" / "report.md").read_text()
    assert "**What this run found:**" in report
    assert (tmp_path / "demo" / "results.csv").read_text().count("\n") > 100


def test_the_stage_function_runs_on_cuda_in_process(tmp_path):
    """The library path the runner takes (run_stage on a cuda device), not only the CLI."""
    spec = load_spec("pretrain", {"arch": "resnet8", "data": {"name": "digits", "fraction": 0.2},
                                  "train": {"epochs": 1}})  # fmt: skip
    metrics = run_stage("pretrain", spec, Inputs(), tmp_path / "p", device=torch.device(CUDA))
    assert metrics["content_hash"] and 0 <= metrics["source_sa"] <= 100
