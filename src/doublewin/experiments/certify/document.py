"""The parts of a certificate (docs/certificate.md), each from the object that decides it:
the ticket file, the export, the evaluation, the pre-training, the run's verdict."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doublewin.analysis.report.rule import verdict_rule
from doublewin.analysis.summaries import ladder_label
from doublewin.analysis.verdict.claim import claim_record
from doublewin.core.parsing import pixel_text
from doublewin.core.provenance import package_version, provenance
from doublewin.core.specs import AttackSpec, EvaluateSpec
from doublewin.core.typed import to_dict
from doublewin.data import test_split
from doublewin.experiments.certify.named import NamedTicket
from doublewin.models import WeightsMeta
from doublewin.stages.evaluate import Measured
from doublewin.tickets.certificate import FORMAT, VERSION, file_hashes, pack_points
from doublewin.tickets.export import Exported
from doublewin.tickets.ticket import TicketInfo

THREAT_MODELS = {"linf": "Linf", "l2": "L2"}
AUTOATTACK_LIBRARY = "torchattacks"


def claim_block(named: NamedTicket, data_root: str | Path | None) -> dict[str, Any]:
    """The run's claim about the ticket: the verdict data, the downstream setting, its test
    split's hash and the ticket's transfer spec of each regime (without the seed)."""
    record = claim_record(named.rows, named.key, named.experiment.verdict)
    spec = named.transfer_spec("at")
    images, _ = test_split(spec.data, data_root)
    transfer = {}
    for regime in ("st", "at"):
        fields = to_dict(named.transfer_spec(regime))
        fields.pop("seed")
        transfer[regime] = fields
    return {
        "dataset": named.key.dataset,
        "fraction": named.key.fraction,
        "test_images": len(images),
        "test_split_hash": images.fingerprint(),
        "transfer": transfer,
        "rule_text": verdict_rule(named.experiment.verdict),
        **{k: record[k] for k in ("rule", "verdict", "certified", "regimes")},
    }


def ticket_block(info: TicketInfo, named: NamedTicket, pattern: str) -> dict[str, Any]:
    """What the ticket is, from its file."""
    extra = dict(info.extra or {})
    return {
        "architecture": info.arch,
        "pattern": pattern,
        "nm": [int(v) for v in extra.get("nm", (2, 4))] if pattern == "nm" else None,
        "method": info.method or named.key.method,
        "imp_regime": named.key.imp_regime,
        "target_sparsity": info.target_sparsity,
        "sparsity": float(info.sparsity),
        "prunable_weights": int(info.total),
        "kept_weights": int(info.kept),
        "spec": dict(info.spec),
    }


def pretraining_block(named: NamedTicket, meta: WeightsMeta) -> dict[str, Any]:
    """Where θp came from: the run's pre-training and what its weights record."""
    p = named.pretraining
    spec = p.spec
    dataset = spec.data.name if spec is not None else meta.dataset
    eps = meta.eps
    if spec is not None and spec.kind != "control" and spec.train.regime != "std":
        eps = spec.train.attack.eps
    return {
        "label": p.label,
        "kind": p.kind,
        "dataset": dataset,
        "eps": eps,
        "source_sa": meta.source_sa,
        "source_ra": meta.source_ra,
        "weights_hash": meta.content_hash,
        "spec": to_dict(spec) if spec is not None else None,
    }


def attack_block(attack: AttackSpec, test_images: int, autoattack_points: int) -> dict[str, Any]:
    """The test attack in full (always run in eval mode)."""
    return {
        "library": "doublewin",
        "version": package_version("doublewin"),
        "name": "PGD",
        "norm": attack.norm,
        "eps": attack.eps,
        "eps_text": pixel_text(attack.eps, attack.norm),
        "step": attack.step,
        "steps": attack.steps,
        "restarts": attack.restarts,
        "random_start": attack.random_start,
        "loss": attack.loss,
        "early_stop": attack.early_stop,
        "bn_mode": "eval",
        "test_images": test_images,
        "autoattack": None
        if not autoattack_points
        else {
            "library": AUTOATTACK_LIBRARY,
            "version": package_version(AUTOATTACK_LIBRARY),
            "variant": "standard",
            "points": autoattack_points,
        },
    }


def evaluation_block(measured: Measured, spec: EvaluateSpec) -> dict[str, Any]:
    """The exported model's own evaluation, with each test image's outcome."""
    report = measured.report
    autoattack = report.points.get("autoattack")
    return {
        "data": to_dict(spec.data),
        "split": "test",
        "test_images": report.n,
        "test_split_hash": measured.images.fingerprint(),
        "sa": report.sa,
        "ra": report.ra,
        "autoattack_ra": report.autoattack_ra,
        "autoattack_points": report.autoattack_n,
        "checks": [dataclasses.asdict(c) for c in report.checks],
        "gradient_masking_suspected": bool(report.flagged),
        "points": {
            "clean": pack_points(report.points["clean"]),
            "robust": pack_points(report.points["robust"]),
            "autoattack": None if autoattack is None else pack_points(autoattack),
        },
    }


def name_of(named: NamedTicket, fine_tuned: Mapping[str, Any] | None) -> str:
    key = named.key
    name = (
        f"{key.pretraining} {ladder_label(key.method, key.imp_regime)} {key.sparsity:.2%} "
        f"ticket of {named.experiment.arch}"
    )
    if fine_tuned is not None:
        name += (
            f", {fine_tuned['regime'].upper()}-transferred to {key.dataset} "
            f"(seed {fine_tuned['seed']}, {fine_tuned['checkpoint']})"
        )
    return name


def robustbench_fields(
    name: str,
    evaluation: Mapping[str, Any],
    attack: Mapping[str, Any],
    meta: WeightsMeta,
    *,
    additional_data: bool,
    footnote: str,
) -> dict[str, Any]:
    """RobustBench's model_info fields: the exported model's own evaluation, accuracies as
    points with two decimals (as its files write them)."""
    autoattack = evaluation["autoattack_ra"]
    return {
        "name": name,
        "link": None,
        "authors": None,
        "venue": None,
        "reported": None,
        "footnote": footnote,
        "additional_data": additional_data,
        "number_forward_passes": 1,
        "dataset": evaluation["data"]["name"],
        "architecture": meta.arch,
        "eps": attack["eps_text"],
        "threat_model": THREAT_MODELS[attack["norm"]],
        "clean_acc": f"{evaluation['sa']:.2f}",
        "autoattack_acc": None if autoattack is None else f"{autoattack:.2f}",
    }


def footnote_of(claim: Mapping[str, Any]) -> str:
    seeds = sorted({r["seed"] for regime in claim["regimes"].values() for r in regime["seeds"]})
    said = "Certified double-win" if claim["certified"] else f"Verdict {claim['verdict']}"
    return (
        f"{said} by doublewin on {claim['dataset']} ({claim['fraction']:.0%} of its training "
        f"data), seeds {', '.join(map(str, seeds))}, {claim['rule']['rule']} rule; the claim is "
        "in certificate.json"
    )


def assemble(
    named: NamedTicket,
    *,
    folder: Path,
    exported: Exported,
    info: TicketInfo,
    claim: dict[str, Any],
    measured: Measured,
    evaluate_spec: EvaluateSpec,
    pretrained: WeightsMeta,
    fine_tuned: dict[str, Any] | None,
    fine_tuned_hash: str | None,
) -> dict[str, Any]:
    """The whole certificate of the export in ``folder``."""
    meta = measured.meta
    evaluation = evaluation_block(measured, evaluate_spec)
    attack = attack_block(
        named.experiment.eval_attack, claim["test_images"], evaluation["autoattack_points"]
    )
    name = name_of(named, fine_tuned)
    pretraining = pretraining_block(named, pretrained)
    additional = fine_tuned is not None and pretraining["kind"] != "control"
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": "ticket" if fine_tuned is None else "fine-tuned",
        **robustbench_fields(
            name,
            evaluation,
            attack,
            meta,
            additional_data=additional,
            footnote=footnote_of(claim),
        ),
        "provenance": provenance(),
        "ticket": ticket_block(info, named, exported.pattern),
        "footprint": {
            "dense": dataclasses.asdict(exported.dense),
            "exported": dataclasses.asdict(exported.exported),
        },
        "hashes": {
            "ticket": info.mask_hash,
            "pretrained_weights": pretrained.content_hash,
            "fine_tuned_weights": fine_tuned_hash,
            "weights": meta.content_hash,
            "files": file_hashes(folder),
        },
        "weights": {
            "arch": meta.arch,
            "num_classes": int(meta.num_classes),
            "mean": [float(v) for v in meta.mean],
            "std": [float(v) for v in meta.std],
            "input_size": int(meta.input_size),
        },
        "pretraining": pretraining,
        "claim": claim,
        "fine_tuned": fine_tuned,
        "attack": attack,
        "evaluation": evaluation,
    }
