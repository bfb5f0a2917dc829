"""Fine-tuning: a run that starts from a source run's or a pretrained transformer's weights
(``finetune.source``), with frozen groups, layer-wise learning rates or LoRA (`finetune/`)."""

from __future__ import annotations

from pathlib import Path

from ..run.files import RunDir, read_json, write_json
from .base import Mode, PreparedRun

# the final metrics set beside the same names measured before training; preference tuning's
# rewards/accuracy is also metrics.json's preference_accuracy
AFTER = ("loss", "accuracy", "exact_match", "preference_accuracy", "rewards/accuracy", "answers/preferred",
         "answers/chosen")


class Finetune(Mode):
    """Added to any base mode: a fine-tune of an instruction-tuning run is an SFT run with a source."""

    suffix = "-finetune"

    def __init__(self):
        self.source = None  # the resolved source of a new run (a resume takes its weights from the checkpoint)
        self.setup = None  # the freeze plan, optimizer groups, adapters and head
        self.before = self.probe = None  # metrics before training, and the linear probe's

    @classmethod
    def applies(cls, config) -> bool:
        from ..finetune.setup import is_finetune

        return is_finetune(config)

    def configure(self, config):
        from ..finetune.setup import adapt_config

        config, self.source = adapt_config(config)
        # a source run lends its normalisation statistics, tokenizer and transformer architecture
        return config, self.source.path if self.source.kind == "run" else None

    def setup_model(self, run: PreparedRun) -> None:
        from ..finetune.setup import attach

        self.setup = attach(run.model, run.config, run.data.meta, self.source)
        run.groups, run.freeze = self.setup.groups, self.setup.plan

    def ready(self, run: PreparedRun) -> None:
        if run.fresh and run.config.finetune.baseline:
            from ..finetune.baseline import before_metrics, linear_probe

            self.before = before_metrics(run.model, run.data, run.task, run.device)
            self.probe = linear_probe(run.model, run.data, run.device, run.config.train.seed)

    def write_files(self, run: PreparedRun, run_dir: Path) -> None:
        config, source = run.config, self.source
        write_json(RunDir(run_dir).finetune, {
            "source": {"kind": source.kind, "spec": source.spec, "path": str(Path(source.path).resolve()),
                       "checkpoint": config.finetune.checkpoint if source.kind == "run" else None,
                       **source.provenance()},
            **self._summary(run), "before": self.before, "probe": self.probe})

    def resume(self, run: PreparedRun, run_dir: Path) -> None:
        if RunDir(run_dir).finetune.is_file():
            saved = read_json(RunDir(run_dir).finetune)
            self.before, self.probe = saved.get("before"), saved.get("probe")
            # decided when the source's weights were loaded, which a resume does not do again
            self.setup.head = saved.get("head", self.setup.head)

    def views(self, run: PreparedRun, run_dir: Path, shown: list) -> list:
        from ..finetune.board import FinetuneBoard

        return [FinetuneBoard(shown[0], self.setup.plan, self.setup.groups, self.before, self.probe)]

    def report(self, run: PreparedRun, run_dir: Path, metrics: dict, step: int) -> None:
        after = {f"{split}/{k}": metrics[split][k] for split in ("val", "test") for k in AFTER
                 if isinstance(metrics[split].get(k), (int, float))}
        metrics["finetune"] = {**self._summary(run), "before": self.before, "probe": self.probe, "after": after}
        if run.config.log.tensorboard:
            from ..finetune.board import write_comparison

            write_comparison(run_dir, step, self.before or {}, self.probe, after)

    def as_trained(self, model, config) -> None:
        from ..finetune.freezing import FreezePlan
        from ..models.lora import apply_lora, is_lora

        adapters = apply_lora(model, config.finetune) if is_lora(config) else []
        FreezePlan(model, config.finetune, adapters).apply(model, None)

    def _summary(self, run: PreparedRun) -> dict:
        return self.setup.summary(run.model, run.config.train.epochs)
