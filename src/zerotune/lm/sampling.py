"""Text generation from a language model: token-level sampling and streamed, decoded text.

Sampling follows the usual chain: logits / temperature, then top-k (Fan et al. 2018), then nucleus
top-p (Holtzman et al. 2020), then one draw from the remaining distribution. Draws use a
``torch.Generator`` seeded with ``seed`` and one ``torch.multinomial`` call per token, so the
cached and the uncached paths consume the random stream identically and give the same tokens.

A model is anything that maps token ids (B, T) to logits (B, T, V). It may have ``block_size``
(the context is cropped to the last block_size tokens, as nanoGPT does) and ``new_cache()``
(a KV cache, see `zerotune.models.gpt.KVCache`: each new token then costs one forward of T=1 until
the context is full; after that the last block_size tokens are re-read, exactly like the crop).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ..errors import UserError
from .detokenize import TextStream

def _check_options(max_new_tokens, temperature, top_k, top_p) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise UserError(f"max_new_tokens must be an integer >= 1 (got {max_new_tokens!r})")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature >= 0):
        raise UserError(f"temperature must be a number >= 0 (0: greedy) (got {temperature!r})")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise UserError(f"top_k must be an integer >= 1 or None (got {top_k!r})")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise UserError(f"top_p must be in (0, 1] or None (got {top_p!r})")


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to -inf every logit outside the top k and outside the nucleus of probability top_p.

    Args:
        logits: (V,) or (B, V) scores, already divided by the temperature.
        top_k: keep the k largest logits (ties with the k-th are kept too).
        top_p: keep the smallest set of most likely tokens whose probabilities sum to >= top_p;
            the most likely token always stays.

    Returns:
        A new tensor of the same shape.
    """
    logits = logits.clone()
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits[logits < kth] = float("-inf")
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability mass of the more likely tokens
        drop_sorted = before >= top_p  # the set already reached top_p without this token
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits[drop] = float("-inf")
    return logits


def _pick(logits: torch.Tensor, temperature: float, top_k, top_p, gen: torch.Generator | None) -> int:
    """One token id from last-position logits (V,)."""
    logits = logits.float()
    if temperature == 0:
        return int(torch.argmax(logits))
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(dim=-1)
    return int(torch.multinomial(probs, 1, generator=gen))


def sample_tokens(
    model: nn.Module,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    device: torch.device | str | None = None,
) -> Iterator[int]:
    """Generate new token ids one at a time.

    The model is in eval mode from the first token until the iterator is exhausted or closed, then
    every module gets its own mode back (as `zerotune.models.modes.eval_mode` does). Gradients are
    off while a token is computed only, so the caller's code between tokens keeps its grad mode.

    Args:
        model: maps token ids (B, T) to logits (B, T, V); see the module docstring.
        prompt_ids: the prompt, at least one token id; longer than block_size, only its end is read.
        max_new_tokens: how many tokens to generate (>= 1).
        temperature: divides the logits; 0 picks the most likely token (greedy).
        top_k: sample among the k most likely tokens only.
        top_p: sample among the smallest set of tokens whose probabilities sum to >= top_p.
        seed: seeds the sampling generator; None draws from a fresh, nondeterministic one.
        use_cache: reuse keys and values of earlier tokens when the model has ``new_cache()``.
        device: where the inputs go; by default the device of the model's parameters.

    Returns:
        An iterator over the new token ids (the prompt is not repeated).

    Raises:
        UserError: an empty prompt or an option out of its range (raised at the call, not at the first token).
    """
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise UserError("the prompt is empty: generation needs at least one token to start from")
    _check_options(max_new_tokens, temperature, top_k, top_p)
    vocab = getattr(model, "vocab_size", None)
    if vocab is not None and any(t < 0 or t >= vocab for t in prompt):
        bad = next(t for t in prompt if t < 0 or t >= vocab)
        raise UserError(f"prompt token id {bad} is outside the model's vocabulary (0..{vocab - 1})")
    dev = torch.device(device) if device is not None else _model_device(model)
    return _generate(model, prompt, max_new_tokens, temperature, top_k, top_p, seed,
                     use_cache and hasattr(model, "new_cache"), dev)


def _generate(model, tokens, max_new_tokens, temperature, top_k, top_p, seed, use_cache, dev) -> Iterator[int]:
    block_size = getattr(model, "block_size", None)
    tokens = list(tokens)
    gen = None
    if temperature > 0:
        gen = torch.Generator(device=dev)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))

    def window() -> torch.Tensor:
        ctx = tokens[-block_size:] if block_size else tokens
        return torch.tensor([ctx], dtype=torch.long, device=dev)  # (1, T)

    cache = None
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        for _ in range(max_new_tokens):
            with torch.inference_mode():  # per token: a `with` around `yield` would leak into the caller
                if not use_cache:
                    logits = model(window())[0, -1]  # (V,)
                elif cache is None or cache.full:
                    # first step, or the context is full: (re-)prefill the last block_size tokens (= the crop)
                    cache = model.new_cache()
                    logits = model(window(), cache)[0, -1]
                else:
                    logits = model(torch.tensor([[tokens[-1]]], dtype=torch.long, device=dev), cache)[0, -1]
                tok = _pick(logits, temperature, top_k, top_p, gen)
            tokens.append(tok)
            yield tok
    finally:
        for m, training in modes:
            m.training = training


def generate_text(
    model: nn.Module,
    tokenizer,
    prompt: str,
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: Sequence[str] = (),
    use_cache: bool = True,
) -> Iterator[str]:
    """Stream the text a model writes after a prompt, piece by piece.

    Only new text is yielded. A piece is held back while it ends in an incomplete character (a
    byte-level tokenizer decodes half a UTF-8 sequence as U+FFFD) or could be the start of a stop
    string, so nothing at or after a stop string is ever yielded.

    Args:
        model: a language model (see `sample_tokens`).
        tokenizer: has ``encode(text) -> list[int]`` and ``decode(ids) -> str``.
        prompt: the text to continue; it must encode to at least one token.
        max_new_tokens, temperature, top_k, top_p, seed, use_cache: as for `sample_tokens`.
        stop: generation ends as soon as the text contains one of these; the output ends right before it.

    Returns:
        An iterator over non-empty text pieces.
    """
    stops = [stop] if isinstance(stop, str) else list(stop)
    if any(not isinstance(s, str) or not s for s in stops):
        raise UserError(f"stop strings must be non-empty strings (got {stops!r})")
    prompt_ids = list(tokenizer.encode(prompt))
    if not prompt_ids:
        raise UserError("the prompt is empty: give at least one character of text to continue")
    tokens = sample_tokens(model, prompt_ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                           seed=seed, use_cache=use_cache)
    return stream_text(tokens, TextStream(tokenizer.decode, prompt_ids, stops))


def stream_text(tokens: Iterator[int], stream: TextStream) -> Iterator[str]:
    """The text pieces of `tokens` through `stream`; generation stops at the first stop string."""
    try:
        for tok in tokens:
            if piece := stream.push(tok):
                yield piece
            if stream.stopped:
                return
        if piece := stream.finish():
            yield piece
    finally:
        tokens.close()


def complete(model: nn.Module, tokenizer, prompt: str, **options) -> str:
    """The whole text `generate_text` streams, as one string (same options)."""
    return "".join(generate_text(model, tokenizer, prompt, **options))
