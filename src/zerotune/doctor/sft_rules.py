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

# Not learning: a finished run none of whose held-out answers came right (exact match at most 2%
# at every one of 3 evaluations or more). The recipe's LoRA sat at 0.0 for all 6 evaluations, its
# answer loss stalled at 1.53, and so did LoRA at 1e-2 for 20. Only the end is judged: answers can
# come right late (full tuning on 100 records got its first at the 55th evaluation, then 95%).
NOT_LEARNING_EM, MIN_EVALS = 0.02, 3
# Over the second half of the run the answer loss fell 5% or more: it learns, only not the answers yet
# (more epochs first); less is a stall (full tuning, a higher rate or a larger model first).
FALLING = 0.05
# Overfitting: while the training answer loss kept falling, the held-out answer loss ended 10% above
# its best, or the exact match 10 points below its best. On 40 training records the held-out loss
# ended 21% above its best and still rose (train 0.38 to 0.11); the runs that learned the task ended
# within 0.7% of their best held-out loss and 1.6 points of their best exact match.
VAL_RISE, EM_DROP = 0.10, 0.10


def _train_loss(ev: Evidence) -> Series | None:
    return ev.series("train/epoch_loss")


def _stronger(ev: Evidence, falling: bool) -> list[str]:
    """What makes tuning stronger. LoRA to full tuning first where the loss stalls: in the benchmark LoRA stayed at
    0% at both settings tried (3e-3 for 6 epochs, 1e-2 for 20) while full tuning at 2e-3 for 20 epochs reached
    100%, its loss at 1.53 for 3 epochs before it fell; more epochs first where the loss still falls."""
    lr, epochs = ev.cfg("optim", "lr", 1e-3) or 1e-3, int(ev.cfg("train", "epochs", 20) or 20)
    longer = set_fix(f"train.epochs={3 * epochs}")
    full = [] if ev.cfg("finetune", "strategy") == "full" else [
        "--strategy full " + set_fix("optim.lr=2e-3", f"train.epochs={max(epochs, 20)}")]
    rest = [set_fix(f"optim.lr={3 * lr:.3g}"),
            "a larger base model: --from a run with more layers or width (model.n_layer, model.n_embd)"]
    return [longer, *full, *rest] if falling else [*full, longer, *rest]


def sft_not_learning(ev: Evidence) -> list[Finding]:
    em, loss = ev.series("val/exact_match"), _train_loss(ev)
    # a finished run only: answers can come right late (the full run of the benchmark after 6 evaluations at 0);
    # one that learns its training answers by heart is sft_overfit's, whose fixes differ
    if (ev.task != "sft" or ev.metrics is None or em is None or len(em) < MIN_EVALS
            or float(em.values.max()) > NOT_LEARNING_EM or _loss_rise(ev) is not None):
        return []
    half = loss.tail(0.5) if loss is not None else None
    first = float(half.values[0]) if half is not None else float("nan")
    last = float(half.values[-1]) if half is not None else float("nan")
    falling = half is not None and last < (1 - FALLING) * first
    trend = "still fell" if falling else "stalled"
    return [Finding("sft_not_learning", "high",
                    f"no held-out answer came right: exact match at most {float(em.values.max()):.0%} over "
                    f"{len(em)} evaluations while the train answer loss {trend} over the second half of the run "
                    f"({first:.3g} to {last:.3g}); the tuning is too weak for this task",
                    {"tag": em.tag, "evaluations": len(em), "exact_match_max": float(em.values.max()),
                     "train_loss_mid": first, "train_loss_last": last,
                     "strategy": ev.cfg("finetune", "strategy")}, _stronger(ev, falling))]


def _fell_since(train: Series, step: int) -> bool:
    """Whether the training answer loss is lower at the end than at `step`."""
    return float(train.values[-1]) < float(np.interp(step, train.steps, train.values))


def _loss_rise(ev: Evidence) -> tuple[int, float, float] | None:
    """(best step, best, end) of the held-out answer loss when it ended `VAL_RISE` above its best while the
    training answer loss fell; else None."""
    val, train = ev.series("val/loss"), _train_loss(ev)
    if ev.task != "sft" or val is None or train is None or len(val) < 4:
        return None
    i = int(np.argmin(val.values))
    best, end = float(val.values[i]), float(val.values[-1])
    if best <= 0 or end / best - 1 < VAL_RISE or not _fell_since(train, int(val.steps[i])):
        return None
    return int(val.steps[i]), best, end


def _answers_drop(ev: Evidence) -> tuple[int, float, float] | None:
    """(best step, best, end) of the exact match when it ended `EM_DROP` below its best while the training
    answer loss fell; else None."""
    em, train = ev.series("val/exact_match"), _train_loss(ev)
    if ev.task != "sft" or em is None or train is None or len(em) < 4:
        return None
    j = int(np.argmax(em.values))
    best, end = float(em.values[j]), float(em.values[-1])
    if best - end < EM_DROP or not _fell_since(train, int(em.steps[j])):
        return None
    return int(em.steps[j]), best, end


def sft_overfit(ev: Evidence) -> list[Finding]:
    by_loss, by_answers = _loss_rise(ev), _answers_drop(ev)
    if by_loss is None and by_answers is None:
        return []
    said, evidence = [], {}
    if by_loss:
        step, best, end = by_loss
        said.append(f"the held-out answer loss rose {end / best - 1:.0%} above its best (step {step})")
        evidence.update(tag="val/loss", best_step=step, best=best, end=end)
    if by_answers:
        step, best, end = by_answers
        said.append(f"the exact match fell from {best:.0%} (step {step}) to {end:.0%}")
        evidence.update(exact_match_step=step, exact_match_best=best, exact_match_end=end)
    em = ev.series("val/exact_match")
    never = em is not None and float(em.values.max()) <= NOT_LEARNING_EM
    return [Finding("sft_overfit", "high" if by_answers or never else "medium",
                    " and ".join(said) + " while the train answer loss kept falling: the model learns the training "
                    "answers by heart" + (", and no held-out answer came right" if never else ""),
                    evidence, _overfit_fixes(ev, (by_answers or by_loss)[0], never))]


def _overfit_fixes(ev: Evidence, best_step: int, never: bool) -> list[str]:
    """Stop at the best answers, train less, more records (first when no answer ever came right), fewer weights."""
    epochs = int(ev.cfg("train", "epochs", 20) or 20)
    best_epoch = max(1, round(epochs * best_step / max(ev.last_step, 1)))
    by_answers = set_fix("train.monitor=val/exact_match", "train.monitor_mode=max", "train.early_stopping.patience=3")
    shorter = set_fix(f"train.epochs={best_epoch}")
    more = "more training records (data.path): with more, the task is learned rather than each answer"
    fixes = [more, shorter] if never else [by_answers, shorter, more]
    return fixes + (["--strategy lora"] if ev.cfg("finetune", "strategy") == "full" else [])
