"""A local Hugging Face causal language model (Llama, Qwen2, GPT-2, ... through ``AutoModelForCausalLM``).

Loaded offline (``local_files_only``) and never with ``trust_remote_code``: only architectures
that transformers itself ships can be built. The model maps token ids (B, T) to next-token logits
(B, T, V) like our own GPT, so the training loop, the instruction-tuning task and the sampler
treat both the same way. Batches are right-padded, so padding never changes the logits of the
tokens before it in a causal model and no attention mask is needed. A training batch may come as
`PackedRows` (``sft.packing``): several examples per row, logits only where the loss reads them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass
from torch import nn

from ..errors import UserError
from .packed import PackedRows
from .registry import register_model


@dataclass(config=ConfigDict(extra="forbid"))
class HFLMConfig:
    path: str = ""  # the model directory; a run rebuilds from its own hf/ copy
    pretrained: bool = True  # load the directory's weights (False: architecture only, weights from a checkpoint)


class CausalBackbone(nn.Module):
    """Holds the transformers model as ``backbone`` (where LoRA's peft wrapper goes, as for the encoder)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, ids: torch.Tensor | PackedRows) -> torch.Tensor:
        if isinstance(ids, PackedRows):
            return self.kept_logits(ids)
        return self.backbone(input_ids=ids, use_cache=False).logits  # (B, T, V)

    def kept_logits(self, rows: PackedRows) -> torch.Tensor:
        """(N, V) logits of the kept positions of packed rows, in row-major order.

        The decoder runs alone (the adapters of a peft model sit inside it) and the output layer sees
        only the kept hidden states. A model whose head does more than project (a logit scale or
        soft-capping) gets its full logits, then the kept ones.
        """
        ids = rows.ids.long()
        get_base = getattr(self.backbone, "get_base_model", None)
        model = get_base() if get_base is not None else self.backbone
        config = model.config.get_text_config()
        if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
            return self.backbone(input_ids=ids, position_ids=rows.positions, use_cache=False).logits[rows.keep]
        hidden = model.base_model(input_ids=ids, position_ids=rows.positions, use_cache=False).last_hidden_state
        return model.get_output_embeddings()(hidden[rows.keep])  # (N, C) -> (N, V)


class HFCausalLM(nn.Module):
    """Token ids (B, T) -> logits (B, T, V) of a transformers causal LM kept in ``features.backbone``."""

    reads_packed_rows = True  # sft.packing: its training batches may come as PackedRows

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.features = CausalBackbone(backbone)

    @property
    def hf_model(self) -> nn.Module:
        """The transformers model (a peft model once LoRA adapters are attached): ``generate`` lives here."""
        return self.features.backbone

    def forward(self, ids: torch.Tensor | PackedRows) -> torch.Tensor:
        return self.features(ids if isinstance(ids, PackedRows) else ids.long()).float()

    def layer_groups(self) -> list[tuple[str, list[str]]]:
        """Embeddings, one group per decoder layer, then the head (final norm and output projection)."""
        names = [n for n, _ in self.named_parameters()]
        layers = _decoder_layers(self.hf_model)
        blocks, covered = [], set()
        for i, layer in enumerate(layers):
            own = {id(p) for p in layer.parameters()}
            group = [n for n, p in self.named_parameters() if id(p) in own]
            blocks.append((f"layers.{i}", group))
            covered.update(group)
        first = min((names.index(g[0]) for _, g in blocks if g), default=len(names))
        stem = [n for n in names[:first] if n not in covered]
        head = [n for n in names[first:] if n not in covered]
        return [("embeddings", stem), *blocks, ("head", head)]


def _decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of decoder layers (``model.layers`` of Llama/Qwen2, ``transformer.h`` of GPT-2)."""
    best = None
    for _, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and (best is None or len(m) > len(best)):
            best = m
    if best is None:
        raise UserError(f"cannot find the decoder layers of {type(model).__name__}")
    return best


def load_causal_lm(directory: Path, pretrained: bool) -> nn.Module:
    """An ``AutoModelForCausalLM`` from a local directory: no network, no remote code."""
    from .hf import check_weights, quiet_transformers

    quiet_transformers()
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        if pretrained:
            check_weights(directory)
            model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True,
                                                         trust_remote_code=False, torch_dtype=torch.float32)
        else:
            config = AutoConfig.from_pretrained(str(directory), local_files_only=True, trust_remote_code=False)
            model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot load a causal language model from {directory}: {str(e).splitlines()[0]}") from None
    return model.float()


@register_model("hf_lm", HFLMConfig, "local transformers causal language model (model.path), for instruction tuning",
                input_kind="tokens")
def build_hf_lm(cfg: HFLMConfig, input_shape, num_outputs):
    from .hf import resolve_pretrained

    if not cfg.path:
        raise UserError("model 'hf_lm' needs model.path: a local transformers causal language model directory")
    model = HFCausalLM(load_causal_lm(resolve_pretrained(cfg.path), cfg.pretrained))
    vocab = model.hf_model.get_output_embeddings().weight.shape[0]
    if num_outputs != vocab:
        raise UserError(f"model 'hf_lm' at {cfg.path} has {vocab} output tokens; the data needs {num_outputs}")
    return model
