"""Greedy answers to tokenised prompts: our KV-cache sampler for a zerotune GPT, ``generate`` for transformers."""

from __future__ import annotations

import torch
from torch import nn

from ..models.modes import eval_mode


@torch.no_grad()
def greedy_ids(model: nn.Module, prompt_ids: list[int], max_new_tokens: int, stop_id: int | None) -> list[int]:
    """The token ids a model writes after `prompt_ids`, greedily, up to and including `stop_id`.

    Args:
        model: maps ids (B, T) to logits (B, T, V); a transformers model in ``model.hf_model`` is
            asked through its own ``generate`` (with its KV cache).
        prompt_ids: the formatted prompt.
        max_new_tokens: tokens to write at most.
        stop_id: the token that ends an answer (None: write all `max_new_tokens`).
    """
    hf = getattr(model, "hf_model", None)
    if hf is not None:
        device = next(model.parameters()).device
        ids = torch.tensor([prompt_ids], device=device)
        with eval_mode(model):
            out = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                              do_sample=False, eos_token_id=stop_id, pad_token_id=stop_id if stop_id is not None else 0)
        return out[0, len(prompt_ids):].tolist()
    from .sampling import sample_tokens

    tokens: list[int] = []
    for t in sample_tokens(model, prompt_ids, max_new_tokens, temperature=0.0, use_cache=True):
        tokens.append(t)
        if t == stop_id:
            break
    return tokens
