"""Architectures (normalization inside; doublewin's, timm's and torchvision's by name), their
heads, weights files and importers."""

from doublewin.models.architectures import (
    ARCHITECTURES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ArchInfo,
    arch_info,
    build_model,
    get_normalization,
    list_architectures,
    normalize_inputs,
    normalizes_inside,
    set_normalization,
)
from doublewin.models.heads import head_module, head_name, replace_head
from doublewin.models.weights import (
    WeightsMeta,
    content_hash,
    load_model,
    load_strict,
    load_weights,
    read_content_hash,
    read_weights_header,
    read_weights_meta,
    save_weights,
)

__all__ = [
    "ARCHITECTURES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ArchInfo",
    "WeightsMeta",
    "arch_info",
    "build_model",
    "content_hash",
    "get_normalization",
    "head_module",
    "head_name",
    "list_architectures",
    "load_model",
    "load_strict",
    "load_weights",
    "normalize_inputs",
    "normalizes_inside",
    "read_content_hash",
    "read_weights_header",
    "read_weights_meta",
    "replace_head",
    "save_weights",
    "set_normalization",
]
