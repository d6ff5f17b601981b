"""`doublewin datasets` and `doublewin models`: what is available."""

from __future__ import annotations

from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.cli.tables import Column, print_table
from doublewin.core.errors import UserError


@app.command("datasets")
def datasets_command(data_root: opt.DataRoot = None, as_json: opt.Json = False) -> None:
    """List every dataset: classes, image size, split sizes, and where its files are."""
    # deferred: the command line starts without torch; only the commands that run load it
    from doublewin.data import describe_datasets

    rows = describe_datasets(data_root)
    if as_json:
        print_json(rows)
        return
    columns = [
        Column("name"),
        Column("kind"),
        Column("classes", right=True),
        Column("image", right=True),
        Column("train/val/test", right=True),
        Column("files", wraps=True),
    ]
    table = [
        [
            row["name"],
            row["kind"],
            str(row["num_classes"]),
            f"{row['image_size']} px",
            "/".join(f"{row['splits'][s]:,}" for s in ("train", "val", "test")),
            f"{row['status']}: {row['location']}",
        ]
        for row in rows
    ]
    print_table("datasets", columns, table)


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
    columns = [
        Column("name"),
        Column("family"),
        Column("input", right=True),
        Column("parameters (10 classes)", right=True),
        Column("description", wraps=True),
    ]
    table = [
        [
            row["name"],
            row["family"],
            f"{row['input_size']} px",
            f"{row['num_params']:,}",
            row["description"],
        ]
        for row in rows
    ]
    if table:
        print_table("doublewin's architectures", columns, table)
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
    columns = [
        Column("entry"),
        Column("parameters", right=True),
        Column("architecture", wraps=True),
    ]
    for prefix, group in groups.items():
        table = [
            [
                str(e["name"]),
                f"{int(e['parameters']) / 1e6:.1f}M" if e["parameters"] else "-",
                "; ".join(
                    str(v)
                    for v in (
                        e["architecture"],
                        e["note"] or ("" if e["importable"] else "cannot be imported"),
                    )
                    if v
                ),
            ]
            for e in group
        ]
        print_table(prefix + "<entry>", columns, table)


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
