"""How likely a model finds a sequence of tokens: each token's log-probability given those before it,
and the most likely tokens at each position, in one pass without a cache.

The server's ``echo`` and ``logprobs`` (`serve.openai_scoring`) answer with these; the first token
has no log-probability, since nothing before it predicts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenScores:
    """Per token of a sequence: its log-probability (None for the first) and the `top` most likely
    tokens there as (id, log-probability), most likely first (None for the first)."""

    logprobs: list[float | None]
    top: list[list[tuple[int, float]] | None]


def score_tokens(model, ids: list[int], top: int = 0) -> TokenScores:
    """Score `ids` under `model` (a `TextModel`: ``logits(ids)`` gives (T, V)).

    Args:
        model: the language model.
        ids: the token ids, at most the model's context length.
        top: how many of the most likely tokens to list at each position.
    """
    logp = torch.log_softmax(model.logits(ids).float(), dim=-1)[:-1]  # (T-1, V): row t predicts token t+1
    nxt = torch.tensor(ids[1:], dtype=torch.long, device=logp.device)
    chosen = logp.gather(1, nxt[:, None])[:, 0].tolist()
    alts: list[list[tuple[int, float]] | None] = [[] for _ in chosen]
    if top:
        values, idx = logp.topk(min(top, logp.shape[1]), dim=-1)
        alts = [list(zip(i, v)) for i, v in zip(idx.tolist(), values.tolist())]
    return TokenScores([None, *chosen], [None, *alts])
