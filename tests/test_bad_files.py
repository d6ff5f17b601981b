"""Files from elsewhere: results tables on another scale or in another shape, ImageFolder
trees, checkpoints to import, and CIFAR batches in every pickle form there is. Bad ones are
one line, exit 2 and nothing new on disk; accepted ones say first what was done."""

from __future__ import annotations

import csv
import io
import json
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from doublewin.analysis.results_table import kept_columns
from doublewin.cli import main
from doublewin.core.errors import UserError
from doublewin.data import load_dataset
from doublewin.data.real import read_cifar_batch
from doublewin.data.splits import stratified_holdout
from test_bad_input import fails
from test_verdict_command import HEADER, _table

# --- 7. results tables on another scale or in another shape -------------------------------


def _write(path: Path, rows, *, delimiter=",", bom=False, comma=False, header=HEADER) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [str(c).replace(".", ",") if comma and isinstance(c, float) else c for c in row]
        )
    path.write_text(buffer.getvalue(), encoding="utf-8-sig" if bom else "utf-8")
    return path


def _verdict(path: Path, capsys, *extra: str) -> tuple[list[str], dict]:
    capsys.readouterr()
    main(["verdict", str(path), *extra])
    lines = capsys.readouterr().out.splitlines()
    main(["verdict", str(path), "--json", *extra])
    return lines, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ({"bom": True}, "UTF-8 with a byte-order mark"),
        ({"delimiter": ";", "comma": True}, "semicolon-separated, with decimal commas"),
        ({"delimiter": "\t"}, "tab-separated"),
    ],
)
def test_a_spreadsheets_table_is_read_and_its_shape_said_first(shape, said, tmp_path, capsys):
    plain, expected = _verdict(_write(tmp_path / "plain.csv", _table()), capsys)
    lines, judged = _verdict(_write(tmp_path / "sheet.csv", _table(), **shape), capsys)
    assert lines[0] == f"read {tmp_path / 'sheet.csv'} as {said}."
    assert lines[1:] == plain and judged["notes"] == [lines[0][:-1]]
    assert judged["tickets"] == expected["tickets"]


@pytest.mark.parametrize(
    ("column", "value", "names"),
    [
        (2, 50.0, ("column 'fraction'", "50% is 0.5")),
        (2, 0.0, ("column 'fraction'", "above 0")),
        (5, 80.0, ("column 'sparsity'", "90% is 0.9")),
        (5, -0.1, ("column 'sparsity'",)),
        (7, -1, ("column 'seed'",)),
        (3, "IMP", ("column 'method'", "write imp")),
    ],
)
def test_a_cell_on_the_wrong_scale_is_refused_naming_it(column, value, names, tmp_path, capsys):
    rows = _table()
    rows[1][column] = value
    table = _write(tmp_path / "r.csv", rows)
    fails(["verdict", table], capsys, names=("r.csv line 3", *names), watch=tmp_path)


def test_a_table_in_points_read_as_fractions_names_the_cell(tmp_path, capsys):
    table = _write(tmp_path / "r.csv", _table())
    fails(
        ["verdict", table, "--unit", "fraction"],
        capsys,
        names=("--unit fraction", "line 2", "'sa_best_sa'", "89.0"),
        watch=tmp_path,
    )


def test_a_column_named_twice_is_refused(tmp_path, capsys):
    table = _write(tmp_path / "r.csv", _table(), header=[*HEADER[:-1], "sa_best_sa"])
    fails(["verdict", table], capsys, names=("'sa_best_sa' is named twice",), watch=tmp_path)


def test_a_verdict_file_with_an_unknown_pretraining_kind_is_refused(tmp_path, capsys):
    table = _write(tmp_path / "r.csv", _table())
    config = tmp_path / "v.yaml"
    config.write_text("verdict: {rule: paper}\npretrainings: {AT: robust-ish}\n")
    fails(
        ["verdict", table, "--config", config],
        capsys,
        names=("pretrainings.AT", "robust-ish"),
        watch=tmp_path,
    )


def test_a_column_a_user_added_is_kept_when_the_table_is_rewritten():
    made = [{"job": "a", "seed": 0, "sa_best_sa": 90.0}, {"job": "b", "seed": 1}]
    earlier = [{"job": "b", "seed": 1, "note": "rerun"}, {"job": "a", "seed": 0, "note": "ok"}]
    assert kept_columns(made, earlier) == [{**made[0], "note": "ok"}, {**made[1], "note": "rerun"}]
    assert kept_columns(made, []) is made


# --- 8. ImageFolder trees -----------------------------------------------------------------


def _tree(root: Path, classes: dict[str, dict[str, int]]) -> Path:
    from PIL import Image

    for split, counts in classes.items():
        for name, count in counts.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (8, 8), (30 * i, 0, 0)).save(folder / f"{i}.png")
    return root


def test_hidden_folders_and_files_are_not_classes_or_images(tmp_path):
    root = _tree(tmp_path / "t", {"train": {"a": 4, "b": 4}, "val": {"a": 2, "b": 2}})
    for split in ("train", "val"):
        (root / split / ".ipynb_checkpoints").mkdir()
    (root / "train" / "a" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "a" / ".ipynb_checkpoints" / "0-checkpoint.png").write_bytes(b"x")
    (root / "train" / "a" / "._0.png").write_bytes(b"AppleDouble")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        splits = load_dataset(f"folder:{root}", val_size=2)
    assert splits.info.num_classes == 2 and len(splits.train) + len(splits.val) == 8
    assert any(".ipynb_checkpoints skipped" in str(w.message) for w in said)


@pytest.mark.parametrize(
    ("classes", "names"),
    [
        ({"train": {"a": 4, "b": 0}, "val": {"a": 2, "b": 2}}, ("train/b", "empty classes")),
        ({"train": {"a": 4, "b": 4}, "val": {"a": 2, "b": 2, "c": 2}}, ("val", "c", "dropped")),
        ({"train": {"a": 4, "b": 4}, "val": {"a": 2}}, ("val", "no folder", "b")),
    ],
)
def test_a_tree_whose_classes_do_not_hold_is_refused_before_training(
    classes, names, tmp_path, capsys, files
):
    root = _tree(tmp_path / "t", classes)
    fails(
        [
            "transfer",
            "--weights",
            files["weights"],
            "--data",
            f"folder:{root}",
            "--epochs",
            "1",
            "--resolution",
            "8",
            "--out",
            tmp_path / "out",
        ],
        capsys,
        names=names,
        watch=tmp_path,
    )


def test_a_class_of_one_image_keeps_it_for_training():
    labels = torch.tensor([0] * 9 + [1] + [2] * 9)
    for seed in range(20):
        keep, held = stratified_holdout(labels, 5, seed)
        assert set(labels[keep].tolist()) == {0, 1, 2}, seed
        assert len(held) == 5
    with pytest.raises(UserError, match="without a training image"):
        stratified_holdout(torch.tensor([0, 0, 1, 2]), 3, 0)


# --- 9. import-weights --------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("foreign") / "resnet18.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    return path


def _import(source: Path, out: Path, *extra: str) -> list:
    return [
        "import-weights",
        source,
        "--format",
        "torchvision",
        "--arch",
        "resnet18",
        "--out",
        out,
        *extra,
    ]


def test_importing_a_doublewin_weights_file_is_refused(tmp_path, capsys, files):
    fails(
        _import(files["weights"], tmp_path / "w.safetensors"),
        capsys,
        names=("already a doublewin weights file",),
        watch=tmp_path,
    )


def test_import_refuses_other_weights_at_out_and_says_an_identical_one_is_there(
    tmp_path, capsys, files, checkpoint
):
    out = tmp_path / "w.safetensors"
    out.write_bytes(files["weights"].read_bytes())  # another model's weights
    fails(_import(checkpoint, out), capsys, names=("other weights already there",), watch=tmp_path)
    out.unlink()
    main([str(a) for a in _import(checkpoint, out, "--json")])
    capsys.readouterr()
    before = out.stat().st_mtime_ns
    main([str(a) for a in _import(checkpoint, out)])
    assert capsys.readouterr().out.startswith(f"{out}: already imported")
    assert out.stat().st_mtime_ns == before


def test_an_eps_outside_pixel_units_is_refused(tmp_path, capsys, checkpoint):
    fails(
        _import(checkpoint, tmp_path / "w.safetensors", "--eps", "300/255"),
        capsys,
        names=("--eps", "pixel units"),
        watch=tmp_path,
    )
    fails(
        _import(checkpoint, tmp_path / "w.safetensors", "--eps", "nan"),
        capsys,
        names=("--eps",),
        watch=tmp_path,
    )


# --- 13. CIFAR batches in every form, without running code ---------------------------------


def _py2_string(data: bytes) -> bytes:
    """Python 2's str: SHORT_BINSTRING under 256 bytes, else BINSTRING (opcodes Python 3
    never writes)."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def _py2_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    return b"M" + struct.pack("<H", value) if value < 65536 else b"J" + struct.pack("<i", value)


def _py2_batch(images: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR batch as the official files hold it: Python 2's cPickle at protocol 2, a dict
    of str keys, the images a numpy array rebuilt by ``numpy.core.multiarray._reconstruct``,
    the labels a list. Written opcode by opcode."""
    n, width = images.shape
    dtype = (
        b"cnumpy\ndtype\n"
        + _py2_string(b"u1")
        + _py2_int(0)
        + _py2_int(1)
        + b"\x87R"
        + b"("
        + _py2_int(3)
        + _py2_string(b"|")
        + b"NNN"
        + b"J\xff\xff\xff\xff" * 2
        + _py2_int(0)
        + b"tb"
    )
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + _py2_int(0)
        + b"\x85"
        + _py2_string(b"b")
        + b"\x87R"
        + b"("
        + _py2_int(1)
        + _py2_int(n)
        + _py2_int(width)
        + b"\x86"
        + dtype
        + b"\x89"
        + _py2_string(images.tobytes())
        + b"tb"
    )
    items = (
        _py2_string(b"batch_label")
        + _py2_string(b"training batch 1 of 5")
        + _py2_string(b"labels")
        + b"]("
        + b"".join(map(_py2_int, labels))
        + b"e"
        + _py2_string(b"data")
        + array
    )
    return b"\x80\x02}(" + items + b"u."


def _batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    images = np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)
    return images, [(seed + i) % 10 for i in range(n)]


@pytest.mark.parametrize("form", ["python2", 0, 1, 2, 3, 4, 5])
def test_every_form_of_a_cifar_batch_reads_the_same(form, tmp_path):
    images, labels = _batch(6, 3)
    path = tmp_path / "data_batch_1"
    if form == "python2":
        path.write_bytes(_py2_batch(images, labels))
    else:  # a copy re-saved by Python 3 (bytes keys, as pickle.load(encoding="bytes") gives)
        batch = {
            b"batch_label": b"training batch 1 of 5",
            b"labels": labels,
            b"data": images,
            b"filenames": [b"x.png"] * 6,
        }
        path.write_bytes(pickle.dumps(batch, protocol=form))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy 2 warns on the old module names: never read
        read, read_labels = read_cifar_batch(path, "labels", 10)
    assert np.array_equal(read.reshape(6, 3072).numpy(), images)
    assert read_labels.tolist() == labels


def test_a_python2_cifar_tree_trains_like_any_other(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):  # the five training batches in five different forms
        images, labels = _batch(6, b)
        data = (
            _py2_batch(images, labels)
            if b == 1
            else pickle.dumps({b"data": images, b"labels": labels}, protocol=b)
        )
        (folder / f"data_batch_{b}").write_bytes(data)
    (folder / "test_batch").write_bytes(_py2_batch(*_batch(4, 9)))
    splits = load_dataset("cifar10", tmp_path, val_size=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (27, 3, 4)


def test_a_codec_other_than_latin1_and_a_label_outside_the_classes_are_refused(tmp_path):
    sneaky = tmp_path / "codec"
    sneaky.write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(UserError, match="refusing _codecs.encode with 'rot13'"):
        read_cifar_batch(sneaky, "labels", 10)
    images, labels = _batch(3, 0)
    bad = tmp_path / "bad"
    bad.write_bytes(pickle.dumps({b"data": images, b"labels": [1, 57, 2]}))
    with pytest.raises(UserError, match="label 57 at position 1"):
        read_cifar_batch(bad, "labels", 10)


def test_a_cifar_label_outside_the_classes_stops_evaluate_in_one_line(tmp_path, capsys, files):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):
        images, labels = _batch(4, b)
        (folder / f"data_batch_{b}").write_bytes(pickle.dumps({b"data": images, b"labels": labels}))
    images, _ = _batch(4, 0)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": images, b"labels": [0, 57, 1, 2]}))
    fails(
        ["evaluate", "--weights", files["weights"], "--data", "cifar10", "--data-root", tmp_path],
        capsys,
        names=("test_batch", "label 57"),
        watch=tmp_path,
    )
