"""User-typed values: fractions for ε, device names."""

from __future__ import annotations

import pytest
import torch

from doublewin.core.errors import UserError
from doublewin.core.parsing import parse_number, resolve_device


@pytest.mark.parametrize(
    ("text", "value"),
    [("8/255", 8 / 255), ("0.5", 0.5), ("2e-4", 2e-4), (" 16/ 765 ", 16 / 765), (3, 3.0)],
)
def test_numbers_and_fractions_parse(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["eight", "8/", "8/0", "1/2/3", ""])
def test_non_numbers_are_errors_naming_the_option(text):
    with pytest.raises(UserError, match="--eps"):
        parse_number(text, name="--eps")


def test_auto_device_is_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_unknown_device_name_is_an_error():
    with pytest.raises(UserError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_cuda_without_a_gpu_says_use_cpu():
    with pytest.raises(UserError, match="use --device cpu"):
        resolve_device("cuda:0")
