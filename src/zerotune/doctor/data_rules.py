"""Rules about the data and the input pipeline: input-bound training, class imbalance, dead ReLU units."""

from __future__ import annotations

import numpy as np

from .evidence import Evidence
from .findings import Finding, set_fix

# Input bound: taking and augmenting batches (perf/data_wait_share) fills half of the time between
# steps (medium) or a third (low). The digits recipes spend 3-5% there.
INPUT_BOUND_MEDIUM, INPUT_BOUND_LOW = 0.5, 0.3
# Class imbalance: the largest class has 3x the examples of the smallest (in val + test, which
# are drawn like train); medium when a small class is also recalled 0.1 worse than the average.
IMBALANCE_RATIO, RECALL_GAP = 3.0, 0.1
# Dead units: 90% of a ReLU layer's outputs on the fixed validation batch are zero (its lowest
# histogram bucket); a healthy ReLU after batch norm has about half of them there.
DEAD_SHARE = 0.9


def input_bound(ev: Evidence) -> list[Finding]:
    share = ev.series("perf/data_wait_share")
    if share is None or len(share) < 5:
        return []
    median = float(np.median(share.values))
    if median < INPUT_BOUND_LOW:
        return []
    fixes = [f"zerotune profile {ev.run}"]
    augment = ev.cfg("data", "augment") or {}
    if any(v for k, v in augment.items() if k != "enabled"):
        fixes.append(set_fix("data.augment.rotate_degrees=0"))
    fixes.append(set_fix(f"train.batch_size={2 * int(ev.cfg('train', 'batch_size', 64) or 64)}"))
    return [Finding("input_bound", "medium" if median >= INPUT_BOUND_MEDIUM else "low",
                    f"{median:.0%} of the time between steps goes to taking and augmenting batches: "
                    f"the input pipeline, not the model, sets the pace",
                    {"tag": share.tag, "median_share": median, "points": len(share)}, fixes)]


def _class_counts(ev: Evidence) -> dict[str, tuple[int, float | None]] | None:
    """Class -> (examples in val + test, test recall) from metrics.json's per-class tables."""
    if not ev.metrics:
        return None
    counts: dict[str, list] = {}
    for split in ("val", "test"):
        for name, row in ((ev.metrics.get(split) or {}).get("per_class") or {}).items():
            c = counts.setdefault(name, [0, None])
            c[0] += int(row.get("support") or 0)
            if row.get("recall") is not None:
                c[1] = float(row["recall"])  # test's, read last, where there is a test split
    return {k: (v[0], v[1]) for k, v in counts.items()} or None


def class_imbalance(ev: Evidence) -> list[Finding]:
    counts = _class_counts(ev)
    if not counts or len(counts) < 2 or min(c for c, _ in counts.values()) <= 0:
        return []
    largest, smallest = max(counts, key=lambda k: counts[k][0]), min(counts, key=lambda k: counts[k][0])
    ratio = counts[largest][0] / counts[smallest][0]
    if ratio < IMBALANCE_RATIO:
        return []
    recalls = [r for _, r in counts.values() if r is not None]
    mean_recall = float(np.mean(recalls)) if recalls else None
    small_recall = counts[smallest][1]
    lagging = small_recall is not None and mean_recall is not None and small_recall < mean_recall - RECALL_GAP
    sizes = ev.meta.get("sizes") or {}
    held = (sizes.get("val") or 0) + (sizes.get("test") or 0)
    # train holds the same mix as val + test: cap every class at the smallest one's train count
    cap = max(1, round(counts[smallest][0] * (sizes.get("train") or 0) / held)) if held else None
    evidence = {"counts_val_test": {k: c for k, (c, _) in counts.items()}, "ratio": ratio,
                "smallest_class": smallest, "smallest_recall": small_recall, "mean_recall": mean_recall}
    fixes = [set_fix(f"data.train_per_class={cap}")] if cap else []
    return [Finding("class_imbalance", "medium" if lagging else "low",
                    f"class {largest!r} has {ratio:.1f}x the examples of class {smallest!r}"
                    + (f", and {smallest!r} is recalled {small_recall:.2f} against {mean_recall:.2f} on average"
                       if lagging else ""), evidence, fixes)]


def dead_units(ev: Evidence) -> list[Finding]:
    dead = {}
    step = None
    for tag, (s, hist) in ev.activations.items():
        if not tag.endswith("ReLU") or hist.ndim != 2 or hist[:, 2].sum() <= 0:
            continue
        zero = float(hist[0, 2] / hist[:, 2].sum()) if hist[-1, 1] > 0 else 1.0  # max 0: all outputs are zero
        if zero >= DEAD_SHARE:
            dead[tag] = zero
            step = s
    if not dead:
        return []
    fixes = []
    model = ev.config.get("model") or {}
    if "batch_norm" in model and not model["batch_norm"]:
        fixes.append(set_fix("model.batch_norm=true"))
    fixes.append(set_fix(f"optim.lr={(ev.cfg('optim', 'lr', 1e-3) or 1e-3) / 3:.3g}"))
    if model.get("activation") == "relu":
        fixes.append(set_fix("model.activation=gelu"))
    fixes.append(set_fix("model.init=he"))
    return [Finding("dead_units", "medium",
                    f"{len(dead)} ReLU layer{'s' if len(dead) > 1 else ''} output zero for most inputs: "
                    + ", ".join(f"{t.removeprefix('activations/')} {v:.0%}" for t, v in dead.items()),
                    {"tag": "activations/*ReLU", "step": step, "zero_share": dead}, fixes)]
