"""Loss landscapes (the paper's Figure 6): filter-normalized directions, the plane's origin,
the projected trajectory, the Hessian's top eigenvalue against an exact one, resume, and the
landscape stage and command end to end on a small model."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch
from torch import nn

from doublewin.core import paths
from doublewin.core.build import load_spec
from doublewin.measure.landscape import (
    LossSurface,
    axis,
    loss_grid,
    mean_loss,
    pca_plane,
    random_plane,
)
from doublewin.measure.sharpness import mean_increase, top_eigenvalue
from doublewin.measure.trajectory import plane_parameters
from doublewin.stages import Inputs, run_stage
from doublewin.tickets import find_tickets


def _small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 3),
    ).eval()


def _batches(seed: int = 0, n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(16, 1, 5, 5, generator=g), torch.randint(0, 3, (16,), generator=g))] * n


def test_filter_normalized_directions_have_each_filters_norm_and_spare_pruned_weights():
    net = _small_net()
    conv = net[0].weight
    mask = {"0.weight": (torch.arange(conv.numel()).reshape(conv.shape) % 3 != 0)}
    mask["0.weight"][1] = False  # a whole filter pruned
    with torch.no_grad():
        conv.mul_(mask["0.weight"])
    plane = random_plane(net, mask, seed=3)
    for d in (plane.d1, plane.d2):
        for name, w in plane.centre.items():
            w_norms = w.reshape(w.shape[0], -1).norm(dim=1)
            d_norms = d[name].reshape(w.shape[0], -1).norm(dim=1)
            assert torch.allclose(d_norms, w_norms, rtol=1e-10, atol=1e-12), name
        assert torch.all(d["0.weight"][~mask["0.weight"]] == 0)
        assert torch.all(d["0.weight"][1] == 0)
    assert set(plane.names) == {"0.weight", "4.weight"}  # biases and BatchNorm stay put
    assert not torch.equal(plane.d1["4.weight"], plane.d2["4.weight"])


def test_the_loss_at_the_origin_is_the_models_loss_and_batched_points_equal_one_at_a_time():
    net, batches = _small_net(), _batches()
    plane = random_plane(net, None, seed=0)
    surface = LossSurface(net.double(), plane, [(x.double(), y) for x, y in batches], chunk=3)
    points = [(0.0, 0.0), (0.3, -0.2), (-1.0, 0.5), (0.7, 0.7)]
    batched = surface.losses(points)
    assert batched[0] == pytest.approx(mean_loss(net, surface.batches), rel=1e-12)
    for (alpha, beta), value in zip(points, batched, strict=True):
        moved = _small_net().double()
        with torch.no_grad():
            for name, p in plane_parameters(moved).items():
                p.copy_(plane.point(alpha, beta)[name])
        assert value == pytest.approx(mean_loss(moved, surface.batches), rel=1e-10)
    assert batched[1] != pytest.approx(batched[0])


def test_the_adversarial_loss_at_the_origin_is_the_attacked_models_loss():
    from doublewin.attacks import PGD
    from doublewin.core.specs import AttackSpec

    net, batches = _small_net(), _batches(n=1)
    attack = AttackSpec(eps=0.1, step=0.05, steps=3)
    surface = LossSurface(net, random_plane(net, None, 0), batches, attack=attack, seed=5)
    clean = mean_loss(net, batches)
    (adversarial,) = surface.losses([(0.0, 0.0)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5 * 1_000_003)
        x_adv = PGD.from_spec(attack, bn_mode="eval")(net, *batches[0])
    assert adversarial == pytest.approx(mean_loss(net, [(x_adv, batches[0][1])]), rel=1e-6)
    assert adversarial > clean


def test_the_trajectorys_last_point_is_the_origin_of_either_plane():
    net = _small_net()
    snapshots = []
    for step in range(6):  # a made-up trajectory ending at the final weights
        with torch.no_grad():
            for p in plane_parameters(net).values():
                p.add_(0.05 * torch.randn_like(p) + 0.02 * step)
        snapshots.append({n: p.detach().clone() for n, p in plane_parameters(net).items()})
    for plane in (random_plane(net, None, 1), pca_plane(net, snapshots)):
        assert plane.project(snapshots[-1]) == pytest.approx((0.0, 0.0), abs=1e-9)
        start = plane.project(snapshots[0])
        assert max(abs(c) for c in start) > 1e-3 or plane.kind == "random"
    pca = pca_plane(net, snapshots)
    names = list(pca.names)
    a = torch.cat([pca.d1[n].reshape(-1) for n in names])
    b = torch.cat([pca.d2[n].reshape(-1) for n in names])
    assert float(a.norm()) == pytest.approx(1.0) and abs(float(a @ b)) < 1e-9


def test_power_iteration_matches_the_exact_top_eigenvalue_of_the_hessian():
    from torch.func import functional_call

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    x = torch.randn(20, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (20,))
    names = ["0.weight", "2.weight"]
    params = dict(net.named_parameters())
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        split = [t.reshape(s) for t, s in zip(flat.split(sizes), shapes, strict=True)]
        pieces = dict(zip(names, split, strict=True))
        logits = functional_call(net, {**params, **pieces}, (x,))
        return nn.functional.cross_entropy(logits, y)

    flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    hessian = torch.autograd.functional.hessian(loss, flat)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    exact = float(eigenvalues[eigenvalues.abs().argmax()])
    found = top_eigenvalue(net, [(x, y)], iterations=500, tolerance=1e-12, seed=1)
    assert found.value == pytest.approx(exact, rel=1e-6)

    # With a mask, the Hessian of the kept weights only.
    keep = {"0.weight": torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]])}
    kept = torch.cat([keep["0.weight"].reshape(-1).bool(), torch.ones(6, dtype=torch.bool)])
    sub = hessian[kept][:, kept]
    sub_values = torch.linalg.eigvalsh(sub)
    exact_sub = float(sub_values[sub_values.abs().argmax()])
    masked = top_eigenvalue(net, [(x, y)], mask=keep, iterations=500, tolerance=1e-12, seed=1)
    assert masked.value == pytest.approx(exact_sub, rel=1e-6)
    assert exact_sub != pytest.approx(exact, rel=1e-3)


def test_mean_increase_averages_the_points_inside_the_radius():
    coords = np.array([-1.0, 0.0, 1.0])
    values = np.array([[9.0, 3.0, 9.0], [4.0, 1.0, 2.0], [9.0, 6.0, 9.0]])
    # Inside radius 1: the centre and its four neighbours: (3 + 4 + 1 + 2 + 6) / 5 − 1 = 2.2.
    assert mean_increase(values, coords, 1.0, 1.0) == pytest.approx(2.2)
    # Radius 1.5 takes the corners too: (sum 52) / 9 − 1.
    assert mean_increase(values, coords, 1.0, 1.5) == pytest.approx(52 / 9 - 1)


def test_an_interrupted_grid_resumes_to_the_same_values(tmp_path):
    net, batches = _small_net(), _batches()
    surface = LossSurface(net, random_plane(net, None, 0), batches)
    coords = axis(5, 1.0)
    whole = loss_grid(surface, coords)
    partial = tmp_path / "partial.npz"

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loss_grid(surface, coords, partial=partial, identity="a", on_row=stop_after_two)
    rows: list[int] = []
    resumed = loss_grid(
        surface, coords, partial=partial, identity="a", on_row=lambda d, t: rows.append(d)
    )
    assert rows == [3, 4, 5]  # started after the two saved rows
    np.testing.assert_array_equal(resumed, whole)
    other = loss_grid(surface, coords, partial=partial, identity="b")  # other settings: anew
    np.testing.assert_array_equal(other, whole)


@pytest.fixture(scope="module")
def small_ticket(tmp_path_factory):
    folder = tmp_path_factory.mktemp("landscape")
    spec = load_spec("pretrain", {"arch": "resnet8", "data": {"name": "digits"}, "kind": "control"})
    run_stage("pretrain", spec, Inputs(), folder / "theta", device=torch.device("cpu"))
    weights = folder / "theta" / paths.WEIGHTS
    tickets = load_spec("tickets", {"weights": str(weights), "method": "omp", "sparsities": [0.75]})
    (ticket,) = find_tickets(tickets, weights, workdir=folder / "tickets")
    return weights, ticket


def _landscape_spec(weights, ticket):
    return load_spec(
        "landscape",
        {
            "transfer": {
                "weights": str(weights),
                "ticket": str(ticket),
                "data": {"name": "digits", "fraction": 0.2, "resolution": 8, "augment": "none"},
                "train": {"regime": "std", "epochs": 2, "batch_size": 64, "val_ra": False},
                "eval_attack": {"steps": 1},
            },
            "grid": 5,
            "images": 64,
            "snapshots": 4,
            "hessian_iterations": 2,
            "plane": "pca",
        },
    )


def test_a_resumed_landscape_stage_gives_the_same_grid(small_ticket, tmp_path, monkeypatch):
    weights, ticket = small_ticket
    spec = _landscape_spec(weights, ticket)
    inputs, cpu = Inputs(weights=weights, ticket=ticket), torch.device("cpu")
    whole = run_stage("landscape", spec, inputs, tmp_path / "whole", device=cpu)
    stage = importlib.import_module("doublewin.stages.landscape")  # the package re-exports

    original = stage.loss_grid

    def interrupted(surface, coords, *, on_row=None, **kwargs):
        def stop(done: int, total: int) -> None:
            if done == 2:
                raise KeyboardInterrupt

        return original(surface, coords, on_row=stop, **kwargs)

    monkeypatch.setattr(stage, "loss_grid", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_stage("landscape", spec, inputs, tmp_path / "resumed", device=cpu)
    assert (tmp_path / "resumed" / paths.LANDSCAPE_PARTIAL).is_file()
    monkeypatch.setattr(stage, "loss_grid", original)
    resumed = run_stage("landscape", spec, inputs, tmp_path / "resumed", device=cpu)
    a, b = (np.load(tmp_path / f / paths.LANDSCAPE_GRID) for f in ("whole", "resumed"))
    for key in ("values", "sharpness_values", "trajectory", "coords"):
        np.testing.assert_array_equal(a[key], b[key])
    assert resumed["sharpness"] == whole["sharpness"]
    assert resumed["hessian_top"] == whole["hessian_top"]
    # The trajectory: m ⊙ θp first, the final weights (the centre) last.
    assert len(a["trajectory"]) == whole["trajectory_points"] >= 4
    assert a["trajectory"][-1] == pytest.approx([0.0, 0.0], abs=1e-8)
    # What only resuming needed is gone once the grid is written.
    for name in (paths.TRAJECTORY_DIR, paths.LANDSCAPE_PARTIAL, paths.CHECKPOINT):
        assert not (tmp_path / "resumed" / name).exists()


def test_the_landscape_command_writes_the_figure_grid_and_metrics(small_ticket, tmp_path, capsys):
    from doublewin.cli import main

    weights, ticket = small_ticket
    out = tmp_path / "out"
    main(
        [
            "landscape", "--weights", str(weights), "--ticket", str(ticket), "--data", "digits",
            "--out", str(out), "--regime", "st", "--epochs", "1", "--grid", "3", "--images",
            "32", "--resolution", "8", "--hessian-iterations", "0", "--set",
            "transfer.data.fraction=0.1", "--set", "transfer.eval_attack.steps=1", "--json",
        ]
    )  # fmt: skip
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["sparsity"] == pytest.approx(0.75, abs=1e-3)
    assert (out / paths.LANDSCAPE_FIGURE).read_bytes()[:4] == b"\x89PNG"
    assert "hessian_top" not in metrics
    saved = json.loads((out / paths.METRICS).read_text())
    assert saved["spec"]["grid"] == 3 and saved["spec"]["plane"] == "random"


def test_an_even_grid_is_one_clear_error(small_ticket, tmp_path, capsys):
    from doublewin.cli import main

    weights, ticket = small_ticket
    with pytest.raises(SystemExit) as stopped:
        main(["landscape", "--weights", str(weights), "--data", "digits", "--out",
              str(tmp_path / "o"), "--grid", "4"])  # fmt: skip
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "grid" in err and "odd" in err and len(err.splitlines()) <= 2
    assert not (tmp_path / "o").exists()
