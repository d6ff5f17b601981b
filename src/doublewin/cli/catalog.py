"""`doublewin datasets` and `doublewin models`: what is available."""

from __future__ import annotations

from doublewin.cli.app import DataRoot, JsonFlag, app, print_json
from doublewin.cli.tables import Column, print_table
from doublewin.data import describe_datasets
from doublewin.models import list_architectures


@app.command("datasets")
def datasets_command(data_root: DataRoot = None, as_json: JsonFlag = False) -> None:
    """List every dataset: classes, image size, split sizes, and where its files are."""
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
def models_command(as_json: JsonFlag = False) -> None:
    """List architectures with their input size and parameter count."""
    rows = [info.as_dict() for info in list_architectures()]
    if as_json:
        print_json(rows)
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
    print_table("architectures", columns, table)
