"""Rules about how well the model fits: overfitting, underfitting, plateaus, training past the best.

They read the evaluations (``val/*``, ``train/eval_loss``: the train split in eval mode, so train
and val compare like for like), the training loss and the best checkpoint's step.
"""

from __future__ import annotations

import numpy as np

from .evidence import Evidence
from .findings import Finding, set_fix

# Overfitting: the val loss ended 10% above its best while the train loss kept falling, so the
# train-val gap widened. The healthy digits recipes end within 1% of their best val loss; the MLP
# on 5 examples per class without dropout or decay ends 20% above it (high from 50%).
VAL_RISE, VAL_RISE_HIGH = 0.10, 0.5
# Underfitting: the train loss ends above half the loss of a model that learned nothing (ln 10 =
# 2.30 for ten classes); the healthy recipes end at 0.004 (MLP) and 0.52 (CNN, label smoothing 0.1).
UNDERFIT, UNDERFIT_HIGH = 0.5, 0.9
STILL_FALLING = 0.05  # the train loss fell 5% over the last 30% of the run: more steps would help
# Plateau: over the last 30% of the steps the training loss fell less than 2% and the monitored
# metric did not improve by 1% of its value, while the loss is still a fifth of chance or more (a
# finished fit is not stuck).
PLATEAU_TAIL, PLATEAU_DROP, PLATEAU_GAIN, PLATEAU_LOSS = 0.3, 0.02, 0.01, 0.2
# Early stop wasted: the best evaluation came before half of the steps (medium) or 70% (low),
# with at least 3 evaluations after it. The healthy recipes' best comes at 85% of the run.
WASTED_MEDIUM, WASTED_LOW, AFTER_BEST_EVALS = 0.5, 0.7, 3


def _regularise_fixes(ev: Evidence) -> list[str]:
    model = ev.config.get("model") or {}
    fixes = []
    if "dropout" in model:
        dropout = ev.model_option("dropout", (int, float)) or 0
        fixes.append(set_fix(f"model.dropout={min(0.5, dropout + 0.2):.2g}"))
    fixes.append(set_fix(f"optim.weight_decay={max(0.05, 2 * (ev.cfg('optim', 'weight_decay') or 0)):.3g}"))
    if ev.meta.get("input_shape") and len(ev.meta["input_shape"]) == 3 and not (ev.cfg("data", "augment") or {}).get(
            "rotate_degrees"):
        fixes.append(set_fix("data.augment.rotate_degrees=10", "data.augment.shift=0.1"))
    fixes.append(set_fix("train.early_stopping.patience=5"))
    return fixes


def overfitting(ev: Evidence) -> list[Finding]:
    val = ev.series("val/loss")
    train = ev.series("train/eval_loss") or ev.series("train/epoch_loss")
    if val is None or train is None or len(val) < 4 or ev.task == "sft":  # sft_overfit says it with the answers
        return []
    i = int(np.argmin(val.values))
    best, end = float(val.values[i]), float(val.values[-1])
    t = np.interp(val.steps, train.steps, train.values)
    gap_best, gap_end = best - float(t[i]), end - float(t[-1])
    rise = end / best - 1 if best > 0 else 0.0
    if rise < VAL_RISE or gap_end <= max(gap_best, 0.0) or t[-1] >= t[i]:
        return []
    return [Finding("overfitting", "high" if rise >= VAL_RISE_HIGH else "medium",
                    f"the val loss rose {rise:.0%} above its best (step {val.steps[i]}) while the train loss "
                    f"kept falling: the train-val gap grew from {gap_best:.3g} to {gap_end:.3g}",
                    {"tag": "val/loss", "best_step": int(val.steps[i]), "best": best, "end": end,
                     "train_tag": train.tag, "gap_at_best": gap_best, "gap_at_end": gap_end},
                    _regularise_fixes(ev))]


def underfitting(ev: Evidence) -> list[Finding]:
    chance = ev.chance_loss
    train = ev.series("train/eval_loss") or ev.series("train/epoch_loss")
    if chance is None or train is None or len(train) < 2:
        return []
    end = float(train.values[-1])
    if not np.isfinite(end) or end < UNDERFIT * chance:
        return []
    hidden = ev.model_option("hidden", list)
    capacity = []
    if hidden and all(isinstance(h, int) for h in hidden):
        capacity.append(set_fix(f"model.hidden={[2 * h for h in hidden]}".replace(" ", "")))
    if ev.model_option("dropout", (int, float)):
        capacity.append(set_fix("model.dropout=0"))
    if ev.cfg("optim", "weight_decay"):
        capacity.append(set_fix("optim.weight_decay=0"))
    longer = [set_fix(f"train.epochs={2 * int(ev.cfg('train', 'epochs', 20) or 20)}")]
    # still falling at the end: more steps first; levelled off: a bigger or freer model first
    tail = train.tail(0.3).values
    fixes = longer + capacity if len(tail) >= 2 and tail[-1] < (1 - STILL_FALLING) * tail[0] else capacity + longer
    return [Finding("underfitting", "high" if end >= UNDERFIT_HIGH * chance else "medium",
                    f"the train loss stays high: {end:.3g} at the end, against {chance:.3g} for a model that "
                    f"learned nothing; the model is too small, too regularised or trained too briefly",
                    {"tag": train.tag, "step": int(train.steps[-1]), "end": end, "chance_loss": chance}, fixes)]


def _monitor(ev: Evidence) -> tuple[str, str] | None:
    """(monitored tag, "min" or "max") from the best/* tag the run logs."""
    tag = next((t.removeprefix("best/") for t in ev.scalars if t.startswith("best/")), None)
    if tag is None:
        return None
    mode = ((ev.metrics or {}).get("training") or {}).get("monitor_mode")
    higher = any(s in tag for s in ("accuracy", "r2", "f1", "auc"))
    return tag, mode or ("max" if higher else "min")


def plateau(ev: Evidence) -> list[Finding]:
    loss, chance, monitor = ev.series("train/loss"), ev.chance_loss, _monitor(ev)
    if loss is None or len(loss) < 50 or monitor is None:
        return []
    tail = loss.tail(PLATEAU_TAIL)
    if len(tail) < 10:
        return []
    k = max(len(tail) // 5, 3)
    first, last = float(np.median(tail.values[:k])), float(np.median(tail.values[-k:]))
    metric = ev.series(monitor[0])
    if metric is None or len(metric.tail(PLATEAU_TAIL)) < 3:
        return []
    before = metric.values[metric.steps < tail.steps[0]]
    after = metric.tail(PLATEAU_TAIL).values
    if not len(before):
        return []
    margin = PLATEAU_GAIN * abs(float(before.min() if monitor[1] == "min" else before.max()))
    improved = after.min() < before.min() - margin if monitor[1] == "min" else after.max() > before.max() + margin
    if improved or last < (1 - PLATEAU_DROP) * first or (chance and last < PLATEAU_LOSS * chance):
        return []
    return [Finding("plateau", "low",
                    f"no progress over the last {PLATEAU_TAIL:.0%} of training: the train loss went from "
                    f"{first:.3g} to {last:.3g} and {monitor[0]} did not improve; the rate fell too early, "
                    f"or this is as far as this model gets",
                    {"tag": loss.tag, "from_step": int(tail.steps[0]), "loss_then": first, "loss_end": last,
                     "monitor": monitor[0]},
                    ([] if ev.cfg("schedule", "name") == "cosine" else [set_fix("schedule.name=cosine")])
                    + [_half_lr(ev), "zerotune lr-find RECIPE"])]


def _half_lr(ev: Evidence) -> str:
    return set_fix(f"optim.lr={(ev.cfg('optim', 'lr', 1e-3) or 1e-3) / 2:.3g}")


def early_stop_wasted(ev: Evidence) -> list[Finding]:
    monitor = _monitor(ev)
    if monitor is None:
        return []
    best = ev.series(f"best/{monitor[0]}")
    metric = ev.series(monitor[0])
    last = ev.last_step
    if best is None or metric is None or last <= 0:
        return []
    # the step of the best evaluation: where best/* last changed
    changed = np.flatnonzero(np.diff(best.values) != 0)
    best_step = int(best.steps[changed[-1] + 1]) if len(changed) else int(best.steps[0])
    if ev.metrics and (ev.metrics.get("training") or {}).get("best_step") is not None:
        best_step = int(ev.metrics["training"]["best_step"])
    share, after = best_step / last, int((metric.steps > best_step).sum())
    if share > WASTED_LOW or after < AFTER_BEST_EVALS:
        return []
    steps_per_eval = max(1, last // max(len(metric), 1))
    patience = max(3, min(10, after // 3))
    return [Finding("early_stop_wasted", "medium" if share <= WASTED_MEDIUM else "low",
                    f"the best {monitor[0]} came at step {best_step} of {last} ({share:.0%}); the "
                    f"{after} evaluations after it did not improve on it",
                    {"tag": f"best/{monitor[0]}", "best_step": best_step, "last_step": last,
                     "evaluations_after": after, "steps_per_evaluation": steps_per_eval},
                    [set_fix(f"train.early_stopping.patience={patience}"),
                     set_fix(f"train.max_steps={int(best_step * 1.2) + 1}")])]
