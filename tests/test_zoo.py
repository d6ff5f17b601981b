"""Any model: timm and torchvision architectures by name through the whole pipeline, the
RobustBench architectures importing published-layout files to the source logits, Hugging Face
encoders with BERT-Tickets' scope, and one clear line for each bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from doublewin.core import paths
from doublewin.core.build import load_spec
from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope
from doublewin.models import build_model, head_name, load_model
from doublewin.stages import Inputs, run_stage
from doublewin.tickets import Mask, load_ticket
from doublewin.tickets.mask import prunable_parameters
from test_bad_input import fails

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "size"),
    [
        ("timm/resnet18", 32),
        ("torchvision/mobilenet_v3_small", 32),
        ("timm/vit_tiny_patch16_224:img_size=16,patch_size=4,depth=2", 16),
    ],
)
def test_a_zoo_architecture_goes_through_imp_at_transfer_and_the_verdict(arch, size, tmp_path, cli):
    started = time.monotonic()
    spec = load_spec("pretrain", {"arch": arch, "data": {"name": "digits"}, "kind": "control"})
    run_stage("pretrain", spec, Inputs(), tmp_path / "theta", device=torch.device("cpu"))
    weights = tmp_path / "theta" / paths.WEIGHTS
    code, _, err = cli(
        "find-tickets", "--weights", weights, "--method", "imp", "--rate", "0.5", "--rounds", "1",
        "--data", "digits", "--out", tmp_path / "t", "--json",
        "--set", "data.fraction=0.1", "--set", f"data.resolution={size}", "--set", "train.epochs=1",
        "--set", "data.augment=none",
    )  # fmt: skip
    assert code == 0, err
    ticket = tmp_path / "t" / "ticket-0.500000.safetensors"
    masked = set(load_ticket(ticket).mask)
    if "vit" in arch:  # BERT-Tickets' set: attention and MLP, no patch embedding, no head
        assert masked and all(n.startswith("blocks.") for n in masked)
        assert any(".attn.qkv." in n for n in masked) and any(".mlp.fc1." in n for n in masked)
    rows = []
    for name, extra in (("dense", []), ("ticket", ["--ticket", ticket])):
        for seed in (0, 1):
            out = tmp_path / f"{name}-{seed}"
            code, _, err = cli(
                "transfer", "--weights", weights, *extra, "--data", "digits", "--regime", "at",
                "--epochs", "1", "--fraction", "0.2", "--seed", seed, "--resolution", size,
                "--out", out, "--save-models", "none", "--json",
                "--set", "data.test_limit=64", "--set", "eval_attack.steps=2",
                "--set", "train.attack.steps=1", "--set", "data.augment=none",
            )  # fmt: skip
            assert code == 0, err
            m = json.loads((out / "metrics.json").read_text())
            rows.append({"pretraining": "P", "dataset": "digits", "fraction": 0.2,
                         "method": "dense" if name == "dense" else "imp", "imp_regime": "std",
                         "sparsity": 0.0 if name == "dense" else 0.5, "regime": "at", "seed": seed,
                         **{k: m[k] for k in ("sa_best_sa", "ra_best_sa", "sa_best_ra", "ra_best_ra")}})  # fmt: skip
    import doublewin

    (verdict,) = doublewin.judge(rows, {"st_metrics": ["sa"]}).verdicts
    assert verdict.comparison("at", "ra").seeds == (0, 1)
    assert time.monotonic() - started <= 60 * 1.5  # 60 s on 2 cores, with slack for CI


def _robustbench_reference(arch: str) -> torch.nn.Module:
    """doublewin's built-in RobustBench architectures, as RobustBench's own classes build them
    (seeded weights, BatchNorm statistics far from their defaults)."""
    from doublewin.models.robustbench import model_zoo

    model_zoo()  # RobustBench's package, importable
    from robustbench.model_zoo.architectures.resnet import PreActBlock, PreActResNet
    from robustbench.model_zoo.architectures.wide_resnet import WideResNet

    torch.manual_seed(0)
    if arch == "wrn28_10":
        net = WideResNet(depth=28, widen_factor=10, sub_block1=True)
    else:  # fast_adversarial's PreAct ResNet-18: BatchNorm before the head, activated shortcut
        net = PreActResNet(PreActBlock, [2, 2, 2, 2], bn_before_fc=True, out_shortcut=True)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("running_mean"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
    return net.eval()


@pytest.mark.parametrize("arch", ["wrn28_10", "preact_resnet18"])
def test_robustbench_files_import_and_reproduce_the_source_logits(arch, tmp_path, cli):
    net = _robustbench_reference(arch)
    state = net.state_dict()
    if arch == "wrn28_10":
        # A TRADES-era file: DataParallel's prefix, its unused sub_block1, no normalization.
        saved = {"state_dict": {f"module.{k}": v for k, v in state.items()}}
        mean, std = torch.zeros(3), torch.ones(3)
    else:
        # A model normalizing inside with mu / sigma buffers.
        mean, std = torch.tensor([0.49, 0.48, 0.45]), torch.tensor([0.25, 0.24, 0.26])
        saved = {**state, "mu": mean.view(1, 3, 1, 1), "sigma": std.view(1, 3, 1, 1)}
    source = tmp_path / "robustbench.pt"
    torch.save(saved, source)
    out = tmp_path / "w.safetensors"
    options = ["--format", "robustbench", "--arch", arch, "--out", out, "--json"]
    code, _, err = cli("import-weights", source, *options)
    assert code == 0, err
    model, meta = load_model(out)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = net((x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
        # Relative to the logits' size: float32 round-off differs between CPUs (AVX2, AVX-512).
        assert (model.eval()(x) - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert meta.source == "robustbench" and meta.dataset == "cifar10"


def test_wrn_50_2_is_torchvisions_wide_resnet():
    import torchvision

    ours = build_model("wide_resnet50_2", 1000).state_dict()
    theirs = torchvision.models.wide_resnet50_2().state_dict()
    assert list(ours) == list(theirs) and all(ours[k].shape == theirs[k].shape for k in ours)


# ---------------------------------------------------------------- Hugging Face


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("bert")
    words = ["good", "bad", "movie", "great", "awful", "film", "fun", "dull", "plot", "a"]
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n"
    )
    config = transformers.BertConfig(vocab_size=15, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=32)  # fmt: skip
    torch.manual_seed(0)
    transformers.BertForMaskedLM(config).save_pretrained(folder, safe_serialization=True)
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def _tsv(path: Path, rows: int, seed: int) -> Path:
    g = torch.Generator().manual_seed(seed)
    lines = ["sentence\tlabel"]
    for _ in range(rows):
        label = int(torch.randint(2, (1,), generator=g))
        word = (
            ["bad", "awful", "dull"][int(torch.randint(3, (1,), generator=g))]
            if label == 0
            else (["good", "great", "fun"][int(torch.randint(3, (1,), generator=g))])
        )
        lines.append(f"a {word} movie\t{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_tiny_bert_imports_prunes_its_encoder_only_and_fine_tunes_on_a_tsv(
    tiny_bert, tmp_path, cli
):
    import doublewin
    from doublewin.models.hf import read_glue_tsv

    out = tmp_path / "bert.safetensors"
    assert (
        cli("import-weights", tiny_bert, "--format", "huggingface", "--out", out, "--json")[0] == 0
    )
    model, meta = load_model(out)
    assert meta.arch == "huggingface/bert" and head_name(model) == "classifier"
    train = read_glue_tsv(_tsv(tmp_path / "train.tsv", 64, 0), tiny_bert, max_length=8)
    test = read_glue_tsv(_tsv(tmp_path / "dev.tsv", 32, 1), tiny_bert, max_length=8)
    (ticket,) = doublewin.find_tickets(model, train, method="imp", sparsities=[0.5], prune_rate=0.5,
                                       train={"epochs": 1, "batch_size": 16, "lr": 0.01})  # fmt: skip
    names = sorted(ticket.mask)
    assert (
        len(names) == 2 * 6
    )  # per layer: query, key, value, attention output, intermediate, output
    assert all(n.startswith("bert.encoder.layer.") and n.endswith(".weight") for n in names)
    for kind in ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense"):  # fmt: skip
        assert any(f".{kind}.weight" in n for n in names), kind
    run = doublewin.transfer(
        model, ticket, train, test, regime="st", epochs=3, lr=0.05, batch_size=16
    )
    assert run.metrics["ra_best_sa"] is None and 0 <= run.metrics["sa_best_sa"] <= 100


# ---------------------------------------------------------------- bad input


def test_an_unknown_zoo_name_lists_close_matches(tmp_path, capsys):
    fails(["pretrain", "--arch", "timm/resnet181", "--data", "digits", "--out", tmp_path / "w.safetensors"],
          capsys, names=("timm/resnet181", "timm/resnet18"), watch=tmp_path)  # fmt: skip
    fails(["pretrain", "--arch", "torchvision/mobilnet_v3_small", "--data", "digits",
           "--out", tmp_path / "w.safetensors"], capsys,
          names=("torchvision/mobilenet_v3_small",), watch=tmp_path)  # fmt: skip


def test_a_model_without_a_findable_head_names_head():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)
            self.score = torch.nn.Linear(4, 2)

    with pytest.raises(UserError, match="head="):
        head_name(Odd())
    assert head_name(Odd(), "score") == "score"


def test_a_scope_that_matches_nothing_is_refused():
    model = build_model("resnet8", 10)
    with pytest.raises(UserError, match="matches no prunable layer"):
        Mask.dense(model, MaskScope(exclude=("nonexistent.*",)))
    with pytest.raises(UserError, match="leaves no parameter"):
        prunable_parameters(model, MaskScope(layers="transformer"))


def test_a_robustbench_file_for_another_architecture_is_one_line(tmp_path, capsys):
    source = tmp_path / "preact.pt"
    torch.save(_robustbench_reference("preact_resnet18").state_dict(), source)
    fails(["import-weights", source, "--format", "robustbench", "--arch", "wrn28_10",
           "--out", tmp_path / "w.safetensors"], capsys, names=("preact.pt",), watch=tmp_path)  # fmt: skip


def test_a_huggingface_checkpoint_of_another_family_is_one_line(tmp_path, capsys):
    folder = tmp_path / "gpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    fails(["import-weights", folder, "--format", "huggingface", "--out", tmp_path / "w.safetensors"],
          capsys, names=("gpt2", "bert"), watch=tmp_path)  # fmt: skip
