"""A run's ticket exported by name carries its certificate: the certificate validates against
the schema the package ships, says what the run's verdict says, holds RobustBench's model_info
fields; the Hugging Face card parses with the Hub's own code and its model-index holds SA and
RA with ε and the attack's args; the weights' safetensors metadata holds the certificate's
hash. A ticket the run did not certify exports only when asked, and says so."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from safetensors import safe_open

from conftest import CERTIFIED_TICKET as TICKET
from doublewin.cli import main
from test_bad_input import fails

UNCERTIFIED = "AT/omp/95%"  # inconclusive there


def run_cli(capsys, *argv) -> str:
    """Run a command that must succeed; its stdout."""
    capsys.readouterr()
    try:
        main([str(a) for a in argv])
    except SystemExit as stop:
        assert not stop.code, capsys.readouterr().err
    return capsys.readouterr().out


def certificate(folder: Path) -> dict:
    return json.loads((folder / "certificate.json").read_text())


def test_a_certified_ticket_exports_by_name_and_its_certificate_validates_against_the_schema(
    ticket_export, certify_run, capsys
):
    document = certificate(ticket_export)
    shipped = json.loads((files("doublewin.tickets") / "certificate.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(shipped)
    jsonschema.validate(document, shipped, cls=jsonschema.Draft202012Validator)
    assert document["kind"] == "ticket" and document["ticket"]["sparsity"] == pytest.approx(
        0.2, abs=1e-3
    )
    assert document["claim"]["certified"] and document["claim"]["verdict"] == "double-win"
    # The claim is the run's verdict, number for number.
    verdict = json.loads(
        run_cli(
            capsys,
            "verdict",
            certify_run / "results.csv",
            "--config",
            certify_run / "experiment.yaml",
            "--json",
        )
    )
    (ticket,) = [t for t in verdict["tickets"] if t["sparsity"] == pytest.approx(0.2)]
    assert ticket["outcome"] == document["claim"]["verdict"]
    for c in ticket["comparisons"]:
        recorded = document["claim"]["regimes"][c["regime"]]["comparisons"][c["metric"]]
        assert recorded["difference"] == c["difference"] and recorded["delta"] == c["delta"]
        assert recorded["seeds"] == c["seeds"] == [0, 1, 2]
    # The test attack in full, and what made the file.
    attack = document["attack"]
    assert (attack["eps_text"], attack["steps"], attack["step"]) == ("8/255", 2, 4 / 255)
    assert attack["test_images"] == document["claim"]["test_images"] == 100
    assert document["provenance"]["doublewin"] and document["provenance"]["date"]
    assert set(document["hashes"]["files"]) == {
        "architecture.json",
        "export.json",
        "model.py",
        "ticket.safetensors",
    }


def test_the_certificate_holds_robustbench_model_info_and_its_reader_finds_the_accuracies(
    ticket_export, tuned_export
):
    from doublewin.models.robustbench import _model_zoo

    # RobustBench's package __init__ needs pkg_resources; doublewin loads its modules under a
    # bare parent package, as `--arch robustbench/...` does.
    _model_zoo()
    from robustbench.model_zoo.enums import ThreatModel
    from robustbench.utils import ACC_FIELDS, ModelInfo, get_key

    for folder in (ticket_export, tuned_export):
        document = certificate(folder)
        fields = [f.name for f in dataclasses.fields(ModelInfo) if "corruptions" not in f.name]
        assert set(fields) | {"threat_model"} <= set(document)
        ModelInfo(**{name: document[name] for name in fields})
        assert document["eps"] == "8/255" and document["threat_model"] == "Linf"
        assert float(document["clean_acc"]) == pytest.approx(
            document["evaluation"]["sa"], abs=0.005
        )
    tuned = certificate(tuned_export)
    robust = get_key(tuned, ACC_FIELDS[ThreatModel(tuned["threat_model"])])
    assert robust == pytest.approx(tuned["evaluation"]["autoattack_ra"], abs=0.005)
    assert certificate(ticket_export)["autoattack_acc"] is None  # no AutoAttack was run


def test_the_card_parses_with_the_hubs_code_and_its_model_index_holds_sa_and_ra_with_attack_args(
    ticket_export, tuned_export
):
    from huggingface_hub import ModelCard

    card = ModelCard.load(ticket_export / "README.md")
    assert card.data.library_name == "doublewin" and "lottery-ticket" in card.data.tags
    results = card.data.eval_results
    robust = [r for r in results if r.metric_type == "robust_accuracy"]
    assert {r.metric_type for r in results} == {"accuracy", "robust_accuracy"}
    assert robust and all(r.metric_args["epsilon"] == "8/255" for r in robust)
    assert all(
        r.metric_args["attack"] == "PGD-2" and r.metric_args["norm"] == "Linf" for r in robust
    )
    # The transfer claim: mean ticket SA and RA of each regime, on the downstream data.
    document = certificate(ticket_export)
    st_sa = next(r for r in results if r.task_name == "ST transfer" and r.metric_type == "accuracy")
    assert st_sa.dataset_name == "digits"
    assert st_sa.metric_value == round(
        document["claim"]["regimes"]["st"]["comparisons"]["sa"]["ticket_mean"], 2
    )
    body = card.text
    for section in (
        "## The claim",
        "### Per seed",
        "### Intervals",
        "## Load it in plain torch",
        "## Verify it",
    ):
        assert section in body
    tuned = ModelCard.load(tuned_export / "README.md")
    assert tuned.data.license == "mit"
    autoattack = [
        r
        for r in tuned.data.eval_results
        if r.metric_args and r.metric_args.get("attack") == "AutoAttack (standard)"
    ]
    assert autoattack and autoattack[0].metric_args["points"] == 20


def test_the_weights_metadata_holds_the_certificates_hash_sparsity_and_pattern(ticket_export):
    from doublewin.models import load_model

    with safe_open(str(ticket_export / "weights.safetensors"), "pt") as handle:
        meta = handle.metadata()
    digest = hashlib.sha256((ticket_export / "certificate.json").read_bytes()).hexdigest()
    assert meta["certificate_sha256"] == digest
    assert float(meta["sparsity"]) == certificate(ticket_export)["ticket"]["sparsity"]
    assert meta["pattern"] == "unstructured"
    model, weights_meta = load_model(ticket_export / "weights.safetensors")  # still doublewin's
    assert weights_meta.content_hash == certificate(ticket_export)["hashes"]["weights"]


def test_a_ticket_the_run_did_not_certify_exports_only_with_uncertified_and_says_so(
    certify_run, tmp_path, capsys
):
    out = tmp_path / "uncertified"
    fails(
        ["export", "--run", certify_run, "--ticket", UNCERTIFIED, "--out", out],
        capsys,
        names=("not certified double-win", "inconclusive", "--uncertified"),
        watch=tmp_path,
    )
    run_cli(
        capsys,
        "export",
        "--run",
        certify_run,
        "--ticket",
        UNCERTIFIED,
        "--uncertified",
        "--limit",
        "30",
        "--out",
        out,
        "--json",
    )
    document = certificate(out)
    assert not document["claim"]["certified"] and document["claim"]["verdict"] == "inconclusive"
    assert "NOT certified" in (out / "README.md").read_text()
    assert document["evaluation"]["test_images"] == 30


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (("--ticket", "AT/omp/0.5"), ("no such ticket", "AT/omp/0.2", "AT/omp/0.95")),
        (("--ticket", "AT/omp"), ("<pre-training>/<method>/<sparsity>",)),
        (("--ticket", TICKET, "--downstream", "cifar10/1"), ("--downstream", "digits/0.5")),
        (("--ticket", TICKET, "--seed", "7"), ("--seed 7", "0, 1, 2")),
        (("--ticket", TICKET, "--weights", "w.safetensors"), ("--weights", "not with --run")),
    ],
)
def test_a_name_that_does_not_name_one_exportable_ticket_is_one_line(
    certify_run, tmp_path, capsys, argv, names
):
    fails(
        ["export", "--run", certify_run, *argv, "--out", tmp_path / "e"],
        capsys,
        names=names,
        watch=tmp_path,
    )


def test_a_fine_tuned_model_exports_with_its_own_evaluation_and_autoattack_fills_autoattack_acc(
    tuned_export, certify_run
):
    document = certificate(tuned_export)
    assert document["kind"] == "fine-tuned" and document["dataset"] == "digits"
    assert document["fine_tuned"]["seed"] == 0 and document["fine_tuned"]["checkpoint"] == "best_ra"
    assert document["additional_data"]  # pre-trained on chars before digits
    assert document["autoattack_acc"] == f"{document['evaluation']['autoattack_ra']:.2f}"
    assert (
        document["attack"]["autoattack"]["points"]
        == document["evaluation"]["autoattack_points"]
        == 20
    )
    assert document["hashes"]["fine_tuned_weights"] != document["hashes"]["pretrained_weights"]
    # The run's own test of this checkpoint is what its transfer recorded.
    (entry,) = [
        p
        for p in (certify_run / "store").glob("transfer-*")
        if json.loads((p / "spec.json").read_text())["spec"]["seed"] == 0
        and json.loads((p / "spec.json").read_text())["spec"]["train"]["regime"] == "at"
        and json.loads((p / "spec.json").read_text())["spec"]["ticket"].endswith("@0.200000")
    ]
    metrics = json.loads((entry / "metrics.json").read_text())
    assert document["fine_tuned"]["test"] == {
        "sa": metrics["sa_best_ra"],
        "ra": metrics["ra_best_ra"],
    }


def test_the_run_kept_the_fine_tuned_weights_its_experiment_file_asked_for(certify_run):
    entries = list((certify_run / "store").glob("transfer-*"))
    assert len(entries) == 18
    assert all(
        (e / "best_ra.safetensors").is_file() and not (e / "best_sa.safetensors").exists()
        for e in entries
    )


def test_tickets_inspect_shows_the_certificate_of_an_export_folder_and_of_its_ticket(
    ticket_export, capsys
):
    shown = json.loads(run_cli(capsys, "tickets", "inspect", ticket_export, "--json"))
    assert shown["certificate"] == certificate(ticket_export)
    text = run_cli(capsys, "tickets", "inspect", ticket_export)
    assert "certified double-win" in text and "per seed" in text
    beside = json.loads(
        run_cli(capsys, "tickets", "inspect", ticket_export / "ticket.safetensors", "--json")
    )
    assert beside["certificate_sha256"] == shown["certificate_sha256"] and beside["kept"] > 0
