"""The one decode loop: `zerotune generate`, the answers of instruction-tuning evaluation and the
language-model server all take their tokens from `decode`.

It runs a batch of rows on a *decoder*, a model seen through two calls that return the last
position's logits (B, V): ``prefill(prompts)`` (which also returns the decoder's state, a KV cache
say) and ``step(state, tokens)``, one new token per row. Decoders: `lm.window.WindowDecoder` (any
model mapping ids to logits, one sequence, cropped to its context like nanoGPT), and the
`lm.textmodel` ones the server uses (a zerotune GPT or a transformers model, left-padded batches).

Each step picks one token per live row (`lm.sampler.pick`), hands it out, and ends the rows that
are done: a stop token (not handed out), ``max_tokens`` tokens, or ``cancelled`` set by a consumer.
A decoder with ``keep(state, rows)`` and ``join(state, prompts)`` batches continuously: finished
rows leave between steps and rows that ``waiting.admit`` gives join the running batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .sampler import Sampler, pick


@dataclass(eq=False)
class Row:
    """One sequence being generated: its prompt, budget, sampling, and how it ended."""

    prompt: list[int]
    max_tokens: int
    sampler: Sampler = field(default_factory=lambda: Sampler(0.0))
    stop_id: int | None = None  # a token that ends the row without being handed out
    cancelled: bool = False  # set by a consumer (stop string seen, client gone): the row ends at the next step
    eos: bool = False  # the row ended at its stop token
    generated: int = 0


@dataclass
class Counts:
    """What the loop did: forwards (``steps``), those with more than one live row, the most live rows
    in one step, and rows that joined a running batch."""

    steps: int = 0
    batched_steps: int = 0
    largest_batch: int = 0
    joined: int = 0


class Waiting(Protocol):
    """Where rows wait to join a running batch (the server's queue)."""

    def admit(self, pos: int, room: int) -> list[Row]: ...  # rows that fit a cache holding `pos` slots

    def send_back(self, rows: list[Row]) -> None: ...  # rows the decoder could not take after all


Handout = list[tuple[Row, Any]]  # (row, token id) for each new token, (row, None) when a row ends


def decode(decoder, rows: list[Row], waiting: Waiting | None = None, max_batch: int = 0,
           counts: Counts | None = None) -> Iterator[Handout]:
    """Generate for `rows` together, yielding each step's handout before the next forward.

    A consumer that stops iterating stops the computation: nothing runs past the last handout it took.

    Args:
        decoder: see the module docstring.
        rows: the batch to start with.
        waiting: rows that may join between steps (with a decoder that has ``keep`` and ``join``).
        max_batch: the most rows in a batch when rows join.
        counts: updated as the loop runs.
    """
    counts = counts if counts is not None else Counts()
    state, logits = decoder.prefill([r.prompt for r in rows])
    pos = max(len(r.prompt) for r in rows)  # slots of the shared cache in use
    counts.steps += 1
    continuous = waiting is not None and hasattr(decoder, "join") and hasattr(decoder, "keep")
    live = [True] * len(rows)
    while True:
        counts.largest_batch = max(counts.largest_batch, sum(live))
        tokens = pick(logits, [r.sampler if alive else None for r, alive in zip(rows, live)])
        handout, live = _hand_out(rows, tokens, live)
        yield handout
        alive = [i for i, a in enumerate(live) if a]
        if not alive:
            return
        if continuous and len(alive) < len(rows):  # finished rows leave the batch
            state = decoder.keep(state, alive)
            rows, tokens, live = [rows[i] for i in alive], tokens[alive], [True] * len(alive)
        logits = decoder.step(state, tokens)
        pos += 1
        counts.steps += 1
        counts.batched_steps += len(alive) > 1
        newcomers = waiting.admit(pos, max_batch - len(rows)) if continuous else []
        if newcomers:  # waiting rows join between steps
            extra = decoder.join(state, [r.prompt for r in newcomers])
            if extra is None:  # this cache cannot take new rows: they start the next batch
                continuous = False
                waiting.send_back(newcomers)
                continue
            logits = torch.cat([logits, extra])
            rows, live = rows + newcomers, live + [True] * len(newcomers)
            counts.joined += len(newcomers)


def _hand_out(rows: list[Row], tokens: torch.Tensor, live: list[bool]) -> tuple[Handout, list[bool]]:
    """Each live row's token (or its end), and the rows still live afterwards."""
    out, live = [], list(live)
    for i, row in enumerate(rows):
        if not live[i]:
            continue
        tok = int(tokens[i])
        if row.cancelled or tok == row.stop_id:
            row.eos = not row.cancelled
        else:
            row.generated += 1
            out.append((row, tok))
        if row.cancelled or row.eos or row.generated >= row.max_tokens:
            live[i] = False
            out.append((row, None))
    return out, live
