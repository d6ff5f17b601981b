"""`doublewin datasets` and `doublewin models`: what is available."""

from __future__ import annotations

from rich.table import Table

from doublewin.cli.app import DataRoot, JsonFlag, app, console, print_json
from doublewin.data import describe_datasets
from doublewin.models import list_architectures


@app.command("datasets")
def datasets_command(data_root: DataRoot = None, as_json: JsonFlag = False) -> None:
    """List every dataset: classes, image size, split sizes, and where its files are."""
    rows = describe_datasets(data_root)
    if as_json:
        print_json(rows)
        return
    table = Table(title="datasets")
    for column in ("name", "kind", "classes", "image", "train/val/test", "files"):
        table.add_column(column)
    for row in rows:
        sizes = "/".join(f"{row['splits'][s]:,}" for s in ("train", "val", "test"))
        table.add_row(
            row["name"],
            row["kind"],
            str(row["num_classes"]),
            f"{row['image_size']} px",
            sizes,
            f"{row['status']}: {row['location']}",
        )
    console.print(table)


@app.command("models")
def models_command(as_json: JsonFlag = False) -> None:
    """List architectures with their input size and parameter count."""
    rows = [info.as_dict() for info in list_architectures()]
    if as_json:
        print_json(rows)
        return
    table = Table(title="architectures")
    for column in ("name", "family", "input", "parameters (10 classes)", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["family"],
            f"{row['input_size']} px",
            f"{row['num_params']:,}",
            row["description"],
        )
    console.print(table)
