"""Layer groups of a model and which of them train at each epoch.

A model is seen as blocks from input to output, then the head. The blocks are the children
(with parameters) of the largest `nn.Sequential` / `nn.ModuleList` inside `model.features`:
the conv/linear layers of our CNN and MLP, the residual blocks of the ResNet, the transformer
layers of a Hugging Face encoder. Parameters of `features` outside that container form a "stem"
group (e.g. embeddings) when they come before it, and join the last block when they come after.
A normalisation layer joins the block before it. A model may define ``layer_groups()`` returning
``[(name, [parameter names])]`` (head last) to say otherwise.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from torch import nn

from ..errors import UserError
from .unfreezing import unfrozen_blocks

NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


@dataclass(frozen=True)
class LayerGroup:
    name: str
    params: tuple[str, ...]


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """The model's groups from input to output; the last one is the head."""
    if hasattr(model, "layer_groups"):
        return [LayerGroup(n, tuple(ps)) for n, ps in model.layer_groups()]
    names = [n for n, _ in model.named_parameters()]
    head = tuple(n for n in names if n.startswith("head."))
    blocks: list[tuple[str, list[str]]] = []
    found = _block_container(model.features) if isinstance(getattr(model, "features", None), nn.Module) else None
    if found is not None:
        path, children = found
        label = path.rsplit(".", 1)[-1] if path else "features"
        for key, child in children:
            own = [f"features.{path + '.' if path else ''}{key}.{n}" for n, _ in child.named_parameters()]
            if isinstance(child, NORMS) and blocks:
                blocks[-1][1].extend(own)
            else:
                blocks.append((f"{label}.{key}", own))
    covered = {n for _, ps in blocks for n in ps} | set(head)
    rest = [n for n in names if n not in covered]
    if rest:
        first = min((names.index(ps[0]) for _, ps in blocks), default=len(names))
        before = [n for n in rest if names.index(n) < first]
        after = [n for n in rest if names.index(n) >= first]
        if after and blocks:
            blocks[-1][1].extend(after)
        elif after:
            before += after
        if before:
            blocks.insert(0, (_stem_name(before), before))
    groups = [LayerGroup(n, tuple(ps)) for n, ps in blocks if ps]
    return groups + [LayerGroup("head", head)]


def _block_container(features: nn.Module):
    """(path, [(child key, child)]) of the Sequential/ModuleList with the most parametrised children."""
    best, best_count = None, 0
    for path, m in features.named_modules():
        if isinstance(m, (nn.Sequential, nn.ModuleList)):
            kids = [(k, c) for k, c in m.named_children() if any(True for _ in c.parameters())]
            count = sum(1 for _, c in kids if not isinstance(c, NORMS))
            if count > best_count:
                best, best_count = (path, kids), count
    return best


def _stem_name(params: list[str]) -> str:
    parts = params[0].split(".")
    # skip wrappers such as features.backbone.base_model.model to reach e.g. "embeddings"
    for p in parts[1:]:
        if p not in ("backbone", "base_model", "model"):
            return p
    return "stem"


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, frozen) numbers of parameter elements, by requires_grad."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters()) - trainable


class FreezePlan:
    """Which parameters train in each epoch: a pure function of the epoch and the config.

    Args:
        model: the model (after LoRA adapters were added, if any).
        cfg: the FinetuneConfig.
        adapter_params: names of LoRA parameters (strategy "lora").
    """

    def __init__(self, model: nn.Module, cfg, adapter_params: list[str] | tuple[str, ...] = ()):
        self.cfg = cfg
        self.groups = layer_groups(model)
        self.blocks, self.head = self.groups[:-1], self.groups[-1]
        self.all = tuple(n for n, _ in model.named_parameters())
        self.adapters = frozenset(adapter_params)
        # A language model being instruction-tuned keeps its head frozen under LoRA (finetune/sft.py).
        self.lora_head = not getattr(model, "lora_freezes_head", False)
        self.always_frozen = frozenset(n for n in self.all if any(fnmatch.fnmatch(n, p) for p in cfg.freeze_patterns))
        self.ever = self.trainable_at(10**9)
        if not self.ever:
            raise UserError(f"finetune: every parameter is frozen (strategy {cfg.strategy!r}"
                            + (f", freeze_patterns {cfg.freeze_patterns}" if cfg.freeze_patterns else "")
                            + (f", freeze_layers {cfg.freeze_layers}" if cfg.freeze_layers else "")
                            + "), so nothing is left to train")

    @property
    def unfreezes(self) -> bool:
        """Whether the parameters that train change from epoch to epoch (gradual unfreezing)."""
        return self.cfg.strategy == "gradual"

    def trainable_at(self, epoch: int) -> frozenset[str]:
        """Names of the parameters that train during `epoch` (0-based)."""
        cfg, head = self.cfg, set(self.head.params)
        if cfg.strategy == "full":
            names = set(self.all)
        elif cfg.strategy == "head":
            names = head
        elif cfg.strategy == "lora":
            names = (head if self.lora_head else set()) | self.adapters
        elif cfg.strategy == "gradual":
            k = unfrozen_blocks(epoch, len(self.blocks), cfg.unfreeze_every, cfg.unfreeze_start)
            names = head | {n for g in self.blocks[len(self.blocks) - k:] for n in g.params}
        else:  # partial
            names = head | {n for g in self._partial_blocks() for n in g.params}
        return frozenset(names - self.always_frozen)

    def stages(self, epochs: int) -> list[tuple[int, frozenset[str]]]:
        """(first epoch, names that train) for each change of the trainable set over `epochs` epochs.

        One stage for every strategy but "gradual", where each unfreezing starts a new one.
        """
        out: list[tuple[int, frozenset[str]]] = []
        for epoch in range(max(epochs, 1)):
            names = self.trainable_at(epoch)
            if not out or names != out[-1][1]:
                out.append((epoch, names))
        return out

    def _partial_blocks(self) -> list[LayerGroup]:
        cfg, n = self.cfg, len(self.blocks)
        if cfg.train_blocks is not None:
            return self.blocks[n - min(cfg.train_blocks, n):]
        bad = [i for i in cfg.freeze_layers if not -n <= i < n]
        if bad:
            raise UserError(f"finetune.freeze_layers {bad} out of range: the model has {n} blocks below the head "
                            f"({', '.join(f'{i}: {g.name}' for i, g in enumerate(self.blocks))})")
        frozen = {i % n for i in cfg.freeze_layers}
        return [g for i, g in enumerate(self.blocks) if i not in frozen]

    def apply(self, model: nn.Module, epoch: int | None) -> None:
        """Set requires_grad for `epoch`; None means every parameter that trains at some epoch.

        Batch-norm layers whose parameters are all frozen also stop updating their running
        statistics (eval mode), so a frozen block computes exactly what it did before.
        """
        names = self.ever if epoch is None else self.trainable_at(epoch)
        for n, p in model.named_parameters():
            p.requires_grad_(n in names)
        if epoch is None:
            return
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                ps = list(m.parameters())
                if ps and not any(p.requires_grad for p in ps):
                    m.eval()
