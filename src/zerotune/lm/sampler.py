"""The choice of each next token: temperature, then top-k (Fan et al. 2018), then nucleus top-p
(Holtzman et al. 2020), then one draw from what remains; temperature 0 takes the most likely token.

Each sequence draws from its own ``torch.Generator``, seeded with its seed, with one
``torch.multinomial`` call per token; so a sequence's tokens depend on its seed and its logits only,
alone or in a batch, cached or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import UserError


def check_options(max_new_tokens, temperature, top_k, top_p) -> None:
    """Raise a UserError naming the first option out of its range."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise UserError(f"max_new_tokens must be an integer >= 1 (got {max_new_tokens!r})")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature >= 0):
        raise UserError(f"temperature must be a number >= 0 (0: greedy) (got {temperature!r})")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise UserError(f"top_k must be an integer >= 1 or None (got {top_k!r})")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise UserError(f"top_p must be in (0, 1] or None (got {top_p!r})")


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


@dataclass(eq=False)
class Sampler:
    """How one sequence picks its tokens (temperature 0: the most likely one)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None  # None: a fresh, nondeterministic seed
    _generator: torch.Generator | None = field(default=None, init=False, repr=False)

    def draw(self, logits: torch.Tensor) -> torch.Tensor:
        """One token id (a 1-element tensor) drawn from one row's float logits (V,)."""
        if self._generator is None:  # made at the first draw, on the logits' device
            self._generator = torch.Generator(device=logits.device)
            self._generator.seed() if self.seed is None else self._generator.manual_seed(int(self.seed))
        probs = filter_logits(logits / self.temperature, self.top_k, self.top_p).softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=self._generator)


def pick(logits: torch.Tensor, samplers: list[Sampler | None]) -> torch.Tensor:
    """The next token of each row (B,): greedy rows by argmax, the others drawn by their own `Sampler`.

    Args:
        logits: (B, V) last-position logits.
        samplers: one per row; None for a row that takes no token (it has ended).
    """
    logits = logits.float()
    tokens = logits.argmax(dim=-1)  # (B,)
    for i, sampler in enumerate(samplers):
        if sampler is not None and sampler.temperature > 0:
            tokens[i] = sampler.draw(logits[i])[0]
    return tokens
