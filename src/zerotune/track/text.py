"""Markdown for the Text tab: the resolved config, the environment, the model, sample predictions."""

from __future__ import annotations

import torch


def code_block(text: str) -> str:
    """Indented code block (rendered verbatim by every Markdown flavour TensorBoard uses)."""
    return "\n".join("    " + line for line in text.rstrip().splitlines())


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; pipes inside cells are escaped."""
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def environment(env: dict) -> str:
    """Versions, device and seed (env.json), plus the TensorBoard libraries in use."""
    rows = [[k, v] for k, v in sorted(env.items())]
    for name in ("tensorboardX", "tensorboard"):
        try:
            mod = __import__(name)
            rows.append([name, getattr(mod, "__version__", "?")])
        except ImportError:
            pass
    return table(["what", "value"], rows)


def model_summary(model: torch.nn.Module) -> str:
    """Parameter counts per top-level block and the module tree."""
    rows = []
    for name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        rows.append([name, type(child).__name__, f"{n:,}"])
    total = sum(p.numel() for p in model.parameters())
    # At fit start every parameter that trains at some epoch is marked; gradual unfreezing starts with fewer
    # (finetune/unfrozen says how many, stage by stage).
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows.append(["**total**", "", f"{total:,} ({trainable:,} trained in this run)"])
    return table(["block", "type", "parameters"], rows) + "\n\n" + code_block(repr(model))


def predictions(rows: list[list], regression: bool) -> str:
    """Sample predictions: index, true, predicted and confidence (or error for regression)."""
    header = ["val index", "true", "predicted", "error"] if regression else \
        ["val index", "true", "predicted", "confidence", "correct"]
    return table(header, rows)
