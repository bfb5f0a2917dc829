"""Turning a fine-tune config into a model and a plan: source weights, new head, adapters, groups."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config, build_config
from ..data.bundle import DataMeta
from ..errors import UserError
from .freezing import FreezePlan
from ..models.lora import apply_lora, is_lora, merge_into_base
from .lr_groups import optimizer_groups
from .sources import FinetuneSource, resolve_source

HF_OPTIONS = ("pooling", "dropout")  # transformer options a recipe may set; the path comes from the source


def is_finetune(config: Config) -> bool:
    return config.finetune is not None and config.finetune.source is not None


def adapt_config(config: Config) -> tuple[Config, FinetuneSource]:
    """A new fine-tune's config with the model group taken from its source.

    A source run gives its own model group (architecture and options); a pretrained directory
    gives ``model.name = "hf"`` with ``model.path`` set to the source as written (an alias stays
    an alias, a directory becomes absolute).
    """
    from ..runload.load import read_run_config

    src = resolve_source(config.finetune.source)
    raw = config.to_dict()
    if src.kind == "run":
        raw["model"] = read_run_config(src.path).to_dict()["model"]
        raw["finetune"]["source"] = str(src.path.resolve())
    elif raw["data"].get("name") in ("sft", "preference"):  # instruction or preference tuning of a causal LM
        spec = _as_written(src)
        raw["model"] = {"name": "hf_lm", "init": "default", "path": spec}
        raw["finetune"]["source"] = spec
    else:
        own = raw["model"] if raw["model"].get("name") == "hf" else {}
        spec = _as_written(src)
        raw["model"] = {"name": "hf", "init": "default", **{k: own[k] for k in HF_OPTIONS if k in own}, "path": spec}
        raw["finetune"]["source"] = spec
        if raw["data"].get("name") != "text":
            raise UserError(f"a pretrained transformer reads text: set data.name = 'text' and data.path "
                            f"(got data.name {raw['data'].get('name')!r})")
    return build_config(raw), src


def _as_written(src: FinetuneSource) -> str:
    """The source for the config: a name stays a name, a directory or GGUF file becomes an absolute path."""
    path = Path(src.spec).expanduser()
    return str(path.resolve()) if path.exists() else src.spec


@dataclass
class FinetuneSetup:
    """What the loop needs beyond the model: the freeze plan and the optimizer groups.

    Attributes:
        plan: which parameters train in each epoch.
        groups: optimizer parameter groups with layer-wise rates.
        adapters: names of the LoRA parameters (empty unless strategy "lora").
        head: "new" or "kept" (a source run's head), or "new" for a pretrained source.
    """

    plan: FreezePlan
    groups: list[dict]
    adapters: list[str]
    head: str

    def summary(self, model: torch.nn.Module, epochs: int) -> dict:
        """Parameter counts for finetune.json and metrics.json.

        ``trainable`` is what trains in the first epoch; ``stages`` gives the count from each epoch
        on where it changes (gradual unfreezing), so no figure counts a block before it trains.
        """
        sizes = {n: p.numel() for n, p in model.named_parameters()}
        total = sum(sizes.values())

        def count(epoch: int, names: frozenset[str]) -> dict:
            n = sum(sizes[name] for name in names)
            return {"epoch": epoch, "trainable": n, "trainable_percent": round(100.0 * n / max(total, 1), 4)}

        stages = [count(epoch, names) for epoch, names in self.plan.stages(epochs)]
        return {"strategy": self.plan.cfg.strategy, "head": self.head, "parameters": total,
                "trainable": stages[0]["trainable"], "trainable_percent": stages[0]["trainable_percent"],
                "stages": stages, "groups": [g.name for g in self.plan.groups]}


def attach(model: torch.nn.Module, config: Config, meta: DataMeta, source: FinetuneSource | None) -> FinetuneSetup:
    """Load the source weights (new runs only), add adapters and plan what trains.

    Args:
        model: the freshly built model for the target data.
        config: the (adapted) run config.
        meta: the target data's metadata.
        source: the resolved source for a new run; None when resuming (weights come from the checkpoint).
    """
    cfg = config.finetune
    head = "kept" if hasattr(model, "hf_model") else "new"  # a causal LM's output head comes with it
    if source is not None and source.kind == "run":
        head = load_source_run(model, source.path, cfg.checkpoint, meta, cfg.new_head)
    adapters = apply_lora(model, cfg) if is_lora(config) else []
    plan = FreezePlan(model, cfg, adapters)
    groups = optimizer_groups(model, plan.groups, plan.ever, config.optim.lr, cfg.lr_decay, config.optim.weight_decay)
    plan.apply(model, 0)
    return FinetuneSetup(plan, groups, adapters, head)


def load_source_run(model: torch.nn.Module, run_dir: Path, checkpoint: str, meta: DataMeta, new_head: str) -> str:
    """Copy a source run's weights into `model`; the head too when the classes are the same.

    Returns:
        "new" when the head was left freshly initialised, "kept" when it was copied.
    """
    from ..runload.load import load_run

    parent = load_run(run_dir, checkpoint)
    if is_lora(parent.config):
        merge_into_base(parent.model)
    same = parent.meta.num_outputs == meta.num_outputs and parent.meta.class_names == meta.class_names
    if new_head == "never" and parent.meta.num_outputs != meta.num_outputs:
        raise UserError(f"finetune.new_head is 'never' but the source has {parent.meta.num_outputs} outputs "
                        f"and the data needs {meta.num_outputs}")
    keep = new_head == "never" or (new_head == "auto" and same)
    sd = {k: v for k, v in parent.model.state_dict().items() if keep or not k.startswith("head.")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    wrong = [k for k in missing if keep or not k.startswith("head.")] + list(unexpected)
    if wrong:
        raise UserError(f"source run {run_dir} does not fit the model: {', '.join(wrong[:5])}")
    return "kept" if keep else "new"

