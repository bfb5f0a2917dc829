"""Greedy answers to tokenised prompts, from the one decode loop (`lm.decode`), for a zerotune GPT
and a transformers model alike."""

from __future__ import annotations

from torch import nn

from .sampling import sample_tokens


def greedy_ids(model: nn.Module, prompt_ids: list[int], max_new_tokens: int, stop_id: int | None) -> list[int]:
    """The token ids a model writes after `prompt_ids`, greedily, up to and including `stop_id`.

    Args:
        model: maps ids (B, T) to logits (B, T, V); a transformers model in ``model.hf_model`` is
            read with its own KV cache.
        prompt_ids: the formatted prompt.
        max_new_tokens: tokens to write at most.
        stop_id: the token that ends an answer (None: write all `max_new_tokens`).
    """
    tokens: list[int] = []
    for t in sample_tokens(model, prompt_ids, max_new_tokens, temperature=0.0):
        tokens.append(t)
        if t == stop_id:
            break
    return tokens
