"""Fine-tuning: continue from a run or a pretrained transformer with frozen layers, gradual
unfreezing, layer-wise learning rates or LoRA. ``zerotune.train`` runs it whenever
``config.finetune.source`` is set; this package holds the pieces it is assembled from.
"""

from .api import finetune, merge_lora, save_adapters

__all__ = ["finetune", "merge_lora", "save_adapters"]
