"""`doublewin datasets` and `doublewin models`: what is available."""

from __future__ import annotations

from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.cli.tables import Column, print_listing
from doublewin.core.errors import UserError


def _architecture(entry: dict[str, object]) -> str:
    """A RobustBench entry's architecture, with its note or why it cannot be imported."""
    note = entry["note"] or ("" if entry["importable"] else "cannot be imported")
    return "; ".join(str(v) for v in (entry["architecture"], note) if v)


# Each listing's columns, with how a record of its --json output gives the cell.
DATASET_COLUMNS = (
    (Column("name"), lambda r: r["name"]),
    (Column("kind"), lambda r: r["kind"]),
    (Column("classes", right=True), lambda r: str(r["num_classes"])),
    (Column("image", right=True), lambda r: f"{r['image_size']} px"),
    (
        Column("train/val/test", right=True),
        lambda r: "/".join(f"{r['splits'][s]:,}" for s in ("train", "val", "test")),
    ),
    (Column("files", wraps=True), lambda r: f"{r['status']}: {r['location']}"),
)
MODEL_COLUMNS = (
    (Column("name"), lambda r: r["name"]),
    (Column("family"), lambda r: r["family"]),
    (Column("input", right=True), lambda r: f"{r['input_size']} px"),
    (Column("parameters (10 classes)", right=True), lambda r: f"{r['num_params']:,}"),
    (Column("description", wraps=True), lambda r: r["description"]),
)
ROBUSTBENCH_COLUMNS = (
    (Column("entry"), lambda e: str(e["name"])),
    (
        Column("parameters", right=True),
        lambda e: f"{int(e['parameters']) / 1e6:.1f}M" if e["parameters"] else "-",
    ),
    (Column("architecture", wraps=True), _architecture),
)


@app.command("datasets")
def datasets_command(data_root: opt.DataRoot = None, as_json: opt.Json = False) -> None:
    """List every dataset: classes, image size, split sizes, and where its files are."""
    # deferred: the command line starts without torch; only the commands that run load it
    from doublewin.data import describe_datasets

    rows = describe_datasets(data_root)
    if as_json:
        print_json(rows)
        return
    print_listing("datasets", rows, DATASET_COLUMNS)


@app.command("models")
def models_command(
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            help="Also list timm/, torchvision/ and robustbench/ models whose name contains "
            "this text (robustbench: every RobustBench entry) [default: none, doublewin's "
            "architectures and the zoos' counts].",
        ),
    ] = None,
    as_json: opt.Json = False,
) -> None:
    """List architectures by family: doublewin's own (input size, parameters) and, with
    --search, the timm and torchvision models of that name (any of them works in --arch)."""
    # deferred: the command line starts without torch; only the commands that run load it
    from doublewin.models import list_architectures
    from doublewin.models.robustbench import catalog, catalog_version

    rows = [info.as_dict() for info in list_architectures()]
    zoo = zoo_listing(search)
    entries = robustbench_listing(search)
    if search:
        rows = [r for r in rows if search.lower() in r["name"].lower()]
    if as_json:
        print_json({"doublewin": rows, **zoo, "robustbench": entries})
        return
    if rows:
        print_listing("doublewin's architectures", rows, MODEL_COLUMNS)
    else:
        console.print(f"doublewin's architectures matching {search!r}: none", markup=False)
    for name, models in zoo.items():
        if search:
            shown = ", ".join(f"{name}/{m}" for m in models) or "none"
            console.print(
                f"{name} models matching {search!r} ({len(models)}): {shown}", soft_wrap=True
            )
        else:
            console.print(f"{name}: {models} models; --search TEXT lists them (e.g. --search vit)")
    if not search:
        console.print(
            f"robustbench: {len(catalog())} entries of RobustBench {catalog_version()}'s zoo;\n"
            "  --search robustbench lists them",
            markup=False,
        )
    elif entries:
        _print_robustbench(search, entries)


def _print_robustbench(search: str, entries: list[dict[str, object]]) -> None:
    """The RobustBench entries found, one table per dataset and threat model."""
    # deferred: the command line starts without torch; only the commands that run load it
    from doublewin.models.robustbench import INSTALL

    console.print(
        f"RobustBench entries matching {search!r}: --arch robustbench/<dataset>/<threat>/"
        f"<entry> with import-weights --format robustbench ({INSTALL})",
        soft_wrap=True,
        markup=False,
    )
    groups: dict[str, list[dict[str, object]]] = {}
    for e in entries:
        groups.setdefault(f"robustbench/{e['dataset']}/{e['threat']}/", []).append(e)
    for prefix, group in groups.items():
        print_listing(prefix + "<entry>", group, ROBUSTBENCH_COLUMNS)


def zoo_listing(search: str | None) -> dict[str, object]:
    """Per zoo: the matching model names (with ``search``), else how many it has; a zoo whose
    package is not installed says so."""
    from doublewin.models.zoo import ZOOS, zoo_models  # deferred: torch

    out: dict[str, object] = {}
    for zoo in ZOOS:
        try:
            names = zoo_models(zoo)
        except UserError as exc:
            out[zoo] = str(exc) if search else 0
            continue
        if search:
            out[zoo] = [n for n in names if search.lower() in n.lower()]
        else:
            out[zoo] = len(names)
    return out


def robustbench_listing(search: str | None) -> list[dict[str, object]]:
    """The RobustBench entries whose name or architecture contains ``search`` (all of them
    for any text in ``robustbench/``), from doublewin's catalog of its zoo."""
    if not search:
        return []
    from doublewin.models.robustbench import catalog, entry_row  # deferred: torch

    text = search.lower()
    return [
        {**entry_row(e), "importable": e.importable}
        for e in catalog()
        if text in e.arch.lower() or text in e.architecture.lower()
    ]
