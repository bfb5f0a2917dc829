"""Rules about the optimisation itself: divergence, the learning rate, gradient sizes.

Thresholds were set on real runs of the digits recipes (see docs/tuning.md): the healthy MLP and
CNN recipes update their weights by 1.0e-3 and 3.6e-3 of their norm per step at the schedule's
peak, their first layers get 0.5 to 1 times the gradient of the largest layer, and their loss
never jumps to 3x its recent median.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .evidence import Evidence, Series
from .findings import Finding, set_fix

# Update-to-weight ratio ||dW|| / ||W|| per step (Karpathy's rule of thumb: about 1e-3). Healthy
# runs measure 1.0e-3 (digits MLP), 3.6e-3 (digits CNN) and 1.1e-2 (the char GPT recipe: Adam on a
# transformer runs higher). Twenty times above 1e-3 the weights change by a fifth in ten steps: the
# digits MLP at lr 0.05 without batch norm measures 2.5e-2 and kills most of its ReLU units; at lr
# 1.0 6e-2 and ends far worse. Ten times below, a run of 1,000 steps moves its weights by a few
# percent at most (lr 1e-5: 5e-5, the loss falls by a tenth in 300 steps).
RATIO_HIGH, RATIO_VERY_HIGH = 2e-2, 5e-2
RATIO_LOW, RATIO_VERY_LOW = 1e-4, 1e-5
SPIKE_FACTOR, SPIKE_WINDOW = 3.0, 20  # a loss 3x the median of the 20 steps before it is a spike (healthy runs: none)
SPIKES_MIN = 3
SLOW_DECREASE = 0.5  # "slow": the loss lost less than half of its starting value over the run
# Gradient norm grows 10x from the first to the last quarter, or jumps to 100x the first quarter's
# median (not the whole run's: norms shrink towards zero as a fit converges).
EXPLODE_FACTOR = 10.0
VANISH_RATIO, VANISH_SEVERE = 1e-2, 1e-3  # a layer's gradient this far below the largest layer's


def start_end(loss: Series) -> tuple[float, float]:
    """Medians of the first 5% and the last 10% of a loss curve (at least 3 points each)."""
    v = loss.values[np.isfinite(loss.values)]
    n = len(v)
    return float(np.median(v[: max(n // 20, 3)])), float(np.median(v[-max(n // 10, 3):]))


def _lr_fix(ev: Evidence, factor: float) -> str:
    lr = ev.cfg("optim", "lr", 1e-3)
    return set_fix(f"optim.lr={lr * factor:.3g}")


def diverged(ev: Evidence) -> list[Finding]:
    loss = ev.series("train/loss")
    if loss is None or len(loss) < 3:
        return []
    grads = ev.series("train/grad_norm")
    for s in (loss, grads):
        if s is not None and not np.all(np.isfinite(s.values)):
            i = int(np.argmin(np.isfinite(s.values)))
            return [Finding("diverged", "high", f"{s.tag} became {s.values[i]} at step {s.steps[i]}: training diverged",
                            {"tag": s.tag, "step": int(s.steps[i]), "value": float(s.values[i])},
                            [_lr_fix(ev, 0.1), set_fix("optim.clip_norm=1.0")])]
    start, end = start_end(loss)
    # the trainer stops a run whose loss blows up before logging it: the run ends unfinished, far above its low
    low = float(np.nanmin(loss.values))
    stopped = ev.metrics is None and not ev.finished and loss.values[-1] > 10 * max(low, 1e-3)
    if end > 1.5 * start or stopped:
        return [Finding("diverged", "high", f"the training loss ended at {end:.4g}, above where it started "
                        f"({start:.4g}) and far above its lowest ({low:.4g})",
                        {"tag": loss.tag, "start": start, "end": end, "lowest": low, "last_step": int(loss.steps[-1])},
                        [_lr_fix(ev, 0.1), set_fix("optim.clip_norm=1.0")])]
    return []


def spikes(loss: Series) -> list[int]:
    """Steps where the loss jumps to SPIKE_FACTOR times the median of the SPIKE_WINDOW points before it.

    The first 10% of training is left out (the loss falls fast there), and so are jumps that stay
    below half the starting loss (noise around a loss near zero).
    """
    v = loss.values
    first = max(len(v) // 10, SPIKE_WINDOW)
    if len(v) <= first:
        return []
    start = float(np.median(v[: max(len(v) // 20, 3)]))
    before = np.median(sliding_window_view(v[:-1], SPIKE_WINDOW), axis=1)  # before[i - W]: the W points before i
    at = np.arange(first, len(v))
    jumped = (v[at] > SPIKE_FACTOR * before[at - SPIKE_WINDOW]) & (v[at] > 0.5 * start)
    return [int(s) for s in loss.steps[at[jumped]]]


def peak_update_ratio(ev: Evidence) -> tuple[float, int] | None:
    """Median update ratio (all layers) while the learning rate is at least half its peak, and the points used."""
    ratio, lr = ev.series("layers/update_ratio/_all"), ev.series("train/lr")
    if ratio is None or lr is None or len(ratio) < 2:
        return None
    ratio_steps_lr = np.interp(ratio.steps, lr.steps, lr.values)
    peak = (ratio_steps_lr >= 0.5 * lr.values.max()) & np.isfinite(ratio.values)
    if peak.sum() < 2:
        return None
    return float(np.median(ratio.values[peak])), int(peak.sum())


def lr_too_high(ev: Evidence) -> list[Finding]:
    loss = ev.series("train/loss")
    if loss is None or len(loss) < 20:
        return []
    jumps = spikes(loss)
    peak = peak_update_ratio(ev)
    ratio = peak[0] if peak else None
    evidence = {"tag": loss.tag, "spikes": len(jumps), "spike_steps": jumps[:5]}
    if ratio is not None:
        evidence.update({"update_ratio": ratio, "ratio_tag": "layers/update_ratio/_all", "healthy_ratio": 1e-3})
    high = ratio is not None and ratio >= RATIO_VERY_HIGH
    if not (high or (ratio is not None and ratio >= RATIO_HIGH) or len(jumps) >= SPIKES_MIN):
        return []
    what = f"each step changes the weights by {ratio:.2g} of their norm (about 1e-3 is healthy)" if ratio else ""
    jumped = f"the loss jumped {len(jumps)} times to over {SPIKE_FACTOR:g}x its recent median" if len(jumps) >= \
        SPIKES_MIN else ""
    return [Finding("lr_too_high", "high" if high else "medium",
                    "the learning rate is too high: " + "; ".join(x for x in (what, jumped) if x), evidence,
                    [_lr_fix(ev, 0.3 if high else 0.5), set_fix("optim.clip_norm=1.0")])]


def lr_too_low(ev: Evidence) -> list[Finding]:
    loss, peak = ev.series("train/loss"), peak_update_ratio(ev)
    if loss is None or peak is None or len(loss) < 20:
        return []
    ratio = peak[0]
    start, end = start_end(loss)
    decrease = 1 - end / start if start > 0 else 0.0
    if ratio > RATIO_LOW or decrease > SLOW_DECREASE:
        return []
    return [Finding("lr_too_low", "high" if ratio <= RATIO_VERY_LOW else "medium",
                    f"the learning rate is too low: each step changes the weights by {ratio:.2g} of their norm "
                    f"(about 1e-3 is healthy) and the loss fell only {decrease:.0%}",
                    {"ratio_tag": "layers/update_ratio/_all", "update_ratio": ratio, "healthy_ratio": 1e-3,
                     "tag": loss.tag, "loss_start": start, "loss_end": end},
                    [_lr_fix(ev, min(10.0, 1e-3 / max(ratio, 1e-12))), "zerotune lr-find RECIPE"])]


def exploding_gradients(ev: Evidence) -> list[Finding]:
    g = ev.series("train/grad_norm")
    if g is None or len(g) < 8 or not np.all(np.isfinite(g.values)):
        return []  # non-finite norms are `diverged`
    q = len(g) // 4
    first, last, top = float(np.median(g.values[:q])), float(np.median(g.values[-q:])), float(g.values.max())
    at = int(g.steps[int(np.argmax(g.values))])
    grew, jumped = last > EXPLODE_FACTOR * first, top > EXPLODE_FACTOR ** 2 * first
    if not (grew or jumped):
        return []
    clipped = ev.cfg("optim", "clip_norm")
    message = (f"the gradient norm grew from {first:.3g} to {last:.3g}" if grew
               else f"the gradient norm jumped to {top:.3g} at step {at}, {top / first:.0f}x its early median")
    if clipped:
        message += f" (clipped to {clipped:g}, so the steps stayed bounded)"
    return [Finding("exploding_gradients", "low" if clipped else "medium", message,
                    {"tag": g.tag, "first_quarter": first, "last_quarter": last, "max": top, "max_step": at},
                    [set_fix("optim.clip_norm=1.0"), _lr_fix(ev, 0.5)] if not clipped else [_lr_fix(ev, 0.5)])]


def vanishing_gradients(ev: Evidence) -> list[Finding]:
    """Layers whose gradient is a tiny fraction of the largest layer's: they barely learn."""
    layers = ev.weight_layers()
    if len(layers) < 2:
        return []
    norms = {}
    for name in layers:
        s = ev.series(f"layers/grad_norm/{name}")
        if s is None or not np.all(np.isfinite(s.values)):
            continue
        trained = s.values[s.values > 0]  # a layer frozen for part of a fine-tune has no gradient then
        if len(trained):
            norms[name] = float(np.median(trained))
    if len(norms) < 2 or max(norms.values()) <= 0:
        return []
    top_name = max(norms, key=norms.get)
    small = {n: v / norms[top_name] for n, v in norms.items() if v < VANISH_RATIO * norms[top_name]}
    if not small:
        return []
    worst = min(small.values())
    fixes = [set_fix("model.batch_norm=true")] if "batch_norm" in (ev.config.get("model") or {}) else []
    if (ev.config.get("model") or {}).get("activation") in ("sigmoid", "tanh"):
        fixes.insert(0, set_fix("model.activation=relu"))
    fixes.append(set_fix("model.init=he"))
    return [Finding("vanishing_gradients", "high" if worst < VANISH_SEVERE else "medium",
                    f"{len(small)} of {len(norms)} layers get gradients under {VANISH_RATIO:g}x the largest "
                    f"({top_name}); they barely learn",
                    {"tag": "layers/grad_norm/*", "largest": top_name, "largest_norm": norms[top_name],
                     "relative": {n: small[n] for n in small}},
                    fixes)]
