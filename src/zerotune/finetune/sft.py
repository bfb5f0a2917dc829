"""Instruction tuning's model setup: what LoRA leaves frozen, and gradient checkpointing."""

from __future__ import annotations

from torch import nn

from ..errors import UserError


def prepare_causal_lm(model: nn.Module, config) -> None:
    """Ready a causal LM for instruction tuning, before adapters are attached.

    Under LoRA only the adapters train: the output head of a language model is a vocabulary-sized
    matrix (the token embedding itself when tied), and training it would cost what LoRA saves.
    """
    model.lora_freezes_head = True  # read by finetune/freezing.py's FreezePlan
    if config.train.grad_checkpointing:
        enable_grad_checkpointing(model)


def enable_grad_checkpointing(model: nn.Module) -> None:
    """Recompute each transformer block in the backward pass instead of keeping its activations.

    A transformers model through its own ``gradient_checkpointing_enable`` (non-reentrant, so frozen
    embeddings under LoRA need no input gradients); a zerotune GPT through ``torch.utils.checkpoint``.
    """
    hf = getattr(model, "hf_model", None)
    if hf is not None:
        kwargs = {"use_reentrant": False}
        if hasattr(hf, "activation_checkpointing_enable"):  # the name since transformers 5.x
            hf.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        return
    features = getattr(model, "features", None)
    if features is None or not hasattr(features, "grad_checkpointing"):
        raise UserError(f"train.grad_checkpointing: {type(model).__name__} has no transformer blocks to checkpoint")
    features.grad_checkpointing = True
