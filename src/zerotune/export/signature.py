"""What a run's model takes as input: the one place where that is decided for export and serving.

A run's data splits hold *native* batches, the form its PyTorch model takes:

- ``array``: float32 (B, *input_shape), normalised (images, tables);
- ``text``: int64 token ids (B, T), right-padded with -1 (data/text.py), for a transformer classifier;
- ``lm``: int64 token ids (B, T), every position a real token (a decoder-only language model).

An exported graph takes named tensors instead, with free axes:

| kind  | graph inputs                                        | output                          |
|-------|-----------------------------------------------------|---------------------------------|
| array | ``input`` float32 [batch, *input_shape]             | ``logits`` [batch, C]           |
| text  | ``input_ids``, ``attention_mask`` int64 [batch, sequence] (what a tokenizer returns) | ``logits`` [batch, C] |
| lm    | ``input_ids`` int64 [batch, sequence <= block_size] | ``logits`` [batch, sequence, V] |

A `Signature` turns native batches into those tensors (`tensors`, `feeds`), wraps a model so its
forward takes them (`wrap`), gives the exporters an example and the dynamic axes (`example`),
draws stand-in inputs when the run's data is gone (`noise`) and joins native batches of different
widths for the server's micro-batcher (`concat`). `signature_for` picks the kind of a run;
`signature_from_dict` rebuilds it from an export's sidecar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data.bundle import CHAT_TASKS
from ..data.text import PAD  # the padding of native token-id batches

OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class TensorSpec:
    """One named graph tensor; symbolic dimensions are strings ("batch", "sequence")."""

    name: str
    dtype: str
    shape: list

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass
class ExampleInputs:
    """What an exporter needs: example arguments, their names and which of their axes are free."""

    args: tuple[torch.Tensor, ...]
    names: list[str]
    dynamic_shapes: tuple[dict, ...]  # per argument: {axis: torch.export.Dim}
    output_names: list[str]


class Signature:
    """The input signature of one kind of run (see the module docstring)."""

    kind: str = "array"
    native_dtype: type = np.float32

    @property
    def inputs(self) -> list[TensorSpec]:
        raise NotImplementedError

    @property
    def output(self) -> TensorSpec:
        raise NotImplementedError

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    def native(self, x) -> np.ndarray:
        """A native batch as a contiguous array of the native dtype."""
        return np.ascontiguousarray(x, dtype=self.native_dtype)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` (taking native batches) as a module whose forward takes the graph inputs."""
        return model

    def feeds(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """A native batch as the graph's named inputs (for onnxruntime)."""
        raise NotImplementedError

    def tensors(self, x: np.ndarray) -> tuple[torch.Tensor, ...]:
        """A native batch as the graph's inputs, in order (for TorchScript and wrapped models)."""
        return tuple(torch.from_numpy(v) for v in self.feeds(x).values())

    def example(self, x: np.ndarray) -> ExampleInputs:
        """Example graph inputs from native examples, with the batch (and sequence) axes free."""
        raise NotImplementedError

    def noise(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` seeded stand-in native inputs, for parity checks when the run's data is gone."""
        raise NotImplementedError

    def concat(self, batches: list[np.ndarray]) -> np.ndarray:
        """Native batches joined into one (padded to the widest where examples vary in length)."""
        return np.concatenate(batches)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The free axes of every graph input, by name: ``{"input": {0: "batch"}}``."""
        return {s.name: {i: d for i, d in enumerate(s.shape) if isinstance(d, str)} for s in self.inputs}

    def to_dict(self) -> dict:
        """The sidecar's description of the graph's inputs and output."""
        return {"kind": self.kind, "tensors": [s.to_dict() for s in self.inputs], "output": self.output.to_dict()}


def _at_least_two(x: np.ndarray) -> np.ndarray:
    # Two examples, so the exporter does not specialise the batch axis to 1.
    x = x[:2]
    return np.concatenate([x, x])[:2] if len(x) == 1 else x


class ArraySignature(Signature):
    """Float arrays of a fixed shape: one input ``input``, free batch axis."""

    kind = "array"
    native_dtype = np.float32

    def __init__(self, input_shape: list[int], num_outputs: int):
        self.input_shape = list(input_shape)
        self.num_outputs = num_outputs

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("input", "float32", ["batch", *self.input_shape])]

    @property
    def output(self) -> TensorSpec:
        return TensorSpec(OUTPUT_NAME, "float32", ["batch", self.num_outputs])

    def feeds(self, x):
        return {"input": self.native(x)}

    def example(self, x):
        args = (torch.from_numpy(self.native(_at_least_two(x))),)
        return ExampleInputs(args, self.input_names, ({0: torch.export.Dim("batch")},), [OUTPUT_NAME])

    def noise(self, n, seed=0):
        # N(0, 1): the distribution normalised inputs have, so the model runs in its trained range.
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, *self.input_shape, generator=g).numpy()


class TokenInputs(nn.Module):
    """Takes ``input_ids`` and ``attention_mask`` (as a tokenizer returns them) and hands the wrapped
    model its native form: token ids with -1 wherever the mask is 0."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids = torch.where(attention_mask != 0, input_ids, torch.full_like(input_ids, PAD))  # (B, T)
        return self.model(ids)


def _widest(x: np.ndarray) -> int:
    """The width of a right-padded token batch once the columns that are padding in every row go."""
    used = np.flatnonzero((x != PAD).any(axis=0))
    return int(used[-1]) + 1 if used.size else 1


class TextSignature(Signature):
    """Tokenised text for a classifier: ``input_ids`` and ``attention_mask``, free batch and sequence axes.

    Native batches are cut to their longest sequence before they reach a graph: the same dynamic
    padding the model applies in training, so an exported graph sees the widths it will see in service.
    """

    kind = "text"
    native_dtype = np.int64

    def __init__(self, num_outputs: int, vocab_size: int | None = None, max_length: int | None = None):
        self.num_outputs = num_outputs
        self.vocab_size = vocab_size
        self.max_length = max_length

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("input_ids", "int64", ["batch", "sequence"]),
                TensorSpec("attention_mask", "int64", ["batch", "sequence"])]

    @property
    def output(self) -> TensorSpec:
        return TensorSpec(OUTPUT_NAME, "float32", ["batch", self.num_outputs])

    def wrap(self, model):
        return TokenInputs(model)

    def feeds(self, x):
        x = self.native(x)
        x = x[:, :_widest(x)]
        mask = x != PAD
        # Padded positions get id 0; the mask tells the model to ignore them whatever their id.
        return {"input_ids": np.where(mask, x, 0), "attention_mask": mask.astype(np.int64)}

    def example(self, x):
        x = self.native(_at_least_two(x))
        x = x[:, :_widest(x)]
        if x.shape[1] < 2:  # a sequence axis of 1 would be specialised too; add a padding column
            x = np.concatenate([x, np.full((len(x), 1), PAD, np.int64)], axis=1)
        mask = x != PAD
        args = (torch.from_numpy(np.where(mask, x, 0)), torch.from_numpy(mask.astype(np.int64)))
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        return ExampleInputs(args, self.input_names, ({0: batch, 1: seq}, {0: batch, 1: seq}), [OUTPUT_NAME])

    def noise(self, n, seed=0):
        rng = np.random.default_rng(seed)
        width = max(2, min(self.max_length or 16, 16))
        ids = rng.integers(0, self.vocab_size or 2, size=(n, width), dtype=np.int64)
        lengths = rng.integers(2, width + 1, size=n)
        ids[np.arange(width)[None, :] >= lengths[:, None]] = PAD
        return ids

    def concat(self, batches):
        if len(batches) == 1:
            return batches[0]
        width = max(b.shape[1] for b in batches)
        out = np.full((sum(len(b) for b in batches), width), PAD, dtype=np.int64)
        row = 0
        for b in batches:
            out[row:row + len(b), :b.shape[1]] = b
            row += len(b)
        return out

    def to_dict(self):
        return {**super().to_dict(), "vocab_size": self.vocab_size, "max_length": self.max_length,
                "padding": "attention_mask 0 marks padding; sequences may be padded to any common length"}


class LMSignature(Signature):
    """Token ids for a decoder-only language model: ``input_ids`` [batch, sequence <= block_size] in,
    ``logits`` [batch, sequence, vocab] out."""

    kind = "lm"
    native_dtype = np.int64

    def __init__(self, block_size: int, vocab_size: int | None = None):
        self.block_size = block_size
        self.vocab_size = vocab_size

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec("input_ids", "int64", ["batch", "sequence"])]

    @property
    def output(self) -> TensorSpec:
        return TensorSpec(OUTPUT_NAME, "float32", ["batch", "sequence", self.vocab_size or "vocab"])

    def feeds(self, x):
        return {"input_ids": self.native(x)}

    def example(self, x):
        x = self.native(_at_least_two(x))
        # The position table has block_size rows: longer sequences cannot run.
        seq = torch.export.Dim("sequence", max=self.block_size)
        return ExampleInputs((torch.from_numpy(x),), self.input_names, ({0: torch.export.Dim("batch"), 1: seq},),
                             [OUTPUT_NAME])

    def noise(self, n, seed=0):
        rng = np.random.default_rng(seed)
        return rng.integers(0, self.vocab_size or 2, size=(n, self.block_size), dtype=np.int64)

    def to_dict(self):
        return {**super().to_dict(), "vocab_size": self.vocab_size, "block_size": self.block_size}


def vocab_size_of(model: nn.Module | None) -> int | None:
    """The number of rows of a model's first embedding table (its token vocabulary), if it has one."""
    if model is None:
        return None
    emb = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    return int(emb.num_embeddings) if emb is not None else None


def max_positions_of(model: nn.Module | None) -> int | None:
    """The longest sequence a transformers model's position table allows (``max_position_embeddings``)."""
    if model is None:
        return None
    for m in model.modules():
        n = getattr(getattr(m, "config", None), "max_position_embeddings", None)
        if isinstance(n, int) and n > 0:
            return n
    return None


def signature_for(meta, model: nn.Module | None = None, max_length: int | None = None) -> Signature:
    """The input signature of a run, decided from its data metadata.

    Args:
        meta: the run's DataMeta: ``task == "lm"`` or one of CHAT_TASKS gives "lm", data from text files (source "text")
            give "text", anything else "array".
        model: the run's model, for the vocabulary size (stand-in token inputs draw ids below it).
        max_length: text: the truncation length the run's data used (``data.max_length``); capped at
            the model's position table, so no text a client sends can index past it.
    """
    if meta.task == "lm":
        return LMSignature(int(meta.input_shape[0]), getattr(meta, "vocab_size", None) or vocab_size_of(model))
    if meta.task in CHAT_TASKS:  # an instruction- or preference-tuned causal LM: any length up to its context, not data.max_length
        context = getattr(model, "block_size", None) or max_positions_of(model) or int(meta.input_shape[0])
        return LMSignature(int(context), vocab_size_of(model))
    if meta.source == "text":
        limits = [n for n in (max_length, max_positions_of(model)) if n]
        return TextSignature(meta.num_outputs, vocab_size_of(model), min(limits) if limits else None)
    return ArraySignature(list(meta.input_shape), meta.num_outputs)


def signature_from_dict(d: dict | None, meta) -> Signature:
    """The signature an export's sidecar describes (sidecars without a ``kind`` are arrays)."""
    d = d or {}
    kind = d.get("kind", "array")
    if kind == "text":
        return TextSignature(meta.num_outputs, d.get("vocab_size"), d.get("max_length"))
    if kind == "lm":
        return LMSignature(int(d.get("block_size") or meta.input_shape[0]), d.get("vocab_size"))
    return ArraySignature(list(meta.input_shape), meta.num_outputs)
