"""Rules about instruction tuning: answers that never come right, and answers that get worse as training goes on.

They read an instruction-tuning run's evaluations: ``val/exact_match`` (greedy answers to held-out
prompts), ``val/loss`` (the held-out answer tokens) and ``train/epoch_loss`` (the training answer
tokens, per epoch). The thresholds come from the runs of ``python benchmarks/sft_doctor.py``
(docs/tuning.md, "Instruction tuning").
"""

from __future__ import annotations

import numpy as np

from .evidence import Evidence, Series
from .findings import Finding, set_fix

# Not learning: after at least 3 evaluations no held-out answer has come right (exact match at most
# 2%). The LoRA run of the benchmark sat at 0.0 for all 6 evaluations, its answer loss stalled at
# 1.53 from the second epoch on; every run that learned was above 10% by its third evaluation.
NOT_LEARNING_EM, MIN_EVALS = 0.02, 3
# Over the second half of the run the answer loss fell 5% or more: it learns, only not the answers yet
# (more epochs first); less is a stall (a higher rate, every weight or a larger model first).
FALLING = 0.05
# Overfitting: the held-out answer loss ended 20% above its best, or the exact match 10 points below
# its best, while the training answer loss kept falling. The full fine-tune of 200 records for 60
# epochs ends far beyond both; the healthy runs of the benchmark end within 2% and 2 points.
VAL_RISE, EM_DROP = 0.2, 0.10


def _train_loss(ev: Evidence) -> Series | None:
    return ev.series("train/epoch_loss")


def _stronger(ev: Evidence, falling: bool) -> list[str]:
    """What makes tuning stronger. LoRA to full tuning first where the loss stalls: in the benchmark LoRA stayed at
    0% at any setting while full tuning at 2e-3 reached 100%; more epochs first where it still falls (the full
    run's loss sat at 1.53 for 4 epochs, then fell, and its answers came right)."""
    lr, epochs = ev.cfg("optim", "lr", 1e-3) or 1e-3, int(ev.cfg("train", "epochs", 20) or 20)
    longer = set_fix(f"train.epochs={3 * epochs}")
    full = [] if ev.cfg("finetune", "strategy") == "full" else [
        "--strategy full " + set_fix("optim.lr=2e-3", f"train.epochs={max(epochs, 20)}")]
    rest = [set_fix(f"optim.lr={3 * lr:.3g}"),
            "a larger base model: --from a run with more layers or width (model.n_layer, model.n_embd)"]
    return [longer, *full, *rest] if falling else [*full, longer, *rest]


def sft_not_learning(ev: Evidence) -> list[Finding]:
    em, loss = ev.series("val/exact_match"), _train_loss(ev)
    # a finished run only: answers can come right late (the full run of the benchmark after 6 evaluations at 0)
    if (ev.task != "sft" or ev.metrics is None or em is None or len(em) < MIN_EVALS
            or float(em.values.max()) > NOT_LEARNING_EM):
        return []
    half = loss.tail(0.5) if loss is not None else None
    first = float(half.values[0]) if half is not None else float("nan")
    last = float(half.values[-1]) if half is not None else float("nan")
    falling = half is not None and last < (1 - FALLING) * first
    trend = "still fell" if falling else "stalled"
    fixes = _stronger(ev, falling)
    return [Finding("sft_not_learning", "high",
                    f"no held-out answer came right: exact match at most {float(em.values.max()):.0%} over "
                    f"{len(em)} evaluations while the train answer loss {trend} over the second half of the run "
                    f"({first:.3g} to {last:.3g}); the tuning is too weak for this task",
                    {"tag": em.tag, "evaluations": len(em), "exact_match_max": float(em.values.max()),
                     "train_loss_mid": first, "train_loss_last": last,
                     "strategy": ev.cfg("finetune", "strategy")}, fixes)]


def _fell_since(train: Series, step: int) -> bool:
    """Whether the training answer loss is lower at the end than at `step`."""
    return float(train.values[-1]) < float(np.interp(step, train.steps, train.values))


def sft_overfit(ev: Evidence) -> list[Finding]:
    val, em, train = ev.series("val/loss"), ev.series("val/exact_match"), _train_loss(ev)
    if ev.task != "sft" or val is None or train is None or len(val) < 4:
        return []
    i = int(np.argmin(val.values))
    best, end = float(val.values[i]), float(val.values[-1])
    rise = end / best - 1 if best > 0 else 0.0
    j = int(np.argmax(em.values)) if em is not None and len(em) else None
    drop = float(em.values[j] - em.values[-1]) if j is not None else 0.0
    by_loss = rise >= VAL_RISE and _fell_since(train, int(val.steps[i]))
    by_answers = drop >= EM_DROP and _fell_since(train, int(em.steps[j]))
    if not (by_loss or by_answers):
        return []
    best_step = int(em.steps[j]) if by_answers else int(val.steps[i])
    said = []
    if by_loss:
        said.append(f"the held-out answer loss rose {rise:.0%} above its best (step {int(val.steps[i])})")
    if by_answers:
        said.append(f"the exact match fell from {float(em.values[j]):.0%} (step {best_step}) to {float(em.values[-1]):.0%}")
    epochs = int(ev.cfg("train", "epochs", 20) or 20)
    best_epoch = max(1, round(epochs * best_step / max(ev.last_step, 1)))
    fixes = [set_fix("train.monitor=val/exact_match", "train.monitor_mode=max", "train.early_stopping.patience=3"),
             set_fix(f"train.epochs={best_epoch}"), "more training records (data.path)"]
    if ev.cfg("finetune", "strategy") == "full":
        fixes.append("--strategy lora")
    return [Finding("sft_overfit", "high" if by_answers else "medium",
                    " and ".join(said) + " while the train answer loss kept falling: the model learns the "
                    "training answers by heart",
                    {"tag": val.tag, "best_step": int(val.steps[i]), "best": best, "end": end,
                     "exact_match_best": float(em.values[j]) if j is not None else None,
                     "exact_match_end": float(em.values[-1]) if j is not None else None}, fixes)]
