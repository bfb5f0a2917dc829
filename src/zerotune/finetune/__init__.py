"""Fine-tuning: continue from a run or a pretrained transformer with frozen layers, gradual
unfreezing, layer-wise learning rates or LoRA (`models/lora.py`). ``zerotune.train`` runs it whenever
``config.finetune.source`` is set; this package holds the pieces it is assembled from, and
`pipeline/finetune.py` the jobs (`finetune`, `merge_lora`, `save_adapters`).
"""
