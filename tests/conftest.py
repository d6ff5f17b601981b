"""Shared fixtures. Models trained once per session are reused across test files.

Before torch loads: the thread defaults the command line sets (doublewin/cli/__init__.py), so
in-process tests beside a busy process slow down in proportion instead of collapsing: OpenMP
threads that sleep while they wait, and one intra-op thread per core this process may use.
Under CI=true (.ci/run), a test that needs a cluster service and skips fails the run."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))

from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

# Under CI=true a skipped cluster test fails the run (ci_required.py).
pytest_plugins = ["ci_required"]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """Run a doublewin command in this process: ``cli("verdict", path)`` gives its exit code,
    stdout and stderr (what earlier calls printed is dropped first)."""
    from doublewin.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@dataclass
class TrainedPair:
    """A standard-trained and a PGD-trained resnet8 on `digits` at 16 px, the test loader,
    and the ε (pixels) the adversarial one was trained at."""

    std: nn.Module
    at: nn.Module
    test_loader: Any
    info: Any
    eps: float
    resolution: int


@pytest.fixture(scope="session")
def digits_pair() -> TrainedPair:
    """Trained once per session (about 20 s on 2 CPU cores): 5 epochs each, cosine lr,
    AT with PGD-5 at ε = 16/255 (digits have 17 grey levels, so 8/255 is a small ball)."""
    from doublewin.core.specs import AttackSpec, DataSpec, TrainSpec
    from doublewin.data import prepare_data
    from doublewin.models import build_model
    from doublewin.train import train

    eps, resolution = 16 / 255, 16
    train_loader, _, test_loader, info = prepare_data(
        DataSpec(name="digits", resolution=resolution, augment="none"),
        resolution_default=resolution,
        batch_size=64,
        device="cpu",
        seed=0,
    )
    models = {}
    for regime in ("std", "at"):
        torch.manual_seed(0)
        model = build_model("resnet8", info.num_classes, mean=info.mean, std=info.std)
        spec = TrainSpec(
            regime=regime,
            epochs=5,
            lr=0.1,
            batch_size=64,
            schedule="cosine",
            attack=AttackSpec(eps=eps, step=eps / 2.5, steps=5),
            val_every=1000,
        )
        train(model, spec, train_loader, device="cpu", seed=0)
        models[regime] = model.eval()
    return TrainedPair(models["std"], models["at"], test_loader, info, eps, resolution)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted `doublewin demo --quick` (its folder and wall seconds), shared by
    the end-to-end and fault tests."""
    import subprocess
    import time

    from runs import doublewin

    out = tmp_path_factory.mktemp("quick") / "run"
    started = time.monotonic()
    done = subprocess.run(
        doublewin("demo", "--quick", "--out", str(out), "--json"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, time.monotonic() - started


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """θp (digits, resnet8, the seeded control), a 50% ticket of it, and a resnet18 ticket:
    the inputs of the bad-input and first-hour tests."""
    from doublewin.cli import main
    from doublewin.core import paths
    from doublewin.core.build import load_spec
    from doublewin.models import WeightsMeta, build_model, save_weights
    from doublewin.stages import Inputs, run_stage

    root = tmp_path_factory.mktemp("inputs")
    spec = load_spec("pretrain", {"arch": "resnet8", "data": {"name": "digits"}, "kind": "control"})
    run_stage("pretrain", spec, Inputs(), root / "theta", device=torch.device("cpu"))
    weights = root / "theta" / paths.WEIGHTS
    main(["find-tickets", "--weights", str(weights), "--method", "omp", "--sparsities", "0.5",
          "--out", str(root / "tickets"), "--json"])  # fmt: skip
    ticket = root / "tickets" / paths.ticket(0.5)
    torch.manual_seed(0)
    other = root / "other.safetensors"
    save_weights(other, build_model("resnet18", 10), WeightsMeta(arch="resnet18", num_classes=10))
    main(["find-tickets", "--weights", str(other), "--method", "random", "--sparsities", "0.5",
          "--out", str(root / "other-tickets"), "--json"])  # fmt: skip
    return {
        "weights": weights,
        "ticket": ticket,
        "other_ticket": root / "other-tickets" / paths.ticket(0.5),
    }


# A run small enough for a fixture (about 10 s on 2 CPU cores): AT pre-training on 5% of
# `chars` for one epoch, one-shot tickets at 20% and 95%, ST and AT transfer to `digits` for
# one epoch with three seeds, the fine-tuned best-RA weights kept. One-epoch transfers are
# noisy, so the fixture's interval rule takes a 30-point margin: it certifies the 20% ticket
# (a ticket to export) and leaves the 95% one inconclusive (a ticket to refuse).
CERTIFY_EXPERIMENT = {
    "name": "certify",
    "arch": "resnet8",
    "seeds": [0, 1, 2],
    "pretrain": {
        "data": {
            "name": "chars",
            "fraction": 0.05,
            "val_size": 100,
            "augment": "none",
            "resolution": 8,
            "test_limit": 120,
        },
        "train": {
            "epochs": 1,
            "batch_size": 64,
            "lr": 0.1,
            "schedule": "cosine",
            "attack": {"eps": "8/255", "step": "8/255", "steps": 1},
            "val_attack": {"steps": 1, "step": "8/255"},
        },
        "eval_attack": {"steps": 1, "step": "8/255"},
        "runs": {"AT": {"train": {"regime": "at"}}},
    },
    "tickets": {"methods": ["omp"], "sparsities": [0.2, 0.95]},
    "transfer": {
        "datasets": ["digits"],
        "fractions": [0.5],
        "data": {"resolution": 8, "test_limit": 100, "val_size": 30, "augment": "none"},
        "regimes": {
            "st": {
                "epochs": 1,
                "batch_size": 32,
                "lr": 0.1,
                "schedule": "cosine",
                "val_attack": {"steps": 1, "step": "8/255"},
            },
            "at": {
                "epochs": 1,
                "batch_size": 32,
                "lr": 0.1,
                "schedule": "cosine",
                "attack": {"eps": "8/255", "step": "8/255", "steps": 1},
                "val_attack": {"steps": 1, "step": "8/255"},
            },
        },
        "eval_attack": {"steps": 2, "step": "4/255"},
        "save_models": "best_ra",
    },
    "verdict": {"rule": "interval", "margin_floor": 30},
}


@pytest.fixture(scope="session")
def certify_run(tmp_path_factory):
    """The finished run of `CERTIFY_EXPERIMENT` (its folder)."""
    import yaml

    from doublewin.cli import main

    root = tmp_path_factory.mktemp("certify")
    config = root / "certify.yaml"
    config.write_text(yaml.safe_dump(CERTIFY_EXPERIMENT, sort_keys=False))
    main(["run", str(config), "--out", str(root / "run"), "--json"])
    return root / "run"


CERTIFIED_TICKET = "AT/omp/0.2"  # certified double-win by CERTIFY_EXPERIMENT's rule


@pytest.fixture(scope="session")
def ticket_export(certify_run, tmp_path_factory):
    """`doublewin export --run` of the run's certified ticket (its folder)."""
    from doublewin.cli import main

    out = tmp_path_factory.mktemp("exports") / "ticket"
    main(
        [
            "export",
            "--run",
            str(certify_run),
            "--ticket",
            CERTIFIED_TICKET,
            "--out",
            str(out),
            "--json",
        ]
    )
    return out


@pytest.fixture(scope="session")
def tuned_export(certify_run, tmp_path_factory):
    """The AT-transferred model of seed 0 (the run kept its best-RA weights), exported with
    AutoAttack on its first 20 test points and a license on its card."""
    from doublewin.cli import main

    out = tmp_path_factory.mktemp("exports") / "tuned"
    main(
        [
            "export",
            "--run",
            str(certify_run),
            "--ticket",
            CERTIFIED_TICKET,
            "--seed",
            "0",
            "--autoattack",
            "20",
            "--license",
            "mit",
            "--out",
            str(out),
            "--json",
        ]
    )
    return out
