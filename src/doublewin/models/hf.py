"""Hugging Face encoders (BERT, RoBERTa, DistilBERT) for standard transfer on text.

A local checkpoint folder (``config.json`` and ``model.safetensors``, as ``save_pretrained``
writes; a vocabulary beside it for the tokenizer) is read with ``transformers`` into its
``…ForSequenceClassification`` model, the pre-training heads dropped and a fresh classifier
drawn. Its class is swapped for a subclass whose ``forward`` takes token ids alone (the
attention mask is where the ids are not padding), so the training engine, the tickets and
the verdict treat it like any classifier; its state-dict keys stay Hugging Face's.

Tickets prune BERT-Tickets' set (Chen et al. 2020): the attention (query, key, value, output)
and feed-forward weights of the encoder, never the embeddings, LayerNorm, pooler or classifier
(tickets/mask.py, ``scope.layers: transformer``). Adversarial robustness of text models is out
of scope: text is transferred with standard training and reports SA only.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core.errors import UserError
from doublewin.core.paths import HF_CONFIG, HF_WEIGHTS

FAMILIES = ("bert", "roberta", "distilbert")
ARCH_PREFIX = "huggingface/"


def _transformers():
    try:
        # deferred: transformers is an optional extra (pip install doublewin[nlp])
        import transformers
    except ImportError:
        raise UserError(
            "Hugging Face checkpoints need transformers; pip install 'doublewin[nlp]'"
        ) from None
    return transformers


def read_config(folder: Path) -> dict[str, Any]:
    """The checkpoint's config.json, its family checked."""
    path = folder / HF_CONFIG
    if not path.is_file():
        raise UserError(
            f"{folder}: no config.json; pass the folder save_pretrained wrote (config.json "
            "and model.safetensors)"
        )
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{path}: not JSON ({exc}); pass the checkpoint's own config.json"
        ) from None
    family = str(config.get("model_type", ""))
    if family not in FAMILIES:
        raise UserError(
            f"{folder}: a {family or 'unknown'} checkpoint; the huggingface import reads "
            f"BERT-family encoders ({', '.join(FAMILIES)})"
        )
    return config


def load_encoder(folder: str | Path, num_classes: int = 2) -> tuple[nn.Module, dict[str, Any]]:
    """The checkpoint's encoder with a fresh ``num_classes`` classifier, and its config."""
    folder = Path(folder)
    config = read_config(folder)
    transformers = _transformers()
    if not (folder / HF_WEIGHTS).is_file():
        raise UserError(
            f"{folder}: no model.safetensors; save the checkpoint with safe_serialization "
            "(pickled .bin weights are not read)"
        )
    model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(folder),
        num_labels=num_classes,
        local_files_only=True,
        output_loading_info=True,
        use_safetensors=True,
    )
    missing = [
        k for k in info.get("missing_keys", []) if "classifier" not in k and "pooler" not in k
    ]
    if missing:
        raise UserError(
            f"{folder}: {len(missing)} encoder weights missing from the checkpoint (e.g. "
            f"{missing[0]}); pass a complete {config['model_type']} checkpoint"
        )
    return text_classifier(model), dict(model.config.to_dict())


def build_from_config(config: dict[str, Any], num_classes: int) -> nn.Module:
    """The same network, randomly initialized, from a config a weights file recorded."""
    transformers = _transformers()
    cfg = transformers.AutoConfig.for_model(**{**config, "num_labels": num_classes})
    return text_classifier(transformers.AutoModelForSequenceClassification.from_config(cfg))


def text_classifier(model: nn.Module) -> nn.Module:
    """``model`` with ``forward(input_ids) → logits``."""
    model.__class__ = _token_class(type(model))
    model.pad_id = int(getattr(model.config, "pad_token_id", 0) or 0)
    model.arch = ARCH_PREFIX + str(model.config.model_type)
    return model


@functools.cache
def _token_class(base: type[nn.Module]) -> type[nn.Module]:
    def forward(self: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_id).long()
        return base.forward(self, input_ids=input_ids, attention_mask=mask).logits

    return type(f"Tokens{base.__name__}", (base,), {"forward": forward, "__module__": __name__})


def read_glue_tsv(
    path: str | Path, checkpoint: str | Path, *, max_length: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """A GLUE-style TSV (a header with ``sentence`` and ``label`` columns, SST-2's layout) as
    (token ids [N, max_length], labels [N]), tokenized with the checkpoint's vocabulary."""
    path = Path(path)
    lines = path.read_text().splitlines() if path.is_file() else []
    if len(lines) < 2:
        raise UserError(f"{path}: not a TSV with a header and rows; pass a GLUE-style .tsv file")
    header = lines[0].split("\t")
    if "sentence" not in header or "label" not in header:
        raise UserError(
            f"{path}: its header {header} lacks sentence and label columns (SST-2 layout)"
        )
    s, y = header.index("sentence"), header.index("label")
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    tokenizer = _transformers().AutoTokenizer.from_pretrained(
        str(checkpoint), local_files_only=True
    )
    encoded = tokenizer(
        [r[s] for r in rows],
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return encoded["input_ids"], torch.tensor([int(r[y]) for r in rows])
