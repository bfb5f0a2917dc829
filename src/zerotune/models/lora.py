"""LoRA: low-rank adapters on frozen weights (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
Language Models").

A target layer computes ``W x + (alpha / r) * B A x`` with ``A`` (r x in) random and ``B``
(out x r) zero, so training starts from exactly the base model. Transformers models get their
adapters through peft; our own models' Linear and Conv2d layers through the two small wrappers
below. Either way the adapters can be merged into the weights (for export) or saved alone.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

DEFAULT_HF_TARGETS = ("query", "value")  # the attention projections of the LoRA paper
# A causal LM's attention and MLP projections: Llama/Qwen2/Mistral names, then GPT-2's.
CAUSAL_LM_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                     "c_attn", "c_proj", "c_fc")


class LoRALinear(nn.Module):
    """A Linear layer plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / rank
        self.dropout = nn.Dropout(dropout)
        self.enabled = True  # False: the base layer alone (`adapters_off`)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return self.base(x)
        # (B, ..., in) -> (B, ..., r) -> (B, ..., out)
        return self.base(x) + F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B) * self.scale

    def merged(self) -> nn.Linear:
        layer = nn.Linear(self.base.in_features, self.base.out_features, self.base.bias is not None,
                          device=self.base.weight.device)
        with torch.no_grad():
            layer.weight.copy_(self.base.weight + self.scale * self.lora_B @ self.lora_A)
            if self.base.bias is not None:
                layer.bias.copy_(self.base.bias)
        return layer


class LoRAConv2d(nn.Module):
    """A Conv2d plus a low-rank update: a conv to `rank` channels, then a 1x1 conv back."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float, dropout: float):
        super().__init__()
        if base.groups != 1:
            raise UserError("LoRA on a grouped convolution is not supported; leave it out of finetune.lora_targets")
        self.base = base
        k = base.kernel_size
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_channels, *k, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_channels, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / rank
        self.dropout = nn.Dropout(dropout)
        self.enabled = True  # False: the base layer alone (`adapters_off`)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.base
        if not self.enabled:
            return b(x)
        low = F.conv2d(self.dropout(x), self.lora_A, None, b.stride, b.padding, b.dilation)  # (B, r, H', W')
        return b(x) + F.conv2d(low, self.lora_B[:, :, None, None]) * self.scale

    def merged(self) -> nn.Conv2d:
        b = self.base
        layer = nn.Conv2d(b.in_channels, b.out_channels, b.kernel_size, b.stride, b.padding, b.dilation,
                          bias=b.bias is not None, padding_mode=b.padding_mode, device=b.weight.device)
        with torch.no_grad():
            layer.weight.copy_(b.weight + self.scale * torch.einsum("or,rikl->oikl", self.lora_B, self.lora_A))
            if b.bias is not None:
                layer.bias.copy_(b.bias)
        return layer


WRAPPERS = {nn.Linear: LoRALinear, nn.Conv2d: LoRAConv2d}


def is_transformer(model: nn.Module) -> bool:
    """Whether `model` is the pretrained-transformer classifier (without importing transformers for others)."""
    hf, lm = sys.modules.get("zerotune.models.hf"), sys.modules.get("zerotune.models.hf_lm")
    return (hf is not None and isinstance(model, hf.HFClassifier)) or (lm is not None and isinstance(model, lm.HFCausalLM))


def _matches(name: str, module: nn.Module, target: str) -> bool:
    return (name == target or name.endswith("." + target) or fnmatch.fnmatch(name, target)
            or type(module).__name__ == target)


def resolve_targets(root: nn.Module, targets, kinds: tuple[type, ...], where: str, prefix: str = "") -> list[str]:
    """Full names of the modules of `root` (under `prefix`) that the target names/globs/class names select.

    Raises:
        UserError: a target that matches no module of a supported kind.
    """
    candidates = [(n, m) for n, m in root.named_modules() if n.startswith(prefix) and n and isinstance(m, kinds)]
    chosen: list[str] = []
    for t in targets:
        hits = [n for n, m in candidates if _matches(n, m, t)]
        if not hits:
            shown = sorted({n.rsplit(".", 1)[-1] for n, _ in candidates}) if len(candidates) > 12 else [n for n, _ in candidates]
            raise UserError(f"finetune.lora_targets: {t!r} matches no {'/'.join(k.__name__ for k in kinds)} "
                            f"module of the {where}; names there: {', '.join(shown)}")
        chosen += [n for n in hits if n not in chosen]
    return chosen


def apply_lora(model: nn.Module, cfg) -> list[str]:
    """Add LoRA adapters to `model` in place, as `cfg` (a FinetuneConfig) describes.

    Returns:
        The names of the adapter parameters (the only ones that train besides the head).
    """
    if is_transformer(model):
        _apply_peft(model, cfg)
    else:
        features = getattr(model, "features", None)
        if not isinstance(features, nn.Module):
            raise UserError("LoRA needs a model with `features` (the part the adapters go into)")
        # By default every Linear and Conv2d of the features: only the kinds the model has.
        targets = cfg.lora_targets or [k.__name__ for k in WRAPPERS if any(type(m) is k for m in features.modules())]
        names = resolve_targets(model, targets, tuple(WRAPPERS), "model's features", prefix="features.")
        for name in names:
            parent, _, child = name.rpartition(".")
            owner = model.get_submodule(parent)
            base = getattr(owner, child)
            setattr(owner, child, WRAPPERS[type(base)](base, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout))
    return [n for n, _ in model.named_parameters() if "lora_" in n]


def _apply_peft(model: nn.Module, cfg) -> None:
    from peft import LoraConfig, get_peft_model

    backbone = model.features.backbone
    targets = cfg.lora_targets or _default_targets(model, backbone)
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding)
    try:  # transformers' GPT-2 style Conv1D is a Linear in disguise
        from transformers.pytorch_utils import Conv1D

        kinds += (Conv1D,)
    except ImportError:
        pass
    names = resolve_targets(backbone, targets, kinds, "pretrained encoder")
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=names, bias="none")
    with warnings.catch_warnings():  # peft asks transformers about a renamed attribute; not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", "fan_in_fan_out", UserWarning)  # GPT-2's Conv1D: peft transposes it itself
        model.features.backbone = get_peft_model(backbone, lora)


def _default_targets(model: nn.Module, backbone: nn.Module) -> list[str]:
    """query/value of an encoder; every attention and MLP projection a causal LM has."""
    if not hasattr(model, "hf_model"):
        return list(DEFAULT_HF_TARGETS)
    leaves = {n.rsplit(".", 1)[-1] for n, _ in backbone.named_modules()}
    return [t for t in CAUSAL_LM_TARGETS if t in leaves]


def is_lora(config) -> bool:
    """Whether a run's model carries unmerged LoRA adapters."""
    ft = config.finetune
    return ft is not None and ft.source is not None and ft.strategy == "lora" and not ft.merged


def merge_into_base(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight, leaving a plain model of the original structure."""
    if is_transformer(model):
        from peft import PeftModel

        if isinstance(model.features.backbone, PeftModel):
            model.features.backbone = model.features.backbone.merge_and_unload()
        return model
    for name, m in list(model.named_modules()):
        if isinstance(m, (LoRALinear, LoRAConv2d)):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, m.merged())
    return model


@contextlib.contextmanager
def adapters_off(model: nn.Module):
    """`model` as its base model while the block runs: every LoRA adapter bypassed, none removed.

    Preference tuning takes its reference from this instead of a second copy of the model. A
    transformers model goes through peft's ``disable_adapter``; our wrappers through their ``enabled``.
    """
    backbone = getattr(getattr(model, "features", None), "backbone", None)
    if is_transformer(model) and hasattr(backbone, "disable_adapter"):
        with backbone.disable_adapter():
            yield model
        return
    wrappers = [m for m in model.modules() if isinstance(m, (LoRALinear, LoRAConv2d))]
    for m in wrappers:
        m.enabled = False
    try:
        yield model
    finally:
        for m in wrappers:
            m.enabled = True


def has_adapters(model: nn.Module) -> bool:
    """Whether `model` carries LoRA adapters (peft's or ours)."""
    return any("lora_" in n for n, _ in model.named_parameters())


def adapter_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters and the head: all that a LoRA fine-tune adds to its base model."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if "lora_" in n or n.startswith("head.")}
