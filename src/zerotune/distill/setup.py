"""Turn a prepared run into a distillation: load the teacher, wrap the training split and the task."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..data.bundle import DataBundle, Split
from ..tasks.supervised import Task
from .targets import with_teacher
from .task import DistillTask
from .teacher import Teacher, load_teacher

if TYPE_CHECKING:
    from ..config import Config, DistillConfig


def is_distill(config: Config) -> bool:
    """Whether `config` describes a distillation (a ``distill`` group with a teacher)."""
    return config.distill is not None and bool(config.distill.teacher)


def attach_teacher(config: Config, data: DataBundle, task: Task, augment,
                   device: torch.device) -> tuple[DataBundle, DistillTask, Teacher]:
    """Load and check the teacher; the data whose training batches carry its logits, and the task that uses them.

    Args:
        config: the student's config (with its ``distill`` group).
        data: the student's data.
        task: the task the data implies (its loss becomes the hard term).
        augment: the run's augmenter, or None; it moves into the training split, where the
            teacher sees each augmented batch (the trainer then gets none).
        device: where the teacher runs.

    Raises:
        UserError: the teacher is missing, or does not classify the student's data.
    """
    from ..runload.load import model_dir

    cfg = config.distill
    tokens = model_dir(config) if config.data.name == "text" else None  # the student's tokenizer
    teacher = load_teacher(cfg.teacher, cfg.checkpoint, data.meta, device, tokens)
    train = with_teacher(data.train, teacher, augment)  # stays where the data is; the trainer moves it
    bundle = DataBundle(train, data.val, data.test, data.meta, data.tokenizer)
    return bundle, DistillTask(task, teacher, cfg.temperature, cfg.alpha), teacher


def setup_summary(cfg: DistillConfig, teacher: Teacher, student: torch.nn.Module, train: Split) -> dict:
    """What the distillation is, for metrics.json and the ``distill/setup`` text."""
    params = sum(p.numel() for p in student.parameters())
    cached = getattr(train, "cache", None) is not None
    return {"teacher": str(teacher.path.resolve()), "checkpoint": cfg.checkpoint, "temperature": cfg.temperature,
            "alpha": cfg.alpha, "teacher_logits": "cached" if cached else "on the fly",
            "teacher_parameters": teacher.parameters, "student_parameters": params,
            "parameter_ratio": round(params / max(teacher.parameters, 1), 4)}


def teacher_accuracy(teacher: Teacher, split: Split) -> float | None:
    """The teacher's top-1 accuracy on a split (None when it is empty)."""
    if not len(split):
        return None
    return float((teacher.logits(split.x).argmax(1) == split.y).float().mean())


def distill_metrics(cfg: DistillConfig, teacher: Teacher, student: torch.nn.Module, data: DataBundle,
                    device: torch.device) -> dict:
    """metrics.json's ``distill`` section: the setup and the teacher's own accuracy on val and test."""
    summary = setup_summary(cfg, teacher, student, data.train)
    for name in ("val", "test"):
        summary[f"teacher_{name}_accuracy"] = teacher_accuracy(teacher, data.split(name).to(device))
    return summary
