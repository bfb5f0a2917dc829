"""``echo`` and ``logprobs`` of /v1/completions, in OpenAI's legacy shape.

The prompt and the tokens generated after it are scored in one pass (`lm.scoring`), so the answer
lists, for each token, its text, its log-probability given all before it (``null`` for the very
first token, which nothing predicts), the ``logprobs`` most likely tokens there, and where it
starts in the prompt's and completion's text together (``text_offset``). This is how EleutherAI's
lm-eval scores multiple-choice answers with its ``local-completions`` model (``echo: true,
logprobs: 1, max_tokens`` 0 or 1).
"""

from __future__ import annotations

import asyncio
import threading

from ..lm.detokenize import Detokenizer
from ..lm.scoring import score_tokens

_ONE_PASS = threading.Lock()  # one scoring pass at a time: a long prompt's logits are (T, vocabulary)


def _texts_and_offsets(decode, ids: list[int]) -> tuple[list[str], list[int]]:
    """Each token's own text, and where it starts in the text of all of them (a token that ends an
    incomplete character starts where that character does)."""
    detok, offsets, at = Detokenizer(decode), [], 0
    for t in ids:
        offsets.append(at)
        at += len(detok.push(t))
    return [decode([t]) for t in ids], offsets


def _logprobs(model, ids: list[int], first: int, top: int) -> dict:
    with _ONE_PASS:
        scores = score_tokens(model, ids, top)
    texts, offsets = _texts_and_offsets(model.decode, ids)
    alternatives = [None if alts is None else {model.decode([i]): lp for i, lp in alts} for alts in scores.top]
    return {"tokens": texts[first:], "token_logprobs": scores.logprobs[first:],
            "top_logprobs": alternatives[first:], "text_offset": offsets[first:]}


async def scored_choice(model, prompt: list[int], completion: list[int], text: str, req) -> dict:
    """The choice of a completion with ``echo`` and/or ``logprobs``.

    Args:
        model: the served `TextModel`.
        prompt: the prompt's token ids.
        completion: the ids generated after it (none with ``max_tokens: 0``).
        text: the completion's text.
        req: the `CompletionRequest`.
    """
    first = 0 if req.echo else len(prompt)
    logprobs = None
    if req.logprobs is not None:
        logprobs = await asyncio.to_thread(_logprobs, model, [*prompt, *completion], first, req.logprobs)
    if req.echo:
        text = (req.prompt if isinstance(req.prompt, str) else model.decode(prompt)) + text
    return {"text": text, "index": 0, "logprobs": logprobs}
