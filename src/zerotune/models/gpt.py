"""GPT-style decoder-only transformer: GPT-2 (Radford et al. 2019, "Language Models are Unsupervised
Multitask Learners") with pre-norm blocks and weight tying, and optionally rotary position
embeddings, RoPE (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding").

The model reads token ids (B, T) and returns next-token logits (B, T, V). Its structure follows the
house convention: ``features`` (embeddings, the ``blocks`` ModuleList, final norm) gives hidden
states (B, T, C) and ``head`` turns them into logits; the head's weight *is* the token embedding
when ``tie_weights`` is on.

RoPE variant: "rotate half" (GPT-NeoX, Llama in transformers): the head dimension is split into two
halves (x1, x2) and pair i is (x1[i], x2[i]), rotated by angle ``pos * base**(-2i/d)``.

Generation uses a `KVCache` (see its docstring for what happens once the context is full).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import UserError
from .groups import decays, param_groups, trainable_parameters
from .dropout import FastDropout
from .modes import eval_mode
from .registry import Size, register_model


@dataclass(config=ConfigDict(extra="forbid"))
class GPTConfig:
    n_layer: Size = 4  # transformer blocks
    n_head: Size = 4  # attention heads per block
    n_embd: Size = 128  # width of the residual stream (a multiple of n_head)
    dropout: float = Field(0.0, ge=0, lt=1)  # on embeddings, attention probabilities and residual branches
    # on attention probabilities only; None: `dropout`. On a CPU, attention dropout moves SDPA off its
    # fused kernel and draws a mask of B·H·T² elements per layer (20% of a 6-layer step at T=128)
    attn_dropout: float | None = Field(None, ge=0, lt=1)
    bias: bool = False  # biases in Linear layers and LayerNorms (GPT-2 has them)
    positions: Literal["rope", "learned"] = "rope"  # rotary (relative) or learned absolute position embeddings
    rope_base: float = Field(10000.0, gt=1)  # RoPE frequency base: angle of pair i is pos * base**(-2i/head_dim)
    mlp_ratio: Size = 4  # MLP hidden width = mlp_ratio * n_embd
    # exact GELU, GPT-2's tanh approximation, or squared ReLU (So et al. 2021, "Primer"): as good per
    # token and about 6x cheaper than GELU on a CPU, where activations are a visible part of a small model's step
    activation: Literal["gelu", "gelu_tanh", "relu2"] = "gelu"
    tie_weights: bool = True  # the output head shares the token-embedding matrix

    @model_validator(mode="after")
    def _check_head_dim(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.positions == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"RoPE needs an even head dimension; n_embd/n_head = {self.n_embd // self.n_head}")
        return self


# -- KV cache ----------------------------------------------------------------------------------------


class KVCache:
    """Keys and values of the tokens seen so far, per layer, for incremental decoding.

    Layout: one pre-allocated buffer per layer for keys and one for values, each
    (B, n_head, block_size, hd), created on first use with the dtype and device of the keys; keys
    are stored after RoPE. ``pos`` is the absolute position of the next token, which is also the
    number of tokens held. Inference only: buffers are written in place.

    Context overflow. Generation without a cache crops the context to the last block_size tokens
    (nanoGPT). The cache holds at most block_size tokens and the model refuses a chunk that would
    not fit; the sampler then starts a new cache and re-prefills the last block_size tokens, which
    is exactly the cropped computation. So each new token costs one forward of T=1 until the
    context is full, and one forward of T=block_size after that, for RoPE and learned positions alike.

    Why not a rolling cache (drop the oldest entry, keep going at O(1)) for RoPE: it equals the
    crop only in the first layer. From the second layer on, a cached key was computed from hidden
    states that attended to tokens which have since left the window, while in the cropped context
    the first token of the window sees nothing before it. A rolling cache is sliding-window
    attention, a different model from the one trained on block_size windows, and it degrades once
    the first tokens leave (Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks").

    Left padding (batched serving). ``pad`` (B,) gives each row's count of padding slots at the
    start: those keys are masked out and the row's positions start after them, so a row computes
    what it would alone (the positions are exact for RoPE and learned embeddings alike).
    """

    def __init__(self, n_layer: int, window: int, pad: torch.Tensor | None = None):
        self.window = window  # the most tokens the cache holds (block_size)
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer
        self.pos = 0  # absolute position of the next token = tokens held
        self.pad = pad  # (B,) int64 padding slots at the start of each row, or None

    def positions(self, t: int, device) -> torch.Tensor | None:
        """(B, t) position of each new token in its own row (None without padding: pos..pos+t-1)."""
        if self.pad is None:
            return None
        slots = torch.arange(self.pos, self.pos + t, device=device)[None, :]  # (1, t)
        return (slots - self.pad.to(device)[:, None]).clamp_min(0)  # padding slots sit at position 0

    @property
    def full(self) -> bool:
        return self.pos >= self.window

    def _mask(self, t: int, device) -> tuple[torch.Tensor | None, bool]:
        """(attn_mask, is_causal) for a chunk of t new tokens; the same for every layer."""
        if self.pad is not None:  # (B, 1, t, pos+t): causal, and no real token sees a padding slot
            q = torch.arange(self.pos, self.pos + t, device=device)[:, None]  # (t, 1)
            keys = torch.arange(self.pos + t, device=device)  # (S,)
            real = keys[None, :] >= self.pad.to(device)[:, None]  # (B, S)
            # a padding slot sees itself only: a row with no key at all would give NaN values,
            # and NaN times a zero attention weight still poisons the real tokens
            seen = (keys[None, :] <= q)[None] & (real[:, None, :] | (keys[None, :] == q)[None])  # (B, t, S)
            return seen[:, None], False
        if t == 1:
            return None, False  # one query sees every cached key
        if self.pos == 0:
            return None, True  # as many keys as queries: the plain causal mask
        q = torch.arange(self.pos, self.pos + t, device=device)[:, None]  # (t, 1) absolute positions
        return torch.arange(self.pos + t, device=device)[None, :] <= q, False  # (t, pos+t), True: attend

    def _update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store a chunk's (B, H, t, hd) keys and values; return all of them so far, (B, H, pos+t, hd)."""
        B, H, t, hd = k.shape
        if self.k[layer] is None:
            self.k[layer] = k.new_zeros(B, H, self.window, hd)  # (B, H, W, hd)
            self.v[layer] = v.new_zeros(B, H, self.window, hd)
        elif self.k[layer].shape[0] != B:
            raise ValueError(f"the cache holds a batch of {self.k[layer].shape[0]}, the input has {B}")
        end = self.pos + t
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


# -- layers ------------------------------------------------------------------------------------------


def rope_tables(length: int, head_dim: int, base: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each (length, head_dim), for rotate-half RoPE (angles in float64, then float32)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim)  # (hd/2,)
    angles = torch.arange(length, dtype=torch.float64, device=device)[:, None] * inv_freq  # (L, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (L, hd)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, T, hd) queries or keys by (T, hd) tables."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig, index: int):
        super().__init__()
        self.index = index  # which layer of a KVCache this attention reads and writes
        self.n_head, self.n_embd = cfg.n_head, cfg.n_embd  # ints, so a trace keeps no shape-derived constants
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # fused q, k, v
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)  # residual projection
        self.dropout = cfg.dropout if cfg.attn_dropout is None else cfg.attn_dropout  # on attention probabilities
        self.resid_drop = FastDropout(cfg.dropout)

    def _qkv(self, x, cos, sin):
        B, T, _ = x.shape
        C, H = self.n_embd, self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if cos is not None:
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q, k, v

    def forward(self, x, cos=None, sin=None, cache: KVCache | None = None, mask=None, is_causal=True):
        B, T, _C = x.shape
        q, k, v = self._qkv(x, cos, sin)
        if cache is not None:
            k, v = cache._update(self.index, k, v)  # (B, H, S, hd)
        p = self.dropout if self.training else 0.0
        if q.device.type == "cpu" and (torch.is_autocast_enabled("cpu") or v.dtype != torch.float32):
            # PyTorch's CPU flash-attention backward is about 3x slower in bf16 than in float32
            # (measured: 40% of a small GPT's bf16 step); the matmuls around it keep bf16. The test is
            # on autocast, not on q's dtype: RoPE's float32 tables turn bf16 queries into float32 ones,
            # and autocast would still run attention in bf16.
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=p,
                                                   is_causal=is_causal).to(v.dtype)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        # y: (B, H, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_embd)  # (B, T, C)
        return self.resid_drop(self.proj(y))

    def probs(self, x, cos=None, sin=None) -> torch.Tensor:
        """Explicit causal attention probabilities (B, H, T, T), without dropout."""
        q, k, _ = self._qkv(x, cos, sin)
        T = x.shape[1]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        return att.masked_fill(~causal, float("-inf")).softmax(dim=-1)


class ReLU2(nn.Module):
    """max(x, 0)²."""

    def forward(self, x):
        return torch.relu(x).square()


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        hidden = cfg.mlp_ratio * cfg.n_embd
        self.fc = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.act = ReLU2() if cfg.activation == "relu2" else nn.GELU(
            approximate="tanh" if cfg.activation == "gelu_tanh" else "none")
        self.proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)  # residual projection
        self.drop = FastDropout(cfg.dropout)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.drop(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, cfg: GPTConfig, index: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, index)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x, cos=None, sin=None, cache=None, mask=None, is_causal=True):  # (B, T, C)
        x = x + self.attn(self.ln_1(x), cos, sin, cache, mask, is_causal)
        return x + self.mlp(self.ln_2(x))


class Backbone(nn.Module):
    """Token ids (B, T) -> final hidden states (B, T, C): embeddings, blocks, final LayerNorm."""

    def __init__(self, cfg: GPTConfig, block_size: int, vocab_size: int):
        super().__init__()
        self.block_size = block_size
        self.rope_base = cfg.rope_base
        self.wte = nn.Embedding(vocab_size, cfg.n_embd)
        if cfg.positions == "learned":
            self.wpe = nn.Embedding(block_size, cfg.n_embd)
        else:
            self.wpe = None
            cos, sin = rope_tables(block_size, cfg.n_embd // cfg.n_head, cfg.rope_base)
            # Not in the state dict: a pure function of the config.
            self.register_buffer("rope_cos", cos, persistent=False)  # (L, hd)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = FastDropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.grad_checkpointing = False  # train.grad_checkpointing: recompute blocks in the backward pass

    def _rope(self, pos: int, T):
        return self.rope_cos[pos:pos + T], self.rope_sin[pos:pos + T]  # (T, hd) each

    def _check(self, T: int, cache: KVCache | None) -> None:
        if cache is None:
            if T > self.block_size:
                raise ValueError(f"sequence of {T} tokens is longer than the context (block_size {self.block_size}); "
                                 "crop it to the last block_size tokens")
        elif cache.pos + T > self.block_size:
            raise ValueError(f"the KV cache holds {cache.pos} tokens and {T} more do not fit in the context "
                             f"(block_size {self.block_size}); start a new cache with the last block_size tokens")

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        T = idx.shape[1]
        pos = cache.pos if cache is not None else 0
        if not torch.jit.is_tracing():
            self._check(T, cache)
        x = self.wte(idx)  # (B, T, C)
        cos = sin = None
        rows = cache.positions(T, idx.device) if cache is not None else None  # (B, T) when left-padded
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(pos, pos + T, device=idx.device) if rows is None else rows)
        elif rows is None:
            cos, sin = self._rope(pos, T)
        else:
            cos, sin = self.rope_cos[rows][:, None], self.rope_sin[rows][:, None]  # (B, 1, T, hd)
        x = self.drop(x)
        mask, is_causal = (None, True) if cache is None else cache._mask(T, idx.device)
        for block in self.blocks:
            if self.grad_checkpointing and cache is None and torch.is_grad_enabled():
                x = checkpoint(block, x, cos, sin, use_reentrant=False)  # (B, T, C), activations recomputed
            else:
                x = block(x, cos, sin, cache, mask, is_causal)  # (B, T, C)
        if cache is not None:
            cache.pos += T
        return self.ln_f(x)


# -- the model ---------------------------------------------------------------------------------------


class GPT(nn.Module):
    """GPT language model: `features` (token ids -> hidden states) and `head` (-> logits)."""

    def __init__(self, cfg: GPTConfig, block_size: int, vocab_size: int):
        super().__init__()
        self.config = cfg
        self.block_size = block_size  # context length
        self.vocab_size = vocab_size
        self.features = Backbone(cfg, block_size, vocab_size)
        self.head = nn.Linear(cfg.n_embd, vocab_size, bias=False)  # (B, T, C) -> (B, T, V)
        if cfg.tie_weights:
            self.head.weight = self.features.wte.weight
        self._init_gpt2()

    def _init_gpt2(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        # GPT-2: residual projections scaled down so the residual stream's variance does not grow with depth.
        for block in self.features.blocks:
            for proj in (block.attn.proj, block.mlp.proj):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Next-token logits.

        Args:
            idx: token ids (B, T); T <= block_size without a cache.
            cache: a `KVCache` from `new_cache()`; idx then holds the next T tokens after those cached.

        Returns:
            Logits (B, T, vocab_size), float.
        """
        return self.head(self.features(idx, cache)).float()  # (B, T, V)

    def new_cache(self, pad: torch.Tensor | None = None) -> KVCache:
        """An empty KV cache for incremental decoding with this model.

        Args:
            pad: (B,) left-padding slots per row, for a batch of prompts of different lengths.
        """
        return KVCache(self.config.n_layer, self.block_size, pad)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count, tied weights once; `non_embedding` leaves out position embeddings (nanoGPT)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.features.wpe is not None:
            n -= self.features.wpe.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward): 6N + 12·n_layer·n_embd·T.

        N is the non-embedding parameter count; the second term is attention over a context of T
        (block_size by default). PaLM (Chowdhery et al. 2022) appendix B; nanoGPT ``estimate_mfu``.
        """
        T = self.block_size if seq_len is None else seq_len
        return 6 * self.num_params() + 12 * self.config.n_layer * self.config.n_embd * T

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: matrices and embeddings decayed, biases and norm weights not; each parameter once."""
        groups = param_groups(trainable_parameters(self), weight_decay)  # a tied weight counts once
        for g in groups:
            g["name"] = "decay" if decays(g["params"][0]) else "no_decay"
        return groups

    def layer_groups(self) -> list[tuple[str, list[str]]]:
        """Groups for fine-tuning, input to output, head last (see finetune/freezing.py).

        The head is the final LayerNorm and the output projection. With tied weights that
        projection is the token embedding, so it goes with the head: training "the head only"
        then trains the one matrix that both reads and writes tokens.
        """
        names = [n for n, _ in self.named_parameters()]  # a tied weight appears once, as features.wte.weight
        out_proj = "features.wte.weight" if self.config.tie_weights else "head.weight"
        head = [n for n in names if n.startswith("features.ln_f.")] + [out_proj]
        stem = [n for n in names if n.startswith(("features.wte.", "features.wpe.")) and n not in head]
        groups = [("embeddings", stem)] if stem else []
        for i in range(len(self.features.blocks)):
            groups.append((f"blocks.{i}", [n for n in names if n.startswith(f"features.blocks.{i}.")]))
        return groups + [("head", head)]

    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Causal attention probabilities of every layer and head for one prompt.

        Args:
            idx: token ids (1, T) or (T,), T <= block_size.

        Returns:
            (n_layer, n_head, T, T): rows sum to 1, zero above the diagonal.
        """
        idx = idx.view(1, -1) if idx.dim() == 1 else idx
        if idx.shape[0] != 1:
            raise ValueError(f"attention_maps takes one prompt, got a batch of {idx.shape[0]}")
        f = self.features
        with eval_mode(self):
            f._check(idx.shape[1], None)
            T = idx.shape[1]
            x = f.wte(idx)
            cos = sin = None
            if f.wpe is not None:
                x = x + f.wpe(torch.arange(T, device=idx.device))
            else:
                cos, sin = f._rope(0, T)
            maps = []
            for block in f.blocks:
                maps.append(block.attn.probs(block.ln_1(x), cos, sin)[0])  # (H, T, T)
                x = block(x, cos, sin)
            return torch.stack(maps).float()  # (n_layer, H, T, T)


@register_model("gpt", GPTConfig, "GPT-style decoder-only transformer (RoPE or learned positions, weight tying)",
                input_kind="tokens")
def build_gpt(cfg: GPTConfig, input_shape, num_outputs):
    if len(input_shape) != 1:
        raise UserError(f"model 'gpt' reads token ids (block_size,); the data has examples of shape {tuple(input_shape)}")
    if input_shape[0] < 1 or num_outputs < 1:
        raise UserError(f"model 'gpt' needs a context of at least 1 token and a vocabulary of at least 1 "
                        f"(got block_size {input_shape[0]}, vocab_size {num_outputs})")
    return GPT(cfg, block_size=int(input_shape[0]), vocab_size=int(num_outputs))
