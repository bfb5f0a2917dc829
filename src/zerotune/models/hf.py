"""A pretrained Hugging Face transformers encoder with a sequence-classification head on top.

The encoder is any ``AutoModel`` in a directory on disk (BERT, "BERT: Pre-training of Deep
Bidirectional Transformers", Devlin et al. 2019, and its relatives such as MiniLM, Wang et al.
2020), loaded offline. Sentences are pooled (mean over tokens, as sentence-transformers does, or
the first token) and a linear head gives the class logits.

Inputs are token ids in one int64 tensor, right-padded with -1. The model cuts each batch to
its longest sequence before the encoder runs (dynamic padding without a collate step), so the
loop can slice batches from one in-memory tensor like any other data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from ..errors import UserError
from .hf_logging import quiet_transformers  # noqa: F401 - imported from here by the other transformers modules
from .registry import Size, register_model

PAD = -1  # marks padding in token-id tensors; never a real token id

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")


@dataclass(config=ConfigDict(extra="forbid"))
class HFConfig:
    path: str = ""  # pretrained directory or alias; a run rebuilds from its own hf/ copy
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float = Field(0.1, ge=0, lt=1)  # before the head
    pretrained: bool = True  # load the directory's weights (False: architecture only)
    # Keep only the first N transformer layers: a smaller model that starts from the pretrained
    # one's lower layers (as DistilBERT does), e.g. a student for `zerotune distill`.
    layers: Size | None = None


def resolve_pretrained(path: str) -> Path:
    """The transformers directory a pretrained model's name, directory or GGUF file names.

    A catalogue name (`models.pretrained`) gives its installed directory; a ``.gguf`` file gives
    the directory dequantized from it (made once, see `models.gguf_source`).

    Raises:
        UserError: a name not installed, a path that is none of these, or a directory without config.json.
    """
    from .pretrained import known_names, lookup, resolve

    entry = lookup(path)
    if entry is not None:
        return resolve(entry)
    p = Path(path).expanduser()
    if p.suffix.lower() == ".gguf" and not p.is_dir():
        from .gguf_source import dequantized

        return dequantized(p)
    if not p.is_dir():
        raise UserError(f"pretrained model {path!r} is neither a directory, a .gguf file nor a known name "
                        f"({', '.join(known_names())})")
    if not (p / "config.json").is_file():
        raise UserError(f"{p} is not a transformers model directory: it has no config.json")
    return p


def check_weights(directory: Path) -> None:
    if not any((directory / f).is_file() for f in WEIGHT_FILES):
        raise UserError(f"pretrained directory {directory} has no weights (expected one of: {', '.join(WEIGHT_FILES)})")


def check_tokenizer(directory: Path) -> None:
    if not any((directory / f).is_file() for f in TOKENIZER_FILES):
        raise UserError(f"pretrained directory {directory} has no tokenizer (expected one of: {', '.join(TOKENIZER_FILES)})")


class TextEncoder(nn.Module):
    """Token ids (B, T) -> pooled sentence features (B, H)."""

    def __init__(self, backbone: nn.Module, pooling: str, dropout: float):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.pad_id = int(getattr(backbone.config, "pad_token_id", None) or 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x != PAD  # (B, T)
        # A trace or an export keeps the full width: the cut depends on the data, which a graph cannot.
        if not (torch.jit.is_tracing() or torch.compiler.is_exporting()):
            longest = max(int(mask.sum(1).max()), 1) if x.numel() else 1
            x, mask = x[:, :longest], mask[:, :longest]  # dynamic padding: (B, L)
        ids = torch.where(mask, x, torch.full_like(x, self.pad_id)).long()
        hidden = self.backbone(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, L, H)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, H)
        return self.dropout(pooled)


class HFClassifier(nn.Module):
    """`features`: the encoder and pooling; `head`: a linear layer of class logits."""

    def __init__(self, backbone: nn.Module, cfg: HFConfig, num_outputs: int):
        super().__init__()
        self.features = TextEncoder(backbone, cfg.pooling, cfg.dropout)
        self.head = nn.Linear(backbone.config.hidden_size, num_outputs)  # (B, H) -> (B, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def load_backbone(directory: Path, pretrained: bool) -> nn.Module:
    """An ``AutoModel`` from a local directory, with no network access and without its pooler.

    The pooler (a dense layer on the first token, trained for next-sentence prediction) is dropped:
    the classifier pools on its own, and parameters that never get a gradient would only blur the
    trainable/frozen counts.
    """
    quiet_transformers()
    from transformers import AutoConfig, AutoModel

    try:
        if pretrained:
            check_weights(directory)
            model = AutoModel.from_pretrained(str(directory), local_files_only=True)
        else:
            model = AutoModel.from_config(AutoConfig.from_pretrained(str(directory), local_files_only=True))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load a transformers model from {directory}: {str(e).splitlines()[0]}") from None
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model.float()


@register_model("hf", HFConfig, "pretrained transformers encoder (model.path) + linear classification head",
                input_kind="tokens")
def build_hf(cfg: HFConfig, input_shape, num_outputs):
    if not cfg.path:
        raise UserError("model 'hf' needs model.path: a pretrained transformers directory or an alias (minilm-l6)")
    if len(input_shape) != 1:
        raise UserError(f"model 'hf' reads token ids (text data); the data has examples of shape {tuple(input_shape)}")
    backbone = load_backbone(resolve_pretrained(cfg.path), cfg.pretrained)
    if cfg.layers is not None:
        keep_layers(backbone, cfg.layers)
    return HFClassifier(backbone, cfg, num_outputs)


def keep_layers(backbone: nn.Module, n: int) -> None:
    """Cut an encoder (BERT-style ``encoder.layer``) down to its first `n` layers, in place."""
    layers = getattr(getattr(backbone, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise UserError(f"model.layers needs a BERT-style encoder (encoder.layer); "
                        f"{type(backbone).__name__} has none")
    if n > len(layers):
        raise UserError(f"model.layers is {n}, the model has only {len(layers)} layers")
    backbone.encoder.layer = layers[:n]
    backbone.config.num_hidden_layers = n
