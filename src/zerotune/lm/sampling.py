"""Text generation from a language model: tokens one at a time, and streamed, decoded text.

Tokens come from the one decode loop (`lm.decode`) and are picked by `lm.sampler` (temperature,
top-k, top-p, a seeded generator per sequence). A model is anything that maps token ids (B, T) to
logits (B, T, V), read through `lm.window.WindowDecoder` (cropped to ``block_size``, with the KV
cache of ``new_cache()`` when it has one); a transformers model (``model.hf_model``) is read with
its own KV cache (`lm.textmodel.HFDecoder`), as the server reads it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ..errors import UserError
from .decode import Row, decode
from .detokenize import TextStream
from .sampler import Sampler, check_options
from .textmodel import HFDecoder
from .window import WindowDecoder


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


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
    stop_id: int | None = None,
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
        use_cache: reuse keys and values of earlier tokens when the model has ``new_cache()`` or is a
            transformers model (the tokens are the same either way).
        device: where the inputs go; by default the device of the model's parameters.
        stop_id: a token that ends generation (an answer's end); it is not yielded.

    Returns:
        An iterator over the new token ids (the prompt is not repeated).

    Raises:
        UserError: an empty prompt or an option out of its range (raised at the call, not at the first token).
    """
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise UserError("the prompt is empty: generation needs at least one token to start from")
    check_options(max_new_tokens, temperature, top_k, top_p)
    vocab = getattr(model, "vocab_size", None)
    if vocab is not None and any(t < 0 or t >= vocab for t in prompt):
        bad = next(t for t in prompt if t < 0 or t >= vocab)
        raise UserError(f"prompt token id {bad} is outside the model's vocabulary (0..{vocab - 1})")
    dev = torch.device(device) if device is not None else _model_device(model)
    row = Row(prompt, max_new_tokens, Sampler(temperature, top_k, top_p, seed), stop_id)
    return _tokens(model, row, dev, use_cache)


def _decoder(model: nn.Module, dev: torch.device, use_cache: bool):
    """How `decode` reads the model: a transformers model with its own KV cache, as the server reads it;
    any other through a window of its context (with the GPT's cache when it has one)."""
    hf = getattr(model, "hf_model", None)
    if use_cache and hf is not None:
        return HFDecoder(hf, dev)
    return WindowDecoder(model, dev, use_cache and hasattr(model, "new_cache"))


def _tokens(model: nn.Module, row: Row, dev: torch.device, use_cache: bool) -> Iterator[int]:
    """The row's tokens; eval mode (no dropout) while they are made, then every module's own mode back."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with contextlib.closing(decode(_decoder(model, dev, use_cache), [row])) as steps:
            for handout in steps:
                yield from (tok for _, tok in handout if tok is not None)
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
