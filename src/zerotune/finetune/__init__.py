"""Fine-tuning: continue from a run or a pretrained transformer with frozen layers, gradual
unfreezing, layer-wise learning rates or LoRA (`models/lora.py`). ``zerotune.train`` runs it whenever
``config.finetune.source`` is set, through the fine-tune mode (`modes/finetune.py`), which assembles
the pieces this package holds; `pipeline/finetune.py` holds the jobs (`finetune`, `merge_lora`,
`save_adapters`).
"""
