"""One interface over every causal language model that is served: a zerotune GPT or a Hugging Face model.

What the server needs from a model (`TextModel`): its text codec (``encode``, ``decode``), how a
chat becomes prompt tokens (``encode_chat``: `data.chat.ChatFormat`, the same format instruction tuning
trains with), its end-of-text token (``eos_id``), its context length,
and a batched decode with a KV cache: ``prefill`` a batch of prompts of different lengths, then
``step`` one token per row. Both return the last position's logits (B, V). ``logits`` scores a
whole sequence in one pass, (T, V), for the log-probabilities of a prompt (``echo``).

Batching: prompts are left-padded to the longest. The zerotune GPT masks each row's padding keys
and numbers its positions from its first real token (`KVCache` with ``pad``), so a row computes
what it would alone, with RoPE and learned positions alike; a Hugging Face model gets the
attention mask and the matching ``position_ids``. Rows of a batch share one cache, so a batch
needs ``longest prompt + most new tokens <= context_length`` (the scheduler keeps to that).

Continuous batching is optional: a model with ``keep(state, rows)`` (drop finished rows) and
``join(state, prompts)`` (add rows whose prompts end where the batch is) lets requests join a
running batch between steps; the GPT has both, and so has a Hugging Face model with a plain
dynamic cache (``join`` returns None otherwise, and the requests wait for the next batch).

Chat: the tokenizer's own chat template when it has one, else the default of `data.chat`
(``System: ...`` / ``User: ...`` lines, then ``Assistant: ``), so a served instruction-tuned run
sees its prompts exactly as in training. A tokenizer without an end-of-text token ends an answer
with a newline (``chat_stop``): the server stops a chat answer there.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Protocol

import torch

from ..errors import UserError
from ..data.chat import ChatFormat


class TextModel(Protocol):
    """A causal language model as the server uses it (see the module docstring)."""

    name: str
    context_length: int
    eos_id: int | None
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]: ...

    def prefill(self, prompts: list[list[int]]) -> tuple[Any, torch.Tensor]: ...

    def step(self, state: Any, tokens: torch.Tensor) -> torch.Tensor: ...

    def logits(self, ids: list[int]) -> torch.Tensor: ...


def _left_pad(prompts: list[list[int]], pad_id: int, device, width: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, L), pad counts (B,)) with every prompt right-aligned to the longest (or to ``width``)."""
    longest = max(width, *(len(p) for p in prompts))
    pad = torch.tensor([longest - len(p) for p in prompts], dtype=torch.long, device=device)
    ids = torch.tensor([[pad_id] * (longest - len(p)) + list(p) for p in prompts], dtype=torch.long, device=device)
    return ids, pad


class GPTTextModel:
    """A zerotune GPT run with its own char or BPE tokenizer (no end-of-text token: generation ends
    at max_tokens or a stop string)."""

    eos_id = None

    def __init__(self, model: torch.nn.Module, tokenizer, name: str):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = int(model.block_size)
        self.vocab_size = int(model.vocab_size)
        self.device = next(model.parameters()).device
        self.chat = ChatFormat(tokenizer)
        self.chat_stop = self.chat.end_text or None

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, what="prompt")  # a character outside a char vocabulary: UserError

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return self.chat.prompt_ids(messages)

    @torch.inference_mode()
    def logits(self, ids: list[int]) -> torch.Tensor:
        """The next-token logits (T, V) after each of `ids`, in one pass without a cache."""
        return self.model(torch.tensor([ids], dtype=torch.long, device=self.device))[0].float()

    @torch.inference_mode()
    def prefill(self, prompts: list[list[int]]):
        ids, pad = _left_pad(prompts, 0, self.device)
        cache = self.model.new_cache(pad if bool(pad.any()) else None)
        return cache, self.model(ids, cache)[:, -1]

    @torch.inference_mode()
    def step(self, cache, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens.to(self.device)[:, None], cache)[:, -1]

    # Continuous batching (optional in the interface): rows leave and join a running batch.

    def keep(self, cache, rows: list[int]):
        """Keep only these rows of the batch (the others are done)."""
        idx = torch.tensor(rows, dtype=torch.long, device=self.device)
        cache.k = [None if t is None else t.index_select(0, idx) for t in cache.k]
        cache.v = [None if t is None else t.index_select(0, idx) for t in cache.v]
        if cache.pad is not None:
            cache.pad = cache.pad.index_select(0, idx)
        return cache

    @torch.inference_mode()
    def join(self, cache, prompts: list[list[int]]) -> torch.Tensor:
        """Add rows to a running batch: each prompt (at most ``cache.pos`` tokens) is left-padded to
        end where the batch is, prefilled, and its keys and values appended. Returns their logits (B', V)."""
        ids, pad = _left_pad(prompts, 0, self.device, width=cache.pos)
        new = self.model.new_cache(pad)
        logits = self.model(ids, new)[:, -1]
        cache.k = [torch.cat([a, b]) for a, b in zip(cache.k, new.k)]
        cache.v = [torch.cat([a, b]) for a, b in zip(cache.v, new.v)]
        old = cache.pad if cache.pad is not None else torch.zeros(len(cache.k[0]) - len(prompts), dtype=torch.long,
                                                                  device=self.device)
        cache.pad = torch.cat([old, pad])
        return logits


class HFDecoder:
    """A Hugging Face causal LM as the decode loop reads it (`lm.decode`): batched ``prefill`` and ``step``
    with its own KV cache, rows leaving (``keep``) and joining (``join``); no tokenizer needed.

    Args:
        model: an ``AutoModelForCausalLM`` (a peft model around one too); its modes are left as they are.
        device: where its parameters are (default: found from them).
        pad_id: the token that left-pads shorter prompts of a batch (masked out; any valid id).
    """

    def __init__(self, model: torch.nn.Module, device: torch.device | None = None, pad_id: int = 0):
        self.model = model
        self.pad_id = pad_id
        self.device = device if device is not None else next(model.parameters()).device
        # transformers 5 renames past_key_values to cache (the old name is deprecated); a peft model
        # passes it on to the model it wraps, whose signature says which name to use
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._cache_arg = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

    def _cache_of(self, out):
        return out["cache"] if "cache" in out else out["past_key_values"]

    @torch.inference_mode()
    def logits(self, ids: list[int]) -> torch.Tensor:
        """The next-token logits (T, V) after each of `ids`, in one pass without a cache."""
        return self.model(input_ids=torch.tensor([ids], dtype=torch.long, device=self.device)).logits[0].float()

    @torch.inference_mode()
    def prefill(self, prompts: list[list[int]]):
        ids, pad = _left_pad(prompts, self.pad_id, self.device)
        mask = (torch.arange(ids.shape[1], device=self.device)[None, :] >= pad[:, None]).long()  # (B, L)
        positions = (mask.cumsum(1) - 1).clamp_min(0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        return {"past": self._cache_of(out), "mask": mask, "next": positions[:, -1] + 1}, out.logits[:, -1].float()

    def keep(self, state, rows: list[int]):
        """Keep only these rows of the batch (the others are done)."""
        idx = torch.tensor(rows, dtype=torch.long, device=self.device)
        state["past"].batch_select_indices(idx)
        state["mask"], state["next"] = state["mask"][idx], state["next"][idx]
        return state

    @torch.inference_mode()
    def join(self, state, prompts: list[list[int]]) -> torch.Tensor | None:
        """Add rows to a running batch (see `GPTTextModel.join`); None when this model's cache cannot
        take them (not a plain dynamic cache, e.g. sliding-window layers): they wait for the next batch."""
        past = state["past"]
        layers = getattr(past, "layers", None)
        if not layers or any(getattr(layer, "is_sliding", False) or not hasattr(layer, "keys") for layer in layers):
            return None
        ids, pad = _left_pad(prompts, self.pad_id, self.device, width=state["mask"].shape[1])
        mask = (torch.arange(ids.shape[1], device=self.device)[None, :] >= pad[:, None]).long()
        positions = (mask.cumsum(1) - 1).clamp_min(0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        for old, new in zip(layers, self._cache_of(out).layers):
            old.keys, old.values = torch.cat([old.keys, new.keys]), torch.cat([old.values, new.values])
        state["mask"] = torch.cat([state["mask"], mask])
        state["next"] = torch.cat([state["next"], positions[:, -1] + 1])
        return out.logits[:, -1].float()

    @torch.inference_mode()
    def step(self, state, tokens: torch.Tensor) -> torch.Tensor:
        state["mask"] = torch.cat([state["mask"], state["mask"].new_ones(len(tokens), 1)], dim=1)
        out = self.model(input_ids=tokens.to(self.device)[:, None], attention_mask=state["mask"],
                         position_ids=state["next"][:, None], use_cache=True, **{self._cache_arg: state["past"]})
        state["past"], state["next"] = self._cache_of(out), state["next"] + 1
        return out.logits[:, -1].float()


class HFTextModel(HFDecoder):
    """A Hugging Face causal LM (``AutoModelForCausalLM``) with its tokenizer and chat template."""

    def __init__(self, model: torch.nn.Module, tokenizer, name: str):
        cfg = model.config
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else cfg.eos_token_id
        self.eos_id = eos[0] if isinstance(eos, list) else eos
        super().__init__(model.eval(), pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                         else (self.eos_id or 0))
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions"))
        self.vocab_size = int(cfg.vocab_size)
        self.chat = ChatFormat(tokenizer)
        self.chat_stop = self.chat.end_text or None

    @classmethod
    def from_directory(cls, path: str | Path, name: str | None = None) -> HFTextModel:
        """Load a local model directory offline (never remote code)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot load a causal language model from {path}: {str(e).splitlines()[0]}") from None
        return cls(model, tokenizer, name or path.name)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return self.chat.prompt_ids(messages)
