"""`doublewin verify` on exports of the fixture run (conftest.py): on the same machine it
reproduces the certified SA and RA, and --transfer reruns the transfers inside the certified
ranges and reaches the certified verdict; each way an export can stop holding its claims (a
changed weight, an edited claim, a changed ε, a missing file, another dataset or test split)
is one line and a non-zero exit."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors import safe_open

from doublewin.cli import main
from doublewin.models import load_weights, save_weights
from doublewin.tickets.card import model_card
from doublewin.tickets.certificate import certificate_text, stamp
from test_bad_input import fails


def verify(capsys, *argv) -> dict:
    """`doublewin verify ... --json` that must succeed: its report."""
    capsys.readouterr()
    try:
        main(["verify", *[str(a) for a in argv], "--json"])
    except SystemExit as stop:
        assert not stop.code, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def reissue(folder: Path, edit: Callable[[dict], None]) -> None:
    """Edit the certificate and re-stamp the weights and the card with it, as a forger who
    knows the format would: the files agree with each other, only the claims are wrong."""
    document = json.loads((folder / "certificate.json").read_text())
    edit(document)
    text = certificate_text(document)
    (folder / "certificate.json").write_text(text)
    state, meta = load_weights(folder / "weights.safetensors")
    digest = hashlib.sha256(text.encode()).hexdigest()
    save_weights(folder / "weights.safetensors", state, meta, stamp=stamp(document, digest))
    (folder / "README.md").write_text(model_card(document))


def test_verify_reproduces_a_ticket_exports_own_measurement_on_the_same_machine(
    ticket_export, capsys
):
    report = verify(capsys, ticket_export, "--data", "chars")
    assert report["agrees"] and report["kind"] == "ticket"
    claims = [c["claim"] for c in report["checks"]]
    assert any(c.startswith("SA on the first 120") for c in claims)
    assert any(c.startswith("RA (PGD-2) on the first 120") for c in claims)
    limited = verify(capsys, ticket_export, "--data", "chars", "--limit", "40")
    assert limited["agrees"] and any("first 40" in c["claim"] for c in limited["checks"])


def test_verify_transfer_reruns_every_seed_inside_the_certified_ranges_and_verdict(
    ticket_export, tmp_path, capsys
):
    report = verify(
        capsys, ticket_export, "--data", "digits", "--transfer", "--work", tmp_path / "work"
    )
    assert report["agrees"], [c for c in report["checks"] if not c["agrees"]]
    claims = [c["claim"] for c in report["checks"]]
    assert sum("inside the certified per-seed range" in c for c in claims) == 12  # 2×2×3
    assert sum("inside the certified interval" in c for c in claims) == 4
    verdict = next(c for c in report["checks"] if c["claim"] == "verdict judged again")
    assert verdict["certified"] == verdict["measured"] == "double-win"
    assert len(list((tmp_path / "work").glob("transfer-*"))) == 6
    # One seed: the same checks of that seed; the verdict on one seed is a note, not a check.
    one = verify(
        capsys,
        ticket_export,
        "--data",
        "digits",
        "--transfer",
        "--seeds",
        "1",
        "--work",
        tmp_path / "work",
    )
    assert one["agrees"] and any("on seeds 1 alone" in n for n in one["notes"])


def test_a_fine_tuned_export_verifies_with_autoattack_against_the_run_and_the_claim(
    tuned_export, capsys
):
    report = verify(capsys, tuned_export, "--data", "digits", "--autoattack", "20")
    assert report["agrees"] and report["kind"] == "fine-tuned"
    claims = [c["claim"] for c in report["checks"]]
    assert any(c.startswith("RA (AutoAttack) on the first 20") for c in claims)
    assert any("the run's test of seed 0" in c for c in claims)
    assert any(c == "RA inside the certified per-seed range (AT)" for c in claims)


# ---------------------------------------------------------------- what breaks a claim


def test_a_changed_weight_is_one_line_and_exit_2(ticket_export, tmp_path, capsys):
    folder = copy(ticket_export, tmp_path)
    state, meta = load_weights(folder / "weights.safetensors")
    raw = (folder / "weights.safetensors").read_bytes()
    state["fc.weight"] = state["fc.weight"] + 0.01
    # Saved again with the certificate's own stamp: only the tensors differ.
    with safe_open(str(folder / "weights.safetensors"), "pt") as handle:
        stamped = {k: handle.metadata()[k] for k in ("certificate_sha256", "sparsity", "pattern")}
    save_weights(folder / "weights.safetensors", state, meta, stamp=stamped)
    fails(
        ["verify", folder, "--data", "chars"],
        capsys,
        names=("weights.safetensors", "holds other weights"),
        watch=tmp_path,
    )
    # Bytes changed behind an intact header: the tensors no longer match their own hash.
    body = bytearray(raw)
    body[-5] ^= 0xFF
    (folder / "weights.safetensors").write_bytes(bytes(body))
    fails(
        ["verify", folder, "--data", "chars"],
        capsys,
        names=("corrupt weights file",),
        watch=tmp_path,
    )


def test_an_edited_claim_is_one_line_and_a_non_zero_exit(ticket_export, tmp_path, capsys):
    folder = copy(ticket_export, tmp_path)
    document = json.loads((folder / "certificate.json").read_text())
    document["claim"]["regimes"]["at"]["seeds"][0]["ticket"]["ra"] += 10
    (folder / "certificate.json").write_text(certificate_text(document))
    fails(
        ["verify", folder, "--data", "chars"],
        capsys,
        names=("certificate.json", "changed since export"),
        watch=tmp_path,
    )
    # Re-stamped with the edit, the files agree; measuring again finds the claim false.
    forged = copy(ticket_export, tmp_path / "forged")
    reissue(forged, lambda d: d["evaluation"].update(sa=d["evaluation"]["sa"] + 10))
    fails(
        ["verify", forged, "--data", "chars", "--json"],
        capsys,
        code=1,
        names=("not reproduced", "SA on the first 120"),
        watch=tmp_path,
    )


def test_a_changed_eps_is_one_line_and_a_non_zero_exit(tuned_export, tmp_path, capsys):
    folder = copy(tuned_export, tmp_path)
    document = json.loads((folder / "certificate.json").read_text())
    document["attack"].update(eps=4 / 255, eps_text="4/255")
    (folder / "certificate.json").write_text(certificate_text(document))
    fails(
        ["verify", folder, "--data", "digits"],
        capsys,
        names=("certificate.json", "changed since export"),
        watch=tmp_path,
    )
    # Re-stamped: the RA certified at 8/255 is held against an attack at 64/255 (with the step
    # that ε takes, so that two steps reach it) and is not reproduced.
    forged = copy(tuned_export, tmp_path / "forged")

    def wider(document: dict) -> None:
        document["attack"].update(eps=64 / 255, eps_text="64/255", step=32 / 255)
        document["eps"] = "64/255"

    reissue(forged, wider)
    fails(
        ["verify", forged, "--data", "digits", "--json"],
        capsys,
        code=1,
        names=("not reproduced", "RA (PGD-2)"),
        watch=tmp_path,
    )


@pytest.mark.parametrize("name", ["ticket.safetensors", "README.md", "certificate.json"])
def test_a_missing_file_is_one_line_naming_it(ticket_export, tmp_path, capsys, name):
    folder = copy(ticket_export, tmp_path)
    (folder / name).unlink()
    fails(["verify", folder, "--data", "chars"], capsys, names=(name, "not found"), watch=tmp_path)


def test_a_wrong_dataset_or_another_test_split_is_one_line_before_measuring(
    ticket_export, tuned_export, tmp_path, capsys
):
    fails(
        ["verify", ticket_export, "--data", "shapes"],
        capsys,
        names=("--data shapes", "chars", "digits"),
        watch=tmp_path,
    )
    fails(
        ["verify", ticket_export, "--data", "digits"], capsys, names=("--transfer",), watch=tmp_path
    )
    folder = copy(tuned_export, tmp_path)
    reissue(folder, lambda d: d["evaluation"].update(test_split_hash="0" * 16))
    fails(
        ["verify", folder, "--data", "digits"],
        capsys,
        names=("--data digits", "test split", "0000000000000000"),
        watch=tmp_path,
    )


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (("--data", "digits", "--transfer"), ("fine-tuned model", "without --transfer")),
        (("--data", "digits", "--seeds", "0"), ("--seeds", "--transfer")),
        (("--data", "digits", "--autoattack", "50"), ("--autoattack 50", "at most 20")),
    ],
)
def test_options_that_do_not_fit_the_export_are_one_line(
    tuned_export, tmp_path, capsys, extra, names
):
    fails(["verify", tuned_export, *extra], capsys, names=names, watch=tmp_path)


def test_a_folder_that_is_not_an_export_is_one_line(tmp_path, capsys):
    fails(
        ["verify", tmp_path, "--data", "digits"],
        capsys,
        names=("certificate.json", "not found"),
        watch=tmp_path,
    )


def test_a_fine_tuned_export_measured_on_fewer_images_leaves_the_claim_unchecked_and_says_so(
    certify_run, tmp_path, capsys
):
    out = tmp_path / "tuned-40"
    main(
        [
            "export",
            "--run",
            str(certify_run),
            "--ticket",
            "AT/omp/0.2",
            "--seed",
            "1",
            "--limit",
            "40",
            "--out",
            str(out),
            "--json",
        ]
    )
    report = verify(capsys, out, "--data", "digits")
    assert report["agrees"] and any("first 40" in c["claim"] for c in report["checks"])
    assert not any("the run's test" in c["claim"] for c in report["checks"])
    assert any("measured on 40, it was not checked" in n for n in report["notes"])
