"""Rules about preference tuning (DPO, IPO): the implicit rewards ``rewards/chosen``, ``rewards/rejected``
(``beta (logp_policy - logp_ref)`` of each answer), their margin and the reward accuracy.

A reward divided by beta is how far the answer's log-probability moved from the reference's, in nats,
which is what the thresholds below compare; `docs/preference.md` gives the runs they come from.
"""

from __future__ import annotations

import numpy as np

from .evidence import Evidence, Series
from .findings import Finding, set_fix

# Reward collapse: at the end both rewards are below 0 and the chosen answers' log-probability has
# fallen this many nats under the reference's (high from the second). The demo (recipes/dpo_demo.toml,
# beta 0.1) ends with its chosen answers 44 nats above the reference; without its sft_weight they end
# 18 nats below (rejected 102), every greedy answer "............"; on 150 pairs with a quarter of
# them flipped, 30 epochs, 40 below (rejected 58).
COLLAPSE_NATS, COLLAPSE_NATS_HIGH = 5.0, 25.0
# Over-optimisation: held-out reward accuracy fell this much below its best while the training
# margin (a median of the last points, it is noisy) grew this many times over what it was up to that
# best evaluation. The flipped-pairs run: val accuracy 87% at step 7, 74% at step 210, training
# margin from 0.6 to 3.0; the demo keeps 100% throughout.
ACCURACY_FALL, ACCURACY_FALL_HIGH, MARGIN_GROWTH = 0.05, 0.15, 2.0
SMOOTH = 5  # training points in each median


def _either(ev: Evidence, name: str) -> Series | None:
    """The held-out series of a statistic, or the training one when the run has no evaluation of it."""
    val = ev.series(f"val/{name}")
    return val if val is not None and len(val) >= 2 else ev.series(f"train/{name}")


def _beta(ev: Evidence) -> float:
    beta = ev.cfg("preference", "beta", 0.1)
    return float(beta) if isinstance(beta, (int, float)) and beta > 0 else 0.1


def _gentler(ev: Evidence) -> list[str]:
    lr = ev.cfg("optim", "lr", 1e-3) or 1e-3
    return [set_fix(f"optim.lr={lr / 4:.3g}"), set_fix(f"preference.beta={min(100.0, 4 * _beta(ev)):.3g}"),
            set_fix("preference.loss=ipo")]


def dpo_reward_collapse(ev: Evidence) -> list[Finding]:
    chosen, rejected = _either(ev, "rewards/chosen"), _either(ev, "rewards/rejected")
    if chosen is None or rejected is None or len(chosen) < 2:
        return []
    c, r = float(chosen.values[-1]), float(rejected.values[-1])
    drop = -c / _beta(ev)  # nats the chosen answers' log-probability lost against the reference
    if not (np.isfinite(c) and np.isfinite(r)) or c >= 0 or r >= 0 or drop < COLLAPSE_NATS:
        return []
    return [Finding("dpo_reward_collapse", "high" if drop >= COLLAPSE_NATS_HIGH else "medium",
                    f"both rewards fell: the chosen answers' log-probability ended {drop:.3g} nats below the "
                    f"reference's (the rejected ones' {-r / _beta(ev):.3g}); the margin grows by making both "
                    f"answers unlikely, so what the model writes drifts to text neither answer holds",
                    {"tag": chosen.tag, "step": int(chosen.steps[-1]), "reward_chosen": c, "reward_rejected": r,
                     "chosen_logp_drop": drop, "beta": _beta(ev)},
                    ([] if ev.cfg("preference", "sft_weight") else [set_fix("preference.sft_weight=1")]) + _gentler(ev))]


def dpo_overoptimized(ev: Evidence) -> list[Finding]:
    accuracy, margin = ev.series("val/rewards/accuracy"), ev.series("train/rewards/margin")
    if accuracy is None or margin is None or len(accuracy) < 3 or len(margin) < 2:
        return []
    i = int(np.argmax(accuracy.values))
    best, end = float(accuracy.values[i]), float(accuracy.values[-1])
    upto = margin.values[margin.steps <= accuracy.steps[i]]
    then = float(np.median(upto[-SMOOTH:])) if len(upto) else float(margin.values[0])
    now = float(np.median(margin.values[-SMOOTH:]))
    fall = best - end
    if fall < ACCURACY_FALL or then <= 0 or now < MARGIN_GROWTH * then:
        return []
    return [Finding("dpo_overoptimized", "high" if fall >= ACCURACY_FALL_HIGH else "medium",
                    f"the training margin grew from {then:.3g} to {now:.3g} while the held-out reward accuracy "
                    f"fell from {best:.1%} (step {accuracy.steps[i]}) to {end:.1%}: the model learns the training "
                    f"pairs, not the preference",
                    {"tag": accuracy.tag, "best_step": int(accuracy.steps[i]), "best": best, "end": end,
                     "margin_tag": margin.tag, "margin_at_best": then, "margin_end": now},
                    [set_fix(f"train.max_steps={int(accuracy.steps[i]) + 1}"), *_gentler(ev)])]
