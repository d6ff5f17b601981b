"""The training engine on a tiny synthetic task: masks, schedules, resume, NaN, callbacks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from doublewin.core.errors import Diverged, UserError
from doublewin.core.hashing import canonical
from doublewin.core.specs import AttackSpec, TrainSpec
from doublewin.train import TrainResult, train
from doublewin.train.schedules import lr_multiplier, make_optimizer, stretched


class TinyLoader:
    """Deterministic per (seed, epoch) batches of a linearly separable 4-class image task."""

    def __init__(self, n: int = 96, batch_size: int = 16, seed: int = 0, train: bool = True):
        g = torch.Generator().manual_seed(1234)
        self.y = torch.arange(n) % 4
        base = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9], [0.9, 0.9, 0.1]])
        base = base.view(4, 3, 1, 1).expand(4, 3, 8, 8)
        self.x = (0.6 * base[self.y] + 0.4 * torch.rand(n, 3, 8, 8, generator=g)).clamp(0, 1)
        self.batch_size, self.seed, self.train, self.epoch = batch_size, seed, train, 0
        self.num_samples = n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self):
        order = torch.arange(self.num_samples)
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
            order = torch.randperm(self.num_samples, generator=g)
        for start in range(0, self.num_samples, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.x[idx], self.y[idx]


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def spec(**changes) -> TrainSpec:
    base = dict(
        regime="std",
        epochs=3,
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        val_attack=AttackSpec(eps=4 / 255, step=2 / 255, steps=2, bn_mode="eval"),
    )
    base.update(changes)
    return TrainSpec(**base)


def half_mask(model: nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return {
        name: torch.rand(p.shape, generator=g) > 0.5
        for name, p in model.named_parameters()
        if name.endswith("weight") and p.dim() == 4
    }


@pytest.mark.parametrize(
    "optimizer",
    [{}, {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.05}],
    ids=["sgd", "adamw"],
)
def test_pruned_weights_stay_exactly_zero_with_momentum_and_weight_decay(optimizer):
    model = tiny_net()
    mask = half_mask(model)
    result = train(
        model,
        spec(regime="at", attack=AttackSpec(eps=4 / 255, step=2 / 255, steps=2), **optimizer),
        TinyLoader(),
        TinyLoader(train=False),
        mask=mask,
    )
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        assert torch.all(params[name][~keep] == 0), name
        assert torch.all(params[name][keep] != 0), name  # kept weights did train
    for state in result.best_states.values():
        for name, keep in mask.items():
            assert torch.all(state[name][~keep] == 0)


def test_float_mask_is_accepted_like_a_bool_mask():
    a, b = tiny_net(), tiny_net()
    mask = half_mask(a)
    train(a, spec(epochs=1), TinyLoader(), mask=mask)
    train(b, spec(epochs=1), TinyLoader(), mask={k: v.float() for k, v in mask.items()})
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name


def test_mask_with_unknown_name_or_wrong_shape_is_a_user_error():
    model = tiny_net()
    with pytest.raises(UserError, match="does not have"):
        train(model, spec(epochs=1), TinyLoader(), mask={"nope.weight": torch.ones(3)})
    with pytest.raises(UserError, match="shape"):
        train(model, spec(epochs=1), TinyLoader(), mask={"0.weight": torch.ones(8, 3, 1, 1)})


def test_adamw_is_torchs_adamw_with_the_specs_lr_and_decoupled_weight_decay():
    sgd = make_optimizer(tiny_net(), spec())
    adamw = make_optimizer(tiny_net(), spec(optimizer="adamw", lr=0.003, weight_decay=0.05))
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.9
    assert type(adamw) is torch.optim.AdamW
    assert adamw.defaults["lr"] == 0.003 and adamw.defaults["weight_decay"] == 0.05
    # A field at its default stays out of the spec's identity: earlier hashes hold.
    assert "optimizer" not in canonical(spec()) and canonical(spec(optimizer="adamw"))["optimizer"]


def test_adamw_learns_the_tiny_task():
    model = tiny_net()
    result = train(
        model, spec(epochs=4, optimizer="adamw", lr=0.01), TinyLoader(), TinyLoader(train=False)
    )
    assert result.metrics["best_val_sa"] >= 90.0


def test_std_training_learns_the_tiny_task():
    model = tiny_net()
    result = train(model, spec(epochs=4), TinyLoader(), TinyLoader(train=False))
    assert isinstance(result, TrainResult)
    assert result.metrics["best_val_sa"] >= 90.0
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.metrics["epochs_run"] == 4 and result.metrics["steps"] == 4 * 6


def test_best_states_are_the_weights_of_the_best_validation_epochs():
    model = tiny_net()
    result = train(model, spec(epochs=3), TinyLoader(), TinyLoader(train=False))
    best_sa = max(h["val_sa"] for h in result.history)
    assert result.metrics["best_val_sa"] == best_sa
    epoch = result.metrics["best_val_sa_epoch"]
    assert result.history[epoch - 1]["val_sa"] == best_sa
    from doublewin.train import evaluate

    check = tiny_net(1)
    check.load_state_dict(result.best_states["sa"])
    assert evaluate(check, TinyLoader(train=False))["sa"] == best_sa


class StopAfter:
    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_step_end(self, state) -> None:
        pass

    def on_epoch_end(self, state) -> None:
        if state.epoch + 1 == self.epochs:
            raise KeyboardInterrupt


@pytest.mark.parametrize("regime", ["at", "fat"])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, regime):
    s = spec(
        regime=regime,
        epochs=3,
        schedule="cosine",
        warmup_epochs=0.5,
        attack=AttackSpec(eps=8 / 255, step=2 / 255, steps=2),
    )
    whole = tiny_net()
    train(
        whole,
        s,
        TinyLoader(),
        TinyLoader(train=False),
        mask=half_mask(whole),
        workdir=tmp_path / "a",
        seed=3,
    )
    parts = tiny_net()
    with pytest.raises(KeyboardInterrupt):
        train(
            parts,
            s,
            TinyLoader(),
            TinyLoader(train=False),
            mask=half_mask(parts),
            workdir=tmp_path / "b",
            seed=3,
            callbacks=[StopAfter(2)],
        )
    resumed = tiny_net(5)  # different init: everything must come from the checkpoint
    result = train(
        resumed,
        s,
        TinyLoader(),
        TinyLoader(train=False),
        mask=half_mask(resumed),
        workdir=tmp_path / "b",
        seed=3,
    )
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert result.metrics["epochs_run"] == 3 and len(result.history) == 3


def test_a_finished_checkpoint_is_returned_without_training_again(tmp_path):
    model = tiny_net()
    first = train(model, spec(epochs=2), TinyLoader(), TinyLoader(train=False), workdir=tmp_path)
    again = tiny_net(9)
    second = train(again, spec(epochs=2), TinyLoader(), TinyLoader(train=False), workdir=tmp_path)
    assert second.history == first.history
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_checkpoint_of_a_different_spec_is_a_user_error(tmp_path):
    train(tiny_net(), spec(epochs=1), TinyLoader(), workdir=tmp_path)
    with pytest.raises(UserError, match="different run"):
        train(tiny_net(), spec(epochs=1, lr=0.01), TinyLoader(), workdir=tmp_path)


class PoisonedLoader(TinyLoader):
    """Yields a NaN pixel in the third batch of the second epoch (global step 9)."""

    def __iter__(self):
        for index, (x, y) in enumerate(super().__iter__()):
            if self.epoch == 1 and index == 2:
                x = x.clone()
                x[0, 0, 0, 0] = float("nan")
            yield x, y


def test_nan_loss_is_bad_input_naming_epoch_and_step_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(Diverged, match=r"NaN in epoch 2 at step 9 .*lower train.lr"):
        train(tiny_net(), spec(epochs=3), PoisonedLoader(), workdir=tmp_path)
    from doublewin.train.checkpoint import load_checkpoint

    # The epoch-1 checkpoint is intact and nothing half-written is left behind.
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_step_callbacks_see_every_step_and_can_capture_weights_for_rewinding():
    captured = {}

    class Rewind:
        def on_step_end(self, state) -> None:
            if state.step == 5:
                captured.update({k: v.clone() for k, v in state.model.state_dict().items()})

        def on_epoch_end(self, state) -> None:
            pass

    model = tiny_net()
    train(model, spec(epochs=1), TinyLoader(), callbacks=[Rewind()])
    assert captured and not torch.equal(captured["0.weight"], model.state_dict()["0.weight"])


def test_training_never_leaves_parameter_grads_from_the_attack_in_eval_mode_model():
    model = tiny_net()
    s = spec(
        regime="at", epochs=1, attack=AttackSpec(eps=8 / 255, step=2 / 255, steps=2, bn_mode="eval")
    )
    train(model, s, TinyLoader())
    # Eval-mode attacks must not move BatchNorm running stats beyond the training forwards:
    # the number of batches tracked equals the number of training steps.
    assert int(model[1].num_batches_tracked) == len(TinyLoader())


def test_train_mode_attack_updates_batchnorm_statistics_during_the_attack():
    model = tiny_net()
    s = spec(
        regime="at",
        epochs=1,
        attack=AttackSpec(eps=8 / 255, step=2 / 255, steps=2, bn_mode="train"),
    )
    train(model, s, TinyLoader())
    # Official recipe: 2 attack forwards + 1 training forward per step.
    assert int(model[1].num_batches_tracked) == 3 * len(TinyLoader())


@pytest.mark.parametrize(
    ("schedule", "checks"),
    [
        ("multistep", {0: 1.0, 19: 1.0, 20: 0.1, 39: 0.1, 40: 0.01}),
        ("cosine", {0: 1.0, 50: 0.5}),
        ("constant", {0: 1.0, 99: 1.0}),
        ("cyclic", {39: 1.0, 99: 0.0}),
    ],
)
def test_lr_schedules_follow_their_definition_per_step(schedule, checks):
    milestones = (2, 4) if schedule == "multistep" else ()  # other schedules refuse them
    s = TrainSpec(epochs=10, schedule=schedule, milestones=milestones, gamma=0.1)
    f = lr_multiplier(s, steps_per_epoch=10)
    for step, value in checks.items():
        assert f(step) == pytest.approx(value, abs=1e-9), step


def test_fractional_warmup_ramps_linearly_over_its_steps():
    f = lr_multiplier(TrainSpec(epochs=4, schedule="constant", warmup_epochs=0.5), 10)
    assert [f(i) for i in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])


def test_min_steps_stretches_short_runs_and_their_schedule_and_leaves_long_runs_alone():
    s = TrainSpec(epochs=2, schedule="multistep", milestones=(1,), warmup_epochs=0.5, min_steps=30)
    long = stretched(s, steps_per_epoch=20)
    assert long == s  # 40 steps already reach 30
    short = stretched(s, steps_per_epoch=4)  # 8 steps: 8 whole epochs reach 32
    assert (short.epochs, short.milestones, short.warmup_epochs) == (8, (4,), 2.0)
    assert short.val_every == 4  # as many validations as before
    assert stretched(TrainSpec(epochs=2), 1) == TrainSpec(epochs=2)  # 0 = off


def test_training_with_min_steps_takes_at_least_that_many_steps():
    loader = TinyLoader(n=32, batch_size=16)  # 2 steps per epoch
    result = train(tiny_net(), spec(epochs=1, min_steps=7), loader)
    assert result.metrics["steps"] == 8 and result.metrics["epochs_run"] == 4


class Sabotage:
    """Flips the classifier at the last step of epoch 2 (a collapse the guard must see) and
    records the weights at the end of epoch 1."""

    def __init__(self):
        self.epoch1: dict[str, torch.Tensor] = {}

    def on_step_end(self, state) -> None:
        if state.step == 2 * state.steps_per_epoch:
            with torch.no_grad():
                state.model[-1].weight.neg_()

    def on_epoch_end(self, state) -> None:
        if state.epoch == 0:
            self.epoch1 = {k: v.clone() for k, v in state.model.state_dict().items()}


def test_fat_guard_restores_the_last_good_weights_and_stops_on_a_collapse(tmp_path):
    s = spec(regime="fat", epochs=4, attack=AttackSpec(eps=2 / 255), lr=0.02)
    sabotage = Sabotage()
    model = tiny_net()
    result = train(
        model, s, TinyLoader(), TinyLoader(train=False), callbacks=[sabotage], workdir=tmp_path
    )
    assert result.metrics["collapsed"] is True and result.metrics["collapse_epoch"] == 2
    assert result.metrics["epochs_run"] == 2
    assert result.history[0]["guard_ra"] >= 10 and result.history[1]["guard_ra"] < 5
    for name, value in model.state_dict().items():
        assert torch.equal(value, sabotage.epoch1[name]), name
    # The collapsed epoch is never a best state.
    assert result.metrics["best_val_sa_epoch"] == 1
    # Rerunning returns the stopped run instead of training on.
    again = train(tiny_net(), s, TinyLoader(), TinyLoader(train=False), workdir=tmp_path)
    assert again.metrics["collapsed"] is True and again.metrics["epochs_run"] == 2


def test_fat_guard_is_off_for_other_regimes_and_when_disabled():
    s = spec(regime="fat", epochs=3, attack=AttackSpec(eps=2 / 255), lr=0.02, overfit_guard=False)
    result = train(tiny_net(), s, TinyLoader(), TinyLoader(train=False), callbacks=[Sabotage()])
    assert result.metrics["collapsed"] is False and result.metrics["epochs_run"] == 3
    assert "guard_ra" not in result.history[0]


def test_masks_are_enforced_without_any_hook_on_the_model():
    model = tiny_net()
    train(model, spec(epochs=1), TinyLoader(), mask=half_mask(model))
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert all(not name.endswith("_orig") for name, _ in model.named_parameters())


def test_epoch_records_go_to_the_jsonl_log_with_validation_numbers(tmp_path):
    from doublewin.core.logs import JsonlLog, read_jsonl

    log = JsonlLog(tmp_path / "log.jsonl", tensorboard=False)
    train(tiny_net(), spec(epochs=2), TinyLoader(), TinyLoader(train=False), log=log, log_every=2)
    records = read_jsonl(tmp_path / "log.jsonl")
    epochs = [r for r in records if r["event"] == "epoch"]
    steps = [r for r in records if r["event"] == "step"]
    assert [r["epoch"] for r in epochs] == [1, 2] and [r["step"] for r in epochs] == [6, 12]
    assert all("val_sa" in r and "val_ra" in r and "train_loss" in r for r in epochs)
    assert [r["step"] for r in steps] == [2, 4, 6, 8, 10, 12]


def test_progress_task_advances_to_the_total_number_of_steps():
    class Recorder:
        def __init__(self):
            self.total, self.done, self.closed = None, 0, False

        def task(self, description, total):
            self.total = total
            return self

        def advance(self, n=1, **metrics):
            self.done += n

        def close(self):
            self.closed = True

        def note(self, message):
            pass

    recorder = Recorder()
    train(tiny_net(), spec(epochs=2), TinyLoader(), progress=recorder, log_every=4)
    assert recorder.total == 12 and recorder.done == 12 and recorder.closed


def test_batchnorm_re_estimation_fits_the_statistics_to_the_masked_network():
    """Running statistics become exact averages over the batches; weights, mode and each
    layer's momentum are left as found."""
    from doublewin.train.batchnorm import recalibrate_bn

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4))
    bn = net[1]
    bn.running_mean.fill_(50.0)  # stale statistics of another network
    bn.running_var.fill_(9.0)
    bn.momentum = 0.3
    weights = net[0].weight.detach().clone()
    batches = [(torch.rand(8, 3, 6, 6), torch.zeros(8)) for _ in range(4)]
    net.eval()
    assert recalibrate_bn(net, batches, 3) == 3
    with torch.no_grad():
        features = [net[0](x) for x, _ in batches[:3]]
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in features])
    torch.testing.assert_close(bn.running_mean, means.mean(0))
    assert not net.training and bn.momentum == 0.3
    assert torch.equal(net[0].weight, weights)


def test_training_runs_in_channels_last_and_hands_back_the_ordinary_layout():
    seen = []

    class Layout:
        def on_step_end(self, state) -> None:
            weight = state.model[0].weight
            seen.append(weight.is_contiguous(memory_format=torch.channels_last))

        def on_epoch_end(self, state) -> None:
            pass

    model = tiny_net()
    result = train(model, spec(epochs=1), TinyLoader(), mask=half_mask(model), callbacks=[Layout()])
    assert seen and all(seen)
    assert model[0].weight.is_contiguous() and model[3].weight.is_contiguous()
    assert all(t.is_contiguous() for s in result.best_states.values() for t in s.values())


def test_channels_last_training_matches_the_contiguous_layout():
    # Standard training: the two layouts agree up to float rounding. (Under AT the sign of
    # an input gradient near zero can flip with the rounding, so runs drift apart like two
    # seeds; the test attack's agreement is checked in tests/test_evaluate.py.)
    models = []
    for channels_last in (False, True):
        model = tiny_net()
        train(
            model, spec(epochs=2), TinyLoader(), mask=half_mask(model), channels_last=channels_last
        )
        models.append(model.state_dict())
    for name, value in models[0].items():
        scale = value.float().abs().max().clamp_min(1e-6)
        assert (models[1][name].float() - value.float()).abs().max() <= 1e-4 * scale, name
