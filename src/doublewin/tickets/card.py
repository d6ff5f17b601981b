"""The Hugging Face model card of a certified export: ``README.md`` with YAML front matter
(``library_name``, ``tags``, ``license`` when given, ``model-index``) and a body that says what
the ticket is, its per-seed results and intervals, how to load it in plain torch and how to
verify it. Everything in it is read from the certificate, so `doublewin verify` can check
that the card's results are the certificate's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from doublewin.core import paths
from doublewin.core.parsing import pixel_text
from doublewin.core.results import METRICS, REGIMES

LIBRARY = "doublewin"
TAGS = ("doublewin", "lottery-ticket", "pruning", "sparse", "adversarial-robustness")
TASK = {"type": "image-classification", "name": "Image Classification"}
FRONT = "---"
REGIME_NAMES = {"st": "ST", "at": "AT"}
KINDS = {
    "std": "standard pre-training",
    "fat": "fast adversarial pre-training",
    "at": "adversarial pre-training",
    "control": "the no-pre-training control: not trained",
    "imported": "imported weights",
}
CHECKPOINTS = {
    "per-metric": "SA at best val SA, RA at best val RA",
    "best-sa": "best val SA",
    "best-ra": "best val RA",
}


def attack_args(attack: Mapping[str, Any]) -> dict[str, Any]:
    """The test attack as ``model-index`` metric args."""
    return {
        "attack": f"PGD-{attack['steps']}",
        "norm": "Linf" if attack["norm"] == "linf" else "L2",
        "epsilon": attack["eps_text"],
        "step": pixel_text(attack["step"], attack["norm"]),
        "steps": attack["steps"],
        "restarts": attack["restarts"],
        "loss": attack["loss"],
        "random_start": attack["random_start"],
    }


def model_index(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The card's ``model-index``: the exported model's own evaluation, then (for a ticket)
    the ticket's mean SA and RA after ST and AT transfer."""
    attack, evaluation = document["attack"], document["evaluation"]
    metrics = [
        _metric("accuracy", "standard accuracy (SA, %)", evaluation["sa"]),
        _metric(
            "robust_accuracy",
            f"robust accuracy (RA, %), PGD-{attack['steps']}",
            evaluation["ra"],
            attack_args(attack),
        ),
    ]
    if evaluation["autoattack_ra"] is not None:
        args = {
            "attack": "AutoAttack (standard)",
            "norm": attack_args(attack)["norm"],
            "epsilon": attack["eps_text"],
            "points": evaluation["autoattack_points"],
        }
        metrics.append(
            _metric(
                "robust_accuracy",
                "robust accuracy (RA, %), AutoAttack",
                evaluation["autoattack_ra"],
                args,
            )
        )
    results = [
        {"task": dict(TASK), "dataset": _dataset(evaluation["data"]["name"]), "metrics": metrics}
    ]
    if document["kind"] == "ticket":
        results += [_transfer_result(document, regime) for regime in REGIMES]
    return [{"name": document["name"], "results": results}]


def _transfer_result(document: Mapping[str, Any], regime: str) -> dict[str, Any]:
    claim = document["claim"]
    comparisons = claim["regimes"][regime]["comparisons"]
    metrics = []
    for metric in METRICS:
        c = comparisons[metric]
        if c["ticket_mean"] is None:
            continue
        args: dict[str, Any] = {
            "regime": REGIME_NAMES[regime],
            "seeds": c["seeds"],
            "checkpoint": CHECKPOINTS[claim["rule"]["selection"]],
        }
        if metric == "ra":
            args.update(attack_args(document["attack"]))
        label = "standard" if metric == "sa" else "robust"
        metrics.append(
            _metric(
                "accuracy" if metric == "sa" else "robust_accuracy",
                f"{label} accuracy ({metric.upper()}, %) after {REGIME_NAMES[regime]} transfer, "
                f"mean of {len(c['seeds'])} seed(s)",
                c["ticket_mean"],
                args,
            )
        )
    dataset = _dataset(claim["dataset"])
    dataset["args"] = {"fraction": claim["fraction"]}
    task = {"type": TASK["type"], "name": f"{REGIME_NAMES[regime]} transfer"}
    return {"task": task, "dataset": dataset, "metrics": metrics}


def _metric(kind: str, name: str, value: float, args: Mapping[str, Any] | None = None) -> dict:
    out: dict[str, Any] = {"type": kind, "name": name, "value": round(float(value), 2)}
    if args:
        out["args"] = dict(args)
    return out


def _dataset(name: str) -> dict[str, Any]:
    return {"name": name, "type": name, "split": "test"}


def front_matter(text: str) -> dict[str, Any] | None:
    """The YAML front matter of a card's text (None when it has none or it is not YAML)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != FRONT:
        return None
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == FRONT)
        data = yaml.safe_load("\n".join(lines[1:end]))
    except (StopIteration, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def model_card(document: Mapping[str, Any], *, license: str | None = None) -> str:
    """The card's text: front matter, then the body."""
    front: dict[str, Any] = {"library_name": LIBRARY}
    if license:
        front["license"] = license
    front["pipeline_tag"] = TASK["type"]
    front["tags"] = [*TAGS, f"sparsity-{document['ticket']['pattern']}"]
    front["model-index"] = model_index(document)
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    return f"{FRONT}\n{header}{FRONT}\n\n" + "\n".join(_body(document)) + "\n"


def seed_rows(document: Mapping[str, Any]) -> list[list[str]]:
    """Per regime and seed: dense and ticket SA and RA (points; — where not run)."""
    rows = []
    for regime in REGIMES:
        for record in document["claim"]["regimes"][regime]["seeds"]:
            cells = [
                _points(record[side][metric]) for metric in METRICS for side in ("dense", "ticket")
            ]
            rows.append([REGIME_NAMES[regime], str(record["seed"]), *cells])
    return rows


SEED_HEADER = ["regime", "seed", "dense SA", "ticket SA", "dense RA", "ticket RA"]
INTERVAL_HEADER = ["comparison", "dense", "ticket", "ticket − dense", "δ", "outcome"]


def interval_rows(document: Mapping[str, Any]) -> list[list[str]]:
    """Per regime and metric: the means, the ticket − dense interval, δ and the outcome."""
    rows = []
    for regime in REGIMES:
        for metric in METRICS:
            c = document["claim"]["regimes"][regime]["comparisons"][metric]
            d = c["difference"]
            interval = "—" if d is None else _interval(d)
            outcome = (c["outcome"] or "not compared") + ("" if c["counted"] else " (not counted)")
            rows.append(
                [
                    f"{REGIME_NAMES[regime]} {metric.upper()}",
                    _points(c["dense_mean"]),
                    _points(c["ticket_mean"]),
                    interval,
                    _points(c["delta"]),
                    outcome,
                ]
            )
    return rows


def _interval(d: Mapping[str, Any]) -> str:
    if d["low"] is None or d["high"] is None:
        return f"{d['mean']:+.2f} (no interval)"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def _points(value: Any) -> str:
    return "—" if value is None else f"{float(value):.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _body(document: Mapping[str, Any]) -> list[str]:
    ticket, claim, pre = document["ticket"], document["claim"], document["pretraining"]
    attack, evaluation = document["attack"], document["evaluation"]
    verdict = claim["verdict"] or "undetermined"
    tuned = document["fine_tuned"]
    what = (
        f"A ticket of `{ticket['architecture']}` ({ticket['pattern']} sparsity) at "
        f"**{ticket['sparsity']:.2%}** sparsity ({ticket['kept_weights']:,} of "
        f"{ticket['prunable_weights']:,} prunable weights kept), found by `{ticket['method']}` on "
        f"the pre-training `{pre['label']}` ({KINDS.get(pre['kind'], pre['kind'])}, source data "
        f"`{pre['dataset']}`)."
    )
    if tuned is not None:
        what += (
            f" These are its weights after {REGIME_NAMES[tuned['regime']]} transfer to "
            f"`{claim['dataset']}` with seed {tuned['seed']} (checkpoint {tuned['checkpoint']})."
        )
    else:
        what += " These are its weights m ⊙ θp, before any transfer."
    certified = "it is certified double-win" if claim["certified"] else "it is NOT certified"
    lines = [f"# {document['name']}", "", what, "", "## The claim", ""]
    lines += [
        f"Transferred to `{claim['dataset']}` with {claim['fraction']:.0%} of its training data, "
        f"the ticket is **{verdict}** against the dense model: {certified}.",
        "",
        claim["rule_text"],
        "",
        f"Test attack: PGD-{attack['steps']}, {attack_args(attack)['norm']}, "
        f"ε = {attack['eps_text']}, step {pixel_text(attack['step'], attack['norm'])}, "
        f"{attack['restarts']} restart(s), {attack['loss']} loss, on {claim['test_images']} test "
        "images, model in eval mode.",
        "",
        "### Per seed (points)",
        "",
        *_table(SEED_HEADER, seed_rows(document)),
        "",
        "### Intervals (ticket − dense, points)",
        "",
        *_table(INTERVAL_HEADER, interval_rows(document)),
        "",
        "## This model's own evaluation",
        "",
        f"On the first {evaluation['test_images']} test images of `{evaluation['data']['name']}`:"
        f" SA {evaluation['sa']:.2f}, RA {evaluation['ra']:.2f} (PGD-{attack['steps']})"
        + (
            f", AutoAttack RA {evaluation['autoattack_ra']:.2f} on {evaluation['autoattack_points']}"
            " points"
            if evaluation["autoattack_ra"] is not None
            else ""
        )
        + ".",
    ]
    return lines + _loading(document) + _verifying(document)


def _loading(document: Mapping[str, Any]) -> list[str]:
    size = document["weights"]["input_size"]
    lines = ["", "## Load it in plain torch", ""]
    if paths.EXPORT_MODULE not in document["hashes"]["files"]:
        return lines + [
            "This architecture is built by doublewin (`pip install doublewin`):",
            "",
            "```python",
            "from doublewin.models import load_model",
            "",
            f'model, meta = load_model("{paths.WEIGHTS}")',
            "```",
        ]
    return lines + [
        "Needs only `torch` and `safetensors`; run it in this folder:",
        "",
        "```python",
        "import json",
        "",
        "import torch",
        "from safetensors.torch import load_file",
        "",
        "from model import SlimResNet",
        "",
        f'net = SlimResNet(json.load(open("{paths.EXPORT_ARCHITECTURE}")))',
        f'net.load_state_dict(load_file("{paths.WEIGHTS}"))',
        "net.eval()",
        f"images = torch.rand(4, 3, {size}, {size})  # pixels in [0, 1]; the model normalizes",
        "logits = net(images)",
        "```",
    ]


def _verifying(document: Mapping[str, Any]) -> list[str]:
    claim, evaluation = document["claim"], document["evaluation"]
    lines = ["", "## Verify it", "", "```bash", "pip install doublewin"]
    lines.append(f"doublewin verify . --data {evaluation['data']['name']}")
    if document["kind"] == "ticket":
        lines.append(f"doublewin verify . --data {claim['dataset']} --transfer")
    return lines + [
        "```",
        "",
        "It checks every file's hash against `certificate.json` (whose SHA-256 the weights' "
        "safetensors metadata records), rebuilds the model from this folder and measures it "
        "again"
        + (
            ", and with `--transfer` reruns the ST and AT transfers."
            if document["kind"] == "ticket"
            else "."
        )
        + " Nothing here is uploaded by doublewin; the folder can be uploaded to the Hub as it is.",
    ]
