"""Every stage spec is built by one function (core/build.py): the training ε reaches the
validation and test attacks, every attack that runs gets the one default step, and the command
line, an experiment file and the Python API cannot disagree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from doublewin.core.build import build_spec, load_spec
from doublewin.core.eps import default_step
from doublewin.core.errors import UserError
from doublewin.core.hashing import canonical, spec_hash
from doublewin.core.specs import AttackSpec
from doublewin.experiments.plan.experiment import load_experiment
from doublewin.experiments.plan.grid import expand
from runs import doublewin

PRETRAIN = {"data": {"name": "chars"}, "runs": {"STD": {"train": {"regime": "std"}}}}


def _experiment(regimes: dict, eval_attack: dict | None = None, **more) -> dict:
    transfer = {"datasets": ["digits"], "regimes": regimes}
    if eval_attack is not None:
        transfer["eval_attack"] = eval_attack
    return {"pretrain": PRETRAIN, "transfer": transfer, **more}


def test_an_experiment_training_at_4_255_tests_ra_at_4_255_under_every_regime():
    experiment = load_experiment(
        _experiment({"st": {"epochs": 1}, "at": {"epochs": 1, "attack": {"eps": "4/255"}}})
    )
    transfers = [j.spec for j in expand(experiment) if j.stage == "transfer"]
    assert {s.train.regime for s in transfers} == {"std", "at"}
    for spec in transfers:
        assert spec.eval_attack.eps == pytest.approx(4 / 255)
        # PGD-20 at the default step: ε/4.
        assert spec.eval_attack.step == pytest.approx(1 / 255)
        assert spec.eval_attack.bn_mode == "eval" and spec.eval_attack.steps == 20
    at = experiment.regimes["at"]
    assert at.val_attack.eps == pytest.approx(4 / 255) and at.attack.step == pytest.approx(1 / 255)
    # The certificate and the report read the one test attack of the experiment.
    assert experiment.eval_attack.eps == pytest.approx(4 / 255)


def test_a_written_test_eps_is_kept_and_an_st_regime_that_validates_ra_follows_the_training_eps():
    kept = load_experiment(
        _experiment({"at": {"attack": {"eps": "4/255"}}}, {"eps": "8/255", "steps": 10})
    )
    assert kept.eval_attack.eps == pytest.approx(8 / 255) and kept.eval_attack.steps == 10
    st_ra = load_experiment(
        _experiment({"st": {"val_ra": True}, "at": {"attack": {"eps": "4/255"}}})
    )
    assert st_ra.regimes["st"].val_attack.eps == pytest.approx(4 / 255)


@pytest.mark.parametrize(
    "regimes",
    [
        {"st": {"attack": {"eps": "8/255"}}, "at": {"attack": {"eps": "4/255"}}},
        # An AT regime that writes no ε trains at the default, 8/255.
        {"st": {"attack": {"eps": "4/255"}}, "at": {"epochs": 1}},
    ],
)
def test_regimes_training_at_different_eps_without_a_test_eps_are_refused(regimes):
    with pytest.raises(UserError, match=r"transfer\.eval_attack\.eps") as caught:
        load_experiment(_experiment(regimes))
    message = str(caught.value)
    assert "\n" not in message and "8/255" in message and "4/255" in message
    assert "train at different ε" in message
    # With the test ε written, the choice is made and the experiment stands.
    load_experiment(_experiment(regimes, {"eps": "4/255"}))


def test_the_refusal_is_one_line_and_exit_code_2_from_the_command_line(tmp_path: Path):
    path = tmp_path / "experiment.yaml"
    regimes = {"st": {"attack": {"eps": "8/255"}}, "at": {"attack": {"eps": "4/255"}}}
    path.write_text(yaml.safe_dump(_experiment(regimes)))
    done = subprocess.run(
        doublewin("run", str(path), "--dry-run", "--out", str(tmp_path / "run")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "transfer.eval_attack.eps" in lines[0]


def test_the_default_step_walks_beyond_eps_and_is_2_255_at_8_255():
    assert default_step(8 / 255, 10) == 2 / 255  # bit for bit: old hashes stay
    assert default_step(8 / 255, 20) == 2 / 255
    for eps in (4 / 255, 16 / 255, 32 / 255, 0.5):
        for steps in (1, 2, 3, 7, 10, 20, 50):
            step = default_step(eps, steps)
            assert steps * step >= 2.5 * eps - 1e-12 or step == 1.0
            assert step <= 1.0
    # At ε = 32/255 PGD-10 reaches the boundary (2/255 walked 20/255 in all).
    assert 10 * default_step(32 / 255, 10) > 32 / 255


def test_every_attack_that_runs_takes_the_default_step_of_its_own_eps_and_steps():
    spec = load_spec("transfer", None, ["train.regime=at", "train.attack.eps=32/255"])
    assert spec.train.attack.step == pytest.approx(8 / 255)
    assert spec.train.val_attack.step == pytest.approx(8 / 255)
    assert spec.eval_attack.step == pytest.approx(8 / 255)
    few = load_spec("evaluate", {"attack": {"eps": "8/255", "steps": 5}})
    assert few.attack.step == pytest.approx(4 / 255)  # 5 steps × 4/255 = 2.5ε
    given = ["train.regime=at", "train.attack.eps=32/255", "train.attack.step=20/255"]
    written = load_spec("transfer", None, given)
    assert written.train.attack.step == pytest.approx(20 / 255)


def test_an_attack_that_never_runs_keeps_its_fields_and_its_hash():
    # FAT steps by fat_alpha × ε; std trains without an attack; ST validates SA only.
    fat = load_spec("pretrain", None, ["train.regime=fat", "train.attack.eps=4/255"])
    assert fat.train.attack.step == AttackSpec().step
    st = load_spec("transfer", None, ["train.attack.eps=4/255"])
    assert st.train.val_ra is False and st.train.val_attack.step == AttackSpec().step
    assert st.eval_attack.step == pytest.approx(1 / 255)  # the test attack runs


def test_a_spec_at_the_default_eps_keeps_its_canonical_form_and_hash():
    for stage in ("pretrain", "tickets", "transfer", "evaluate", "landscape"):
        plain = load_spec(stage)
        assert "step" not in str(canonical(plain))
    at = load_spec("transfer", None, ["train.regime=at"])
    assert canonical(at)["train"] == {"regime": "at"}
    # The hash of the AT transfer with every default, as stores made before hold it.
    assert spec_hash("transfer", at) == "208c6e846909595f"


def test_the_grid_and_the_command_line_build_the_same_transfer_spec():
    experiment = load_experiment(
        _experiment({"at": {"epochs": 2, "attack": {"eps": "4/255", "steps": 3}}}, seeds=[3])
    )
    job = next(j for j in expand(experiment) if j.stage == "transfer")
    fields = {
        "weights": job.spec.weights,
        "data": {"name": "digits", "fraction": 1.0},
        "train": {"regime": "at", "epochs": 2, "attack": {"eps": "4/255", "steps": 3}},
        "seed": 3,
    }
    assert build_spec("transfer", fields) == job.spec
    assert spec_hash("transfer", load_spec("transfer", fields)) == job.id.split("-", 1)[1]
