"""What the doctor reads from a run directory: scalars, activation histograms, config, data and metrics.

Only cheap things are read: the event files' records are parsed once with TensorBoard's reader
(images and other plugins are skipped without decoding), config.yaml validated without the model
registry (so no torch import), meta.json and metrics.json when they exist, checked as every reader
checks them. A run still training has no metrics.json and an event file that may end in a cut
record; both are fine.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import load_run_config
from ..errors import UserError
from ..run.checksums import Damaged, check_files
from ..run.files import CHECKPOINT_NAMES, RunDir
from ..run.schema import read_meta, read_metrics
from ..track.events import read_run_events

# "    (1): Linear(in_features=64, ...)" in the model's repr, as the Text tab's run/model holds it;
# torch prints repeated blocks once, as "(0-3): 4 x Block(".
_MODULE_LINE = re.compile(r"^(\s*)\(([^)]+)\): (?:\d+ x )?(\w+)\(")
# Layers whose weight is a matrix or kernel that gradients flow through; normalisation scales and
# embeddings (only the rows of the tokens seen get a gradient) are left out.
WEIGHT_TYPES = ("Linear", "Conv")
# What `Evidence.checkpoints` says of a sound checkpoint: its files match their checksums, or it has none.
CHECKED, UNCHECKED = "checked", "no checksums"


@dataclass
class Series:
    """One scalar tag's points, as arrays."""

    tag: str
    steps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def tail(self, fraction: float) -> "Series":
        """The points in the last ``fraction`` of the steps this tag spans."""
        cut = self.steps[-1] - fraction * (self.steps[-1] - self.steps[0])
        keep = self.steps >= cut
        return Series(self.tag, self.steps[keep], self.values[keep])


@dataclass
class Evidence:
    """A run's evidence, read once and shared by every rule."""

    run: Path
    scalars: dict[str, list[tuple[int, float]]]
    activations: dict[str, tuple[int, np.ndarray]]  # tag -> (step, [left, right, count] rows)
    config: dict[str, Any]
    meta: dict[str, Any]
    metrics: dict[str, Any] | None  # None while the run is training (or when it died)
    finished: bool
    module_types: dict[str, str] = field(default_factory=dict)  # "features.1" -> "Linear"
    checkpoints: dict[str, str] = field(default_factory=dict)  # "best" -> CHECKED, UNCHECKED or what is damaged

    def series(self, tag: str) -> Series | None:
        pts = self.scalars.get(tag)
        if not pts:
            return None
        return Series(tag, np.array([s for s, _ in pts]), np.array([v for _, v in pts], dtype=np.float64))

    def cfg(self, group: str, name: str, default: Any = None) -> Any:
        section = self.config.get(group) or {}
        return section.get(name, default) if isinstance(section, dict) else default

    def model_option(self, name: str, kind: type | tuple[type, ...]) -> Any:
        """The model's own option `name` when it has the type `kind`, else None: the doctor reads the model's
        options without the registry that checks them (see `read_evidence`)."""
        value = (self.config.get("model") or {}).get(name)
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    @property
    def task(self) -> str:
        return self.meta.get("task", "classification")

    @property
    def last_step(self) -> int:
        return max((pts[-1][0] for pts in self.scalars.values() if pts), default=0)

    @property
    def chance_loss(self) -> float | None:
        """The loss of a model that has learned nothing: ln(classes), or 1 for a standardised regression target."""
        if self.task == "regression":
            return 1.0 if self.cfg("data", "normalize_target", True) else None
        n = self.meta.get("num_classes") or 0
        return math.log(n) if n >= 2 else None

    def layer_names(self, kind: str = "grad_norm") -> list[str]:
        """Parameter names with per-layer statistics, in the model's order (which is depth order)."""
        prefix = f"layers/{kind}/"
        return [t[len(prefix):] for t in self.scalars if t.startswith(prefix) and not t.endswith("/_all")]

    def weight_layers(self) -> list[str]:
        """The weight matrices and kernels among `layer_names`: no biases, normalisation scales or embeddings."""
        out = []
        for name in self.layer_names():
            module, _, leaf = name.rpartition(".")
            kind = self.module_types.get(module)  # None: no model text, so every weight counts
            if leaf == "weight" and (kind is None or any(t in kind for t in WEIGHT_TYPES)):
                out.append(name)
        return out


def module_types(model_text: str) -> dict[str, str]:
    """Dotted module names to their class names, parsed from a model's printed form (2 spaces per level)."""
    out: dict[str, str] = {}
    stack: list[list[str]] = []  # per level, the names a line stands for ("0-3" stands for 0, 1, 2, 3)
    base = None
    for line in model_text.splitlines():
        m = _MODULE_LINE.match(line)
        if not m:
            continue
        indent, name, kind = len(m.group(1)), m.group(2), m.group(3)
        base = indent if base is None else base  # the top module's children
        first, _, last = name.partition("-")
        names = [str(i) for i in range(int(first), int(last) + 1)] if last.isdigit() and first.isdigit() else [name]
        stack = stack[: (indent - base) // 2] + [names]
        for path in itertools.product(*stack):
            out[".".join(path)] = kind
    return out


def read_evidence(run_dir: str | Path) -> Evidence:
    """Read what the rules need from a run directory.

    Raises:
        UserError: when the path is not a run directory or holds no event files yet.
    """
    run = RunDir(run_dir)
    if not run.path.exists():
        raise UserError(f"run directory {run.path} does not exist")
    if not run.is_run():
        raise UserError(f"{run.path} is not a run directory (it has no config.yaml); give a directory "
                        f"that zerotune train made, e.g. runs/<name>")
    # validated as every command does, but for the model's own options: checking those needs the model
    # registry and torch, which the doctor does without (its rules check the type of the few they read)
    config = load_run_config(run.path, model_options=False).to_dict()
    # a run still training has no metrics.json yet; a file that is there must be sound
    meta = read_meta(run.meta) if run.meta.exists() else {}
    metrics = read_metrics(run.metrics) if run.metrics.exists() else None
    if not run.event_files():
        raise UserError(f"{run.path} holds no TensorBoard event files yet (log.tensorboard is off, "
                        f"or training has not started)")
    events = read_run_events(run.path, texts=True, histograms="activations/")
    return Evidence(run.path, events.scalars, events.histograms, config, meta, metrics, events.finished,
                    module_types(events.texts.get("run/model", "")), checkpoint_states(run))


def checkpoint_states(run: RunDir) -> dict[str, str]:
    """Each checkpoint the run has: CHECKED, UNCHECKED, or the line saying which file is missing or damaged."""
    states = {}
    for name in CHECKPOINT_NAMES:
        if not run.checkpoint(name).is_dir():  # none yet, or a run that never improved on its first evaluation
            continue
        try:
            states[name] = CHECKED if check_files(run.checkpoint(name)) else UNCHECKED
        except Damaged as e:
            states[name] = str(e)
    return states
