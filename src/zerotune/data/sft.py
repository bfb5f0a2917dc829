"""Instruction-tuning data: JSONL records formatted as chats, tokenised, with labels on the answer only.

Two record forms, one per line:

- instruction: ``{"prompt": ..., "response": ..., "system": ...}`` (``system`` optional);
- chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}``, ending
  with the assistant's answer. The model learns every assistant message: the last one, and each
  earlier one where the chat format renders it (system and user messages are the prompt).

Each example is one row of ``x`` (token ids, right-padded) and ``y`` (the next token at each
position, -100 where nothing is learned: the prompt when it is masked, and the padding). Batches
are cut to their longest example (dynamic padding), so a batch of short answers costs little.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError, require_file
from .chat import ROLES, ChatFormat
from ..run.files import json_type
from .batches import EpochBatches, Split, epoch_permutation
from .bundle import DataBundle, DataMeta
from .preprocess import split_indices

IGNORE = -100  # the label of a position the loss skips (torch's cross-entropy ignore_index)


@dataclass
class SFTSplit(Split):
    """A split of tokenised conversations: ``x`` ids (N, L), ``y`` labels (N, L), and per example
    ``lengths`` (real tokens) and ``prompt_lengths`` (tokens before the answer starts)."""

    lengths: torch.Tensor | None = None
    prompt_lengths: torch.Tensor | None = None
    records: list | None = None  # (line number, messages) of each example, as the file gave them

    def to(self, device) -> "SFTSplit":
        return SFTSplit(self.x.to(device), self.y.to(device), None, self.lengths, self.prompt_lengths, self.records)

    def epoch_batches(self, seed: int, epoch: int, batch_size: int) -> "EpochBatches":
        return CutBatches(self, epoch_permutation(len(self), seed, epoch, self.x.device), batch_size)

    def in_order(self, batch_size: int) -> "CutBatches":
        """Every example once, in order, in batches cut to their longest example."""
        return CutBatches(self, torch.arange(len(self), device=self.x.device), batch_size)

    def prompt(self, i: int) -> list[int]:
        return self.x[i, :int(self.prompt_lengths[i])].tolist()

    def answer(self, i: int) -> list[int]:
        return self.x[i, int(self.prompt_lengths[i]):int(self.lengths[i])].tolist()


class CutBatches(EpochBatches):
    """Batches of an `SFTSplit` cut to the longest example they hold (dynamic padding)."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.perm[i * self.batch_size:(i + 1) * self.batch_size]
        width = max(int(self.split.lengths[idx.cpu()].max()), 1)
        return self.split.x[idx, :width], self.split.y[idx, :width]


def read_records(path: str | Path) -> list[tuple[int, list[dict]]]:
    """(line number, messages ending with the assistant's answer) of each record of a JSONL file.

    Raises:
        UserError: naming the file and line of the first bad record and what is wrong with it.
    """
    return read_jsonl(path, _messages)


def read_jsonl(path: str | Path, parse, what: str = "data.path", least: int = 3) -> list:
    """(line number, ``parse(line, "file:line")``) of each non-blank line of a JSONL file, at least `least` of them.

    Raises:
        UserError: a line that is not UTF-8 (named by file and line), whatever `parse` raises, too few records.
    """
    path = Path(path)
    require_file(path, what)
    out = []
    with path.open("rb") as f:  # bytes: a line that is not UTF-8 is named by its number
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{number}: not UTF-8 text (byte {e.start + 1} of the line: {e.reason}); "
                                "a JSONL file is UTF-8") from None
            if line.strip():
                out.append((number, parse(line, f"{path}:{number}")))
    if len(out) < least:
        raise UserError(f"{path} has {len(out)} records; at least {least} "
                        + ("are needed (train, val, test)" if least == 3 else "is needed"))
    return out


def json_object(line: str, where: str, fields: str) -> dict:
    """One JSONL line as a JSON object; `fields` says in the error what a record holds."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: not valid JSON ({e.msg})") from None
    except (ValueError, RecursionError) as e:  # a number too long to read, or nesting too deep
        raise UserError(f"{where}: not readable JSON ({str(e)[:100]})") from None
    if not isinstance(record, dict):
        raise UserError(f"{where}: a record is a JSON object with {fields}")
    return record


def _messages(line: str, where: str) -> list[dict]:
    record = json_object(line, where, "'prompt' and 'response', or 'messages'")
    if "messages" in record:
        return _chat(record["messages"], where)
    if "prompt" not in record and "response" not in record:
        raise UserError(f"{where}: missing field 'prompt' and 'response' (or 'messages' for a chat record)")
    for name in ("prompt", "response"):
        if name not in record:
            raise UserError(f"{where}: missing field {name!r}")
        if not isinstance(record[name], str):
            raise UserError(f"{where}: {name!r} must be a string (text), not {json_type(record[name])}")
        if not record[name].strip():
            raise UserError(f"{where}: empty {name!r}; it must be non-empty text")
    system = record.get("system")
    if system is not None and not isinstance(system, str):
        raise UserError(f"{where}: 'system' must be text")
    return _chat(([{"role": "system", "content": system}] if system else [])
                 + [{"role": "user", "content": record["prompt"]}, {"role": "assistant", "content": record["response"]}],
                 where)


def _chat(messages, where: str) -> list[dict]:
    check_messages(messages, where)
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise UserError(f"{where}: empty response: the last message must be the assistant's non-empty answer")
    if not any(m["role"] == "user" for m in messages[:-1]):
        raise UserError(f"{where}: no user message before the answer")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def check_messages(messages, where: str) -> None:
    """A chat list: a non-empty list of {role, content} objects with known roles and text content."""
    if not isinstance(messages, list) or not messages:
        raise UserError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise UserError(f"{where}: each message needs 'role' and 'content'")
        if m["role"] not in ROLES:
            raise UserError(f"{where}: unknown role {m['role']!r}; allowed: {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise UserError(f"{where}: a message's 'content' must be text")


def earlier_answers(fmt: ChatFormat, messages: list[dict], prompt: list[int]) -> tuple[list[tuple[int, int]], int]:
    """Token spans ``(start, end)`` in `prompt` of the assistant's answers before the last, and how many were not found.

    The conversation rendered through an answer must begin `prompt`; the answer starts where that
    rendering departs from the one made ready for it. That may be one token early: a tokenizer can
    merge the last token before an answer (the space of ``Assistant: ``) with its first. A template
    that renders earlier answers otherwise (one that drops them, say) leaves them in the prompt.
    """
    spans, missed = [], 0
    for j, m in enumerate(messages[:-1]):
        if m["role"] != "assistant" or j == 0:
            continue
        try:
            ready, through = fmt.prompt_ids(messages[:j]), fmt.history_ids(messages[:j + 1])
        except Exception:  # a template may refuse a partial conversation (roles must alternate, ...)
            ready, through = [], []
        start = next((k for k, (a, b) in enumerate(zip(ready, through)) if a != b), min(len(ready), len(through)))
        if start > 0 and start >= len(ready) - 1 and len(through) > start and prompt[:len(through)] == through:
            spans.append((start, len(through)))
        else:
            missed += 1
    return spans, missed


def encode_records(records, fmt: ChatFormat, width: int, mask_prompt: bool, where: str):
    """Token rows of each record: (x, y, lengths, prompt_lengths, truncated) as arrays.

    Raises:
        UserError: a record whose prompt fills the whole context, leaving no answer token to learn.
    """
    n = len(records)
    x = np.full((n, width), fmt.pad_id, dtype=np.int64)
    y = np.full((n, width), IGNORE, dtype=np.int64)
    lengths, prompts, truncated = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
    missed = 0
    for i, (number, messages) in enumerate(records):
        try:
            p, r = fmt.prompt_ids(messages[:-1]), fmt.response_ids(messages[-1]["content"])
        except UserError as e:
            raise UserError(f"{where}:{number}: {e}") from None
        if len(p) >= width:
            raise UserError(f"{where}:{number}: the prompt takes {len(p)} tokens, the whole context of {width} "
                            f"(data.max_length); nothing of the response is left to learn from")
        ids = (p + r)[:width]
        truncated[i] = len(p) + len(r) > width
        x[i, :len(ids)] = ids
        start = len(p) if mask_prompt else 1
        y[i, start - 1:len(ids) - 1] = ids[start:]  # position t predicts token t+1
        if mask_prompt:
            spans, not_found = earlier_answers(fmt, messages, p)
            missed += not_found
            for a, b in spans:
                y[i, a - 1:min(b, len(ids)) - 1] = ids[a:min(b, len(ids))]
        lengths[i], prompts[i] = len(ids), len(p)
    if missed:
        print(f"data 'sft': {missed} earlier assistant answer(s) are not where the chat format renders them "
              f"and are kept as prompt, not learned", file=sys.stderr, flush=True)
    return x, y, lengths, prompts, truncated


def build_sft_data(data_cfg, sft_cfg, fmt: ChatFormat, num_outputs: int, context: int | None = None) -> DataBundle:
    """Train/val/test splits of a JSONL file of instruction or chat records.

    Args:
        data_cfg: the DataConfig (``path``, ``max_length``, fractions, ``split_seed``).
        sft_cfg: the SFTConfig (``mask_prompt``).
        fmt: the chat format of the model's tokenizer.
        num_outputs: the model's vocabulary (logits per position).
        context: the model's longest sequence, when it has one (a GPT's block_size).
    """
    if isinstance(data_cfg.path, list) or data_cfg.path is None:
        raise UserError("data 'sft' reads one JSONL file: set data.path")
    records = read_records(data_cfg.path)
    width = min(data_cfg.max_length, context) if context else data_cfg.max_length
    x, y, lengths, prompts, truncated = encode_records(records, fmt, width, sft_cfg.mask_prompt, str(data_cfg.path))
    return encoded_bundle("sft", SFTSplit, (x, y, lengths, prompts), truncated, data_cfg, context or width, num_outputs,
                          records=records)


def prompts_split(path: str | Path, fmt: ChatFormat, width: int) -> SFTSplit:
    """Every record of a JSONL file of instruction or chat records as one split, to score a model on.

    Raises:
        UserError: naming the file (``--prompts``) and the line of the first bad record.
    """
    records = read_jsonl(path, _messages, what="--prompts", least=1)
    x, y, lengths, prompts, _ = encode_records(records, fmt, width, True, str(path))
    return SFTSplit(torch.from_numpy(x), torch.from_numpy(y), None, torch.from_numpy(lengths),
                    torch.from_numpy(prompts), records)


def encoded_bundle(source: str, split_cls, arrays, truncated: np.ndarray, data_cfg, context: int,
                   num_outputs: int, noun: str = "examples", records: list | None = None) -> DataBundle:
    """Train/val/test of encoded records: (x, y, lengths, prompt lengths) rows split by ``data_cfg``'s fractions
    and seed; records cut at the row width are reported (not refused: an answer's start is still learned).

    ``context`` is the model's (a GPT is rebuilt with it); rows may be shorter. ``records``, when given, go
    with their rows (a split's ``records``).
    """
    x, y, lengths, prompts = arrays
    if truncated.any():
        print(f"data {source!r}: {int(truncated.sum())} of {len(x)} {noun} longer than {x.shape[-1]} tokens "
              f"(data.max_length) were truncated", file=sys.stderr, flush=True)
    train, val, test = split_indices(np.zeros(len(x)), (data_cfg.val_fraction, data_cfg.test_fraction),
                                     data_cfg.split_seed, False)

    def part(idx):
        idx = np.sort(idx)
        split = split_cls(torch.from_numpy(x[idx]), torch.from_numpy(y[idx]), None,
                          torch.from_numpy(lengths[idx]), torch.from_numpy(prompts[idx]))
        if records is not None:
            split.records = [records[i] for i in idx]
        return split

    meta = DataMeta(source=source, task=source, input_shape=[context], num_classes=num_outputs,
                    sizes={"train": len(train), "val": len(val), "test": len(test)},
                    truncated={name: int(truncated[idx].sum()) for name, idx in
                               (("train", train), ("val", val), ("test", test))})
    return DataBundle(part(train), part(val), part(test), meta)

