"""Optimizers and learning-rate schedules.

Schedules are pure functions of the step, so a resumed run needs nothing but the step count to
continue the schedule exactly; the one exception, `plateau`, reads the monitored metric and keeps
its state in the checkpoint (train/plateau.py).

The learning rate's path: `OptimConfig.lr` (or a fine-tune's per-group rates from
`finetune/lr_groups.py`) becomes each group's ``base_lr`` in `build_optimizer`. Before each step the
Trainer (`train/loop.py`) sets every group's rate to ``base_lr × lr_multiplier(schedule, step)`` with
`set_lr`, and records the multiplier and the first group's rate in `TrainState` for callbacks.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import UserError
from ..models.groups import model_param_groups


def build_optimizer(model: nn.Module, cfg, groups: list[dict] | None = None) -> torch.optim.Optimizer:
    """Build the optimizer described by an OptimConfig.

    Args:
        model: the model; its trainable parameters are optimised unless `groups` is given.
        cfg: an OptimConfig.
        groups: explicit parameter groups (each may carry its own ``lr`` and a ``name``), e.g.
            a fine-tune's layer-wise rates over every parameter that will ever train.
    """
    groups = [dict(g) for g in groups] if groups is not None else model_param_groups(model, cfg.weight_decay)
    if not any(g["params"] for g in groups):
        raise UserError("the model has no trainable parameters: everything is frozen")
    for g in groups:
        g.setdefault("lr", cfg.lr)
    if cfg.name == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    elif cfg.name in ("adam", "adamw"):
        # One fused kernel per parameter instead of about ten small ops: 5-8% of a small GPT's step on a CPU.
        fused = _fused_supported(groups)
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=fused or None)
    else:
        opt = torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum, eps=cfg.eps)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]  # the schedule scales each group's own base rate
    return opt


def _fused_supported(groups: list[dict]) -> bool:
    params = [p for g in groups for p in g["params"]]
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def lr_multiplier(cfg, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Factor applied to each group's base learning rate before optimizer step `step` (0-based).

    Args:
        cfg: a ScheduleConfig.
        step: optimizer steps done so far.
        total_steps: optimizer steps in the whole run.
        steps_per_epoch: optimizer steps per epoch (for the epoch-based schedules).
    """
    warm = cfg.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    if cfg.name == "onecycle":
        return _onecycle(cfg, step, total_steps)
    t = step - warm
    span = max(total_steps - warm, 1)
    epoch = t / max(steps_per_epoch, 1)
    if cfg.name in ("constant", "plateau"):  # plateau's own factor comes from train/plateau.py
        return 1.0
    if cfg.name == "step":
        return cfg.gamma ** math.floor(epoch / cfg.step_epochs + 1e-9)
    if cfg.name == "exponential":
        return cfg.gamma ** epoch
    # cosine
    progress = min(t / span, 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _onecycle(cfg, step: int, total_steps: int) -> float:
    """Smith & Topin's one-cycle policy with cosine phases, as in torch's OneCycleLR."""
    start, final = 1 / cfg.div_factor, 1 / (cfg.div_factor * cfg.final_div_factor)
    peak_step = max(cfg.pct_start * total_steps - 1, 1)
    if step <= peak_step:
        return _cos_between(start, 1.0, step / peak_step)
    return _cos_between(1.0, final, min((step - peak_step) / max(total_steps - 1 - peak_step, 1), 1.0))


def _cos_between(a: float, b: float, pct: float) -> float:
    return b + (a - b) / 2 * (1 + math.cos(math.pi * pct))


def set_lr(optimizer: torch.optim.Optimizer, multiplier: float) -> float:
    """Set every group's lr to base_lr × multiplier; return the first group's lr."""
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * multiplier
    return optimizer.param_groups[0]["lr"]
