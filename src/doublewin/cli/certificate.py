"""How the command line shows a certificate (`doublewin export --run`, `tickets inspect`) and
a verification (`doublewin verify`): the rows are the model card's (tickets/card.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from doublewin.cli.app import console
from doublewin.cli.tables import Column, print_table


def print_certificate(document: Mapping[str, Any]) -> None:
    """What the ticket is, its claim per seed and per comparison, its own evaluation."""
    # deferred: the card module reads YAML; the command line starts without it
    from doublewin.tickets.card import INTERVAL_HEADER, SEED_HEADER, interval_rows, seed_rows

    ticket, claim, evaluation = document["ticket"], document["claim"], document["evaluation"]
    console.print(f"{document['name']} ({document['kind']})", highlight=False)
    console.print(
        f"{ticket['architecture']}, {ticket['pattern']}, sparsity {ticket['sparsity']:.4%} "
        f"({ticket['kept_weights']:,} of {ticket['prunable_weights']:,} kept); ticket "
        f"{document['hashes']['ticket']}, θp {document['hashes']['pretrained_weights']}, "
        f"weights {document['hashes']['weights']}",
        highlight=False,
    )
    console.print(
        f"claim: {claim['verdict'] or 'undetermined'} on {claim['dataset']} "
        f"({claim['fraction']:g} of its data), {claim['rule']['rule']} rule"
        + (" — certified double-win" if claim["certified"] else " — NOT certified double-win"),
        highlight=False,
    )
    print_table(
        "per seed (points)",
        [Column(h, right=i > 1) for i, h in enumerate(SEED_HEADER)],
        seed_rows(document),
    )
    print_table(
        "ticket − dense (points)",
        [Column(h, right=0 < i < 5) for i, h in enumerate(INTERVAL_HEADER)],
        interval_rows(document),
    )
    aa = evaluation["autoattack_ra"]
    console.print(
        f"own evaluation on {evaluation['test_images']} test images of "
        f"{evaluation['data']['name']}: SA {evaluation['sa']:.2f}, RA {evaluation['ra']:.2f} "
        f"(PGD-{document['attack']['steps']}, ε {document['attack']['eps_text']})"
        + (f", AutoAttack {aa:.2f} on {evaluation['autoattack_points']}" if aa is not None else ""),
        highlight=False,
    )


def print_verification(result: Any) -> None:
    """Each check (✓ agrees, ✗ does not), then the notes."""
    rows = [[c.claim, c.certified, c.measured, "✓" if c.agrees else "✗"] for c in result.checks]
    print_table(
        f"{result.folder} ({result.kind}, certificate {result.certificate_sha256[:16]})",
        [
            Column("claim", wraps=True),
            Column("certified", right=True),
            Column("measured", right=True),
            Column(""),
        ],
        rows,
    )
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
