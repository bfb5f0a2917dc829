"""The interface of a training mode, and the run it builds on.

A run has exactly one base mode, which says what is learned (supervised, language model,
instruction tuning), and any number of added modes, which say how (from a source run, from a
teacher). The pipeline builds a `PreparedRun` and asks each of its modes, in the registry's order,
at each hook. A mode implements `applies` (and a base mode `task`); every other hook has a default
that adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from ..errors import UserError

if TYPE_CHECKING:
    from ..config import Config
    from ..data.augment import Augmenter
    from ..data.bundle import DataBundle, DataMeta
    from ..data.mixing import Mixer
    from ..finetune.freezing import FreezePlan
    from ..runload.load import LoadedRun
    from ..tasks.supervised import Task
    from ..train.callbacks import Callback
    from ..train.checkpoint import Checkpoint

# Streams the text a run's model writes after a prompt: (prompt, system message, sampling options).
TextGenerator = Callable[[str, "str | None", dict], Iterator[str]]


@dataclass
class PreparedRun:
    """A run built and checked, before anything is written: what `fit` and the run directory need."""

    config: Config
    checkpoint: Checkpoint | None  # None: a new run, or one that starts again from step 0
    device: torch.device
    origin: Path | None  # the run lending normalisation statistics, tokenizer and architecture
    modes: list[Mode]  # the base mode first
    data: DataBundle | None = None
    task: Task | None = None
    model: torch.nn.Module | None = None
    augment: Augmenter | None = None
    mix: Mixer | None = None  # mixup / cutmix
    groups: list[dict] | None = None  # optimizer parameter groups (None: one group)
    freeze: FreezePlan | None = None  # which parameters train at each epoch (None: all of them)

    @property
    def fresh(self) -> bool:
        return self.checkpoint is None

    def mode(self, kind: type[Mode]) -> Mode | None:
        """This run's mode of class `kind`, or None."""
        return next((m for m in self.modes if isinstance(m, kind)), None)


class Mode:
    """What one training mode adds to a run. A new instance serves one run and may keep its state."""

    base: bool = False  # True: says what is learned (one per run); False: adds to a base mode
    # Base modes: the model writes text, so `eval --prompts` can ask it a file of prompts in a chat format;
    # and its evaluation answers each held-out prompt, which `eval --answers` writes.
    answers_prompts: bool = False
    answers_split: bool = False
    suffix: str = ""  # appended to the run's default name, e.g. "-finetune"

    @classmethod
    def applies(cls, config: Config) -> bool:
        """Whether a run of `config` is in this mode."""
        raise NotImplementedError

    def configure(self, config: Config) -> tuple[Config, Path | None]:
        """A new run's config as this mode trains it, and the run it lends from (None: none)."""
        return config, None

    def task(self, config: Config, data: DataBundle) -> Task:
        """Base modes: the loss and metrics for the data (also what `evaluate` measures)."""
        raise NotImplementedError

    def adapt_data(self, run: PreparedRun) -> None:
        """Change the built data, task or augmenter before the model is built."""

    def setup_model(self, run: PreparedRun) -> None:
        """Set up or wrap the freshly built model (weights, adapters; run.groups and run.freeze)."""

    def ready(self, run: PreparedRun) -> None:
        """The run is built and checked; measure what must be measured before training."""

    def write_files(self, run: PreparedRun, run_dir: Path) -> None:
        """Write this mode's files into a new (or restarted) run directory."""

    def resume(self, run: PreparedRun, run_dir: Path) -> None:
        """Read back what `write_files` wrote, for a run resumed from a checkpoint."""

    def views(self, run: PreparedRun, run_dir: Path, shown: list[Callback]) -> list[Callback]:
        """TensorBoard callbacks to add to `shown` (the views so far; the base mode's board first)."""
        return []

    def report(self, run: PreparedRun, run_dir: Path, metrics: dict, step: int) -> None:
        """Add this mode's sections to metrics.json's `metrics` once training has ended."""

    def text_generator(self, run: LoadedRun, run_dir: str | Path) -> TextGenerator:
        """Base modes: how `generate` streams text from a loaded run of this mode."""
        raise UserError(f"{run_dir} is a {run.meta.task} run; generate needs a language-model run "
                        f"(data.name = 'corpus', model.name = 'gpt')")

    def summary_input(self, meta: DataMeta) -> torch.Tensor:
        """Base modes: one zero example, with its batch dimension, for a run's layer table."""
        tokens = meta.source == "text"  # a transformer reads token ids
        return torch.zeros((1, *meta.input_shape), dtype=torch.long if tokens else torch.float32)

    def as_trained(self, model: torch.nn.Module, config: Config) -> None:
        """A run's model rebuilt without weights, made to show what trains (a layer table's trainable column)."""


def refuse_grad_checkpointing(config: Config) -> None:
    """Gradient checkpointing is for causal language models being tuned; other base modes refuse it."""
    if config.train.grad_checkpointing:
        raise UserError("train.grad_checkpointing applies to causal language models being tuned (data.name = 'sft')")
