"""Preference data: JSONL records of a prompt with a chosen and a rejected answer, tokenised as pairs.

Two record forms, one per line:

- instruction: ``{"prompt": ..., "chosen": ..., "rejected": ..., "system": ...}`` (``system`` optional);
- chat: ``{"messages": [{"role": ..., "content": ...}, ...], "chosen": ..., "rejected": ...}``, the
  conversation before the answer (it ends with a user message).

Each answer is formatted after the prompt exactly as instruction tuning formats a response
(`data/sft.py`, `data/chat.py`): prompt ids, then the answer's ids and its end marker. Each record is
one row of ``x`` (2, L): the chosen sequence, then the rejected one, right-padded; ``y`` holds the next
token at each answer position and -100 elsewhere (the prompt and the padding), so a sequence's
log-probability is summed over its answer tokens only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError
from ..run.files import json_type
from .batches import EpochBatches, Split, epoch_permutation
from .bundle import DataBundle
from .chat import ChatFormat
from .sft import IGNORE, SFTSplit, check_messages, encoded_bundle, json_object, read_jsonl

ANSWERS = ("chosen", "rejected")
FIELDS = "'prompt' (or 'messages'), 'chosen' and 'rejected' (text)"

# (ids (2B, W), labels (2B, W)) -> (B, 2) reference log-probs of the chosen and rejected answers
ReferenceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class PairTargets:
    """What a preference batch's loss needs besides the model's logits."""

    labels: torch.Tensor  # (2B, W): the chosen rows, then the rejected rows; -100 off the answers
    reference: torch.Tensor  # (B, 2) the reference model's log-probs of (chosen, rejected), float32

    def __len__(self) -> int:
        return len(self.reference)  # pairs

    def rows(self, x: torch.Tensor, lo: int, hi: int) -> tuple[torch.Tensor, "PairTargets"]:
        """Pairs lo:hi of the batch whose ids are `x` (2B, W): a rank's share of a global batch keeps
        each pair's chosen and rejected rows together, the chosen rows first."""
        b = len(self)
        take = lambda t: torch.cat([t[lo:hi], t[b + lo:b + hi]])  # noqa: E731
        return take(x), PairTargets(take(self.labels), self.reference[lo:hi])


@dataclass
class PreferenceSplit(Split):
    """Tokenised pairs: ``x`` ids (N, 2, L), ``y`` labels (N, 2, L), ``lengths`` (N, 2) real tokens,
    ``prompt_lengths`` (N,). The reference log-probs are ``ref`` (N, 2) when cached, else computed on
    each batch by ``reference`` (the model with its adapters off)."""

    lengths: torch.Tensor | None = None
    prompt_lengths: torch.Tensor | None = None
    ref: torch.Tensor | None = None
    reference: ReferenceFn | None = None

    def to(self, device) -> "PreferenceSplit":
        ref = self.ref.to(device) if self.ref is not None else None
        return PreferenceSplit(self.x.to(device), self.y.to(device), None, self.lengths, self.prompt_lengths,
                               ref, self.reference)

    def with_reference(self, ref: torch.Tensor | None = None, reference: ReferenceFn | None = None) -> "PreferenceSplit":
        """This split with cached reference log-probs `ref` (N, 2), or a function that computes them per batch."""
        return PreferenceSplit(self.x, self.y, None, self.lengths, self.prompt_lengths, ref, reference)

    def epoch_batches(self, seed: int, epoch: int, batch_size: int) -> "PairBatches":
        return PairBatches(self, epoch_permutation(len(self), seed, epoch, self.x.device), batch_size)

    def in_order(self, batch_size: int) -> "PairBatches":
        """Every pair once, in order."""
        return PairBatches(self, torch.arange(len(self), device=self.x.device), batch_size)

    def sample_inputs(self, n: int) -> torch.Tensor:
        """The chosen sequences of the first n pairs (for shape checks and the layer table)."""
        return self.x[:n, 0]

    def sequences(self) -> SFTSplit:
        """The chosen and the rejected sequence of every pair as 2N rows of one instruction split: the
        inputs the model reads, for export's parity checks and calibration."""
        return SFTSplit(self.x.flatten(0, 1), self.y.flatten(0, 1), None, self.lengths.flatten(),
                        self.prompt_lengths.repeat_interleave(2))

    def prompt(self, i: int) -> list[int]:
        """The formatted prompt of pair `i`, which both answers follow."""
        return self.x[i, 0, :int(self.prompt_lengths[i])].tolist()

    def answer(self, i: int, k: int = 0) -> list[int]:
        """The tokens of pair `i`'s chosen (k = 0) or rejected (k = 1) answer, its end marker included."""
        return self.x[i, k, int(self.prompt_lengths[i]):int(self.lengths[i, k])].tolist()


class PairBatches(EpochBatches):
    """Batches of a `PreferenceSplit`: ``[i] -> (ids (2B, W), PairTargets)``, the B chosen sequences
    first, cut to the longest sequence of the batch."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, PairTargets]:
        split: PreferenceSplit = self.split
        idx = self.perm[i * self.batch_size:(i + 1) * self.batch_size]
        width = max(int(split.lengths[idx.cpu()].max()), 1)
        x = split.x[idx, :, :width].transpose(0, 1).reshape(-1, width)  # (2B, W): chosen rows, then rejected
        y = split.y[idx, :, :width].transpose(0, 1).reshape(-1, width)
        if split.ref is not None:
            return x, PairTargets(y, split.ref[idx])
        if split.reference is None:
            raise RuntimeError("a preference split needs reference log-probs, cached or computed")
        return x, PairTargets(y, split.reference(x, y))


def read_pairs(path) -> list[tuple[int, tuple[list[dict], str, str]]]:
    """(line number, (prompt messages, chosen, rejected)) of each record of a JSONL file.

    Raises:
        UserError: naming the file and line of the first bad record and what is allowed.
    """
    return read_jsonl(path, _pair)


def _pair(line: str, where: str) -> tuple[list[dict], str, str]:
    record = json_object(line, where, FIELDS)
    if "messages" in record:
        check_messages(record["messages"], where)
        prompt = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        if prompt[-1]["role"] != "user":
            raise UserError(f"{where}: 'messages' is the conversation before the answers and must end with a "
                            f"user message (the answers are 'chosen' and 'rejected')")
    else:
        prompt = _prompt_turns(record, where)
    return prompt, *(_text(record, name, where) for name in ANSWERS)


def _prompt_turns(record: dict, where: str) -> list[dict]:
    text = _text(record, "prompt", where, " (or 'messages', a chat list)")
    system = record.get("system")
    if system is not None and not isinstance(system, str):
        raise UserError(f"{where}: 'system' must be a string (text), not {json_type(system)}")
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]


def _text(record: dict, name: str, where: str, alternative: str = "") -> str:
    if name not in record:
        raise UserError(f"{where}: missing field {name!r}{alternative}; a record holds {FIELDS}")
    value = record[name]
    if not isinstance(value, str):
        raise UserError(f"{where}: {name!r} must be a string (text), not {json_type(value)}")
    if not value.strip():
        raise UserError(f"{where}: empty {name!r}; it must be non-empty text")
    return value


def encode_pairs(records, fmt: ChatFormat, width: int, where: str):
    """Token rows of each pair: (x (N, 2, W), y (N, 2, W), lengths (N, 2), prompt lengths (N,), truncated (N,)).

    Raises:
        UserError: a record whose prompt fills the whole context, leaving no answer token.
    """
    n = len(records)
    x = np.full((n, 2, width), fmt.pad_id, dtype=np.int64)
    y = np.full((n, 2, width), IGNORE, dtype=np.int64)
    lengths, prompts, truncated = np.zeros((n, 2), np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
    for i, (number, (messages, *answers)) in enumerate(records):
        try:
            p = fmt.prompt_ids(messages)
            responses = [fmt.response_ids(a) for a in answers]
        except UserError as e:
            raise UserError(f"{where}:{number}: {e}") from None
        if len(p) >= width:
            raise UserError(f"{where}:{number}: the prompt takes {len(p)} tokens, the whole context of {width} "
                            f"(data.max_length); nothing of the answers is left to compare")
        for k, r in enumerate(responses):
            ids = (p + r)[:width]
            x[i, k, :len(ids)] = ids
            y[i, k, len(p) - 1:len(ids) - 1] = ids[len(p):]  # position t predicts token t+1: the answer only
            lengths[i, k] = len(ids)
            truncated[i] |= len(p) + len(r) > width
        prompts[i] = len(p)
    return x, y, lengths, prompts, truncated


def build_preference_data(data_cfg, fmt: ChatFormat, num_outputs: int, context: int | None = None) -> DataBundle:
    """Train/val/test splits of a JSONL file of preference records (arguments as `build_sft_data`'s)."""
    if isinstance(data_cfg.path, list) or data_cfg.path is None:
        raise UserError("data 'preference' reads one JSONL file: set data.path")
    records = read_pairs(data_cfg.path)
    width = min(data_cfg.max_length, context) if context else data_cfg.max_length
    x, y, lengths, prompts, truncated = encode_pairs(records, fmt, width, str(data_cfg.path))
    return encoded_bundle("preference", PreferenceSplit, (x, y, lengths, prompts), truncated, data_cfg,
                          context or width, num_outputs, noun="pairs")
