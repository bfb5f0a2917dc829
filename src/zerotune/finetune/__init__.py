"""Fine-tuning: continue from a run or a pretrained transformer with frozen layers, gradual
unfreezing, layer-wise learning rates or LoRA. ``zerotune.train`` runs it whenever
``config.finetune.source`` is set; this package holds the pieces it is assembled from.

Names are imported on first use, so the CLI can register `finetune` without loading torch.
"""


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ..pipeline import finetune

    return getattr(finetune, name)


__all__ = ["finetune", "merge_lora", "save_adapters"]
