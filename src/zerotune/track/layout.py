"""The custom-scalars layout: train and val curves of one metric on one chart, layers together.

Tags in a chart are regular expressions, so one chart can hold every layer's curve. Every run
writes the same layout for its task, and TensorBoard merges identical charts across runs.
"""

from __future__ import annotations


def layout(task_kind: str) -> dict:
    """``{category: {chart title: ["Multiline", [tag regex, ...]]}}`` for tensorboardX."""
    if task_kind == "classification":
        metric = {"accuracy (train vs val)": ["Multiline", ["train/accuracy", "val/accuracy"]],
                  "ROC AUC (val)": ["Multiline", ["val/roc_auc"]]}
    elif task_kind == "preference":  # the implicit rewards of preference tuning (tasks/preference.py)
        metric = {"rewards, chosen vs rejected": ["Multiline", [r"(train|val)/rewards/(chosen|rejected)"]],
                  "reward margin (train vs val)": ["Multiline", ["train/rewards/margin", "val/rewards/margin"]],
                  "reward accuracy (train vs val)": ["Multiline", ["train/rewards/accuracy", "val/rewards/accuracy"]],
                  "log-probs of the answers": ["Multiline", [r"(train|val)/logps/.*"]]}
    else:
        metric = {"R² (train vs val)": ["Multiline", ["train/r2", "val/r2"]],
                  "MSE (train vs val)": ["Multiline", ["train/mse", "val/mse"]]}
    return {
        "1 curves": {
            "loss (train vs val)": ["Multiline", ["train/loss", "train/epoch_loss", "train/eval_loss", "val/loss"]],
            **metric,
            "learning rate": ["Multiline", ["train/lr"]],
        },
        "2 gradients and weights": {
            "gradient norm, global (before clipping)": ["Multiline", ["train/grad_norm"]],
            "weight norm, all layers": ["Multiline", ["layers/weight_norm/_all"]],
            "update / weight ratio, all layers": ["Multiline", ["layers/update_ratio/_all"]],
            "gradient norm per layer": ["Multiline", [r"layers/grad_norm/.*"]],
            "weight norm per layer": ["Multiline", [r"layers/weight_norm/.*"]],
            "update / weight ratio per layer": ["Multiline", [r"layers/update_ratio/.*"]],
        },
        "3 performance": {
            "throughput (samples/s)": ["Multiline", ["perf/samples_per_sec"]],
            "step time (ms)": ["Multiline", ["perf/step_time_ms"]],
            "share of time taking batches": ["Multiline", ["perf/data_wait_share"]],
            "memory (MiB)": ["Multiline", [r"perf/.*memory_mb"]],
        },
    }
