"""Any language model as a decoder of one sequence (`lm.decode`), read through a window of its context.

The model maps token ids (B, T) to logits (B, T, V). It may have ``block_size``: the context is
then cropped to the last block_size tokens, as nanoGPT does; and ``new_cache()`` (a KV cache, see
`zerotune.models.gpt.KVCache`): each new token then costs one forward of T=1 until the cache is
full, and after that the last block_size tokens are read again into a new cache, which is exactly
the crop. Without a cache, every step reads the whole (cropped) context.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class _Window:
    tokens: list[int]  # the prompt and every token generated so far
    cache: object = None


class WindowDecoder:
    """``prefill`` and ``step`` (see `lm.decode`) for one sequence of a model that maps ids to logits.

    Args:
        model: see the module docstring.
        device: where the inputs go.
        use_cache: keep keys and values of earlier tokens (the model needs ``new_cache()``).
    """

    def __init__(self, model: nn.Module, device: torch.device, use_cache: bool):
        self.model, self.device, self.use_cache = model, device, use_cache
        self.block_size = getattr(model, "block_size", None)

    def prefill(self, prompts: list[list[int]]) -> tuple[_Window, torch.Tensor]:
        (prompt,) = prompts
        window = _Window(list(prompt))
        return window, self._logits(window)

    def step(self, window: _Window, tokens: torch.Tensor) -> torch.Tensor:
        window.tokens.append(int(tokens[0]))
        return self._logits(window)

    @torch.inference_mode()
    def _logits(self, window: _Window) -> torch.Tensor:
        """The last position's logits (1, V) once the context holds `window.tokens`."""
        if not self.use_cache:
            return self.model(self._ids(window))[:, -1]
        if window.cache is None or window.cache.full:  # the first step, or the context is full: (re-)prefill
            window.cache = self.model.new_cache()
            return self.model(self._ids(window), window.cache)[:, -1]
        return self.model(torch.tensor([window.tokens[-1:]], dtype=torch.long, device=self.device), window.cache)[:, -1]

    def _ids(self, window: _Window) -> torch.Tensor:
        ctx = window.tokens[-self.block_size:] if self.block_size else window.tokens
        return torch.tensor([ctx], dtype=torch.long, device=self.device)  # (1, T)
