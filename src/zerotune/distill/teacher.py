"""The teacher: a finished zerotune run, checked against the student's data, giving logits in eval mode."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.bundle import DataMeta
from ..errors import UserError
from ..models.modes import eval_mode

CHUNK = 1024  # examples per teacher forward pass when logits are computed for a whole split


class Teacher:
    """A frozen model whose logits are the soft targets.

    Inputs arrive normalised with the student's statistics; when the teacher was trained with
    other ones (another split of the same data), they are mapped back to the teacher's first.

    Args:
        model: the teacher model (its parameters are frozen here).
        meta: the teacher run's data metadata.
        student: the student's data metadata.
        path: where the teacher run lives (for messages and metrics.json).
    """

    def __init__(self, model: torch.nn.Module, meta: DataMeta, student: DataMeta, path: Path):
        self.model, self.meta, self.path = model, meta, path
        model.requires_grad_(False)
        self.affine = _input_map(meta, student)
        self.device = torch.device("cpu")

    def to(self, device) -> "Teacher":
        self.device = torch.device(device)
        self.model.to(device)
        if self.affine is not None:
            self.affine = tuple(t.to(device) for t in self.affine)
        return self

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher logits (B, C) as float32 for a batch of student inputs, in eval mode, on the inputs' device."""
        where, x = x.device, x.to(self.device)
        if self.affine is not None:
            scale, shift = self.affine
            x = x * scale + shift
        if not len(x):
            return torch.empty(0, self.meta.num_outputs, device=where)
        with eval_mode(self.model):
            return torch.cat([self.model(x[i:i + CHUNK]).float() for i in range(0, len(x), CHUNK)]).to(where)


def load_teacher(spec: str, checkpoint: str, student: DataMeta, device, tokenizer_dir: Path | None = None) -> Teacher:
    """Load the teacher run at `spec` and check that it classifies the student's data.

    Args:
        spec: the teacher's run directory.
        checkpoint: best or last.
        student: the student's data metadata.
        device: where the teacher runs.
        tokenizer_dir: text data: the directory of the tokenizer the student's data was read with;
            the teacher reads the same token ids, so its tokenizer must have the same vocabulary.

    Raises:
        UserError: the run is missing or incomplete, or its data set, classes or inputs differ.
    """
    from ..run.files import RunDir
    from ..runload.load import load_run

    path = Path(spec)
    if not path.is_dir():
        raise UserError(f"teacher run {path} does not exist (--teacher takes a zerotune run directory)")
    run = load_run(path, checkpoint, device)
    check_compatible(run.meta, student, path)
    if tokenizer_dir is not None:
        check_same_vocabulary(RunDir(path).hf, tokenizer_dir, path)
    return Teacher(run.model, run.meta, student, path).to(device)


def check_same_vocabulary(teacher_dir: Path, student_dir: Path, path: Path) -> None:
    """Text: the teacher must read the student's token ids as the same words."""
    from ..data.text import load_tokenizer

    if not teacher_dir.is_dir():
        raise UserError(f"teacher {path} has no tokenizer ({teacher_dir.name}/): it was not trained on text")
    if load_tokenizer(teacher_dir).get_vocab() != load_tokenizer(student_dir).get_vocab():
        raise UserError(f"teacher {path} reads text with another vocabulary than the student's model "
                        f"({student_dir}); distill into a model with the teacher's tokenizer, e.g. "
                        f"model.path = the teacher's base model with model.layers = 2")


def check_compatible(teacher: DataMeta, student: DataMeta, path: Path) -> None:
    """The teacher must classify the same data set, with the same classes and input shape, as the student."""
    if teacher.task != "classification" or student.task != "classification":
        raise UserError(f"distillation needs classification on both sides; teacher {path} is {teacher.task}, "
                        f"the student's data is {student.task}")
    if teacher.source != student.source:
        raise UserError(f"teacher {path} was trained on data set {teacher.source!r}, the student's recipe uses "
                        f"{student.source!r}; distill on the teacher's data set")
    if list(teacher.class_names or []) != list(student.class_names or []) or teacher.num_classes != student.num_classes:
        raise UserError(f"teacher {path} has classes {_names(teacher)}, the student's data has {_names(student)}; "
                        f"they must be the same, in the same order")
    # Token ids (text) may be padded to another length; images and tables must have the same shape.
    if student.source != "text" and list(teacher.input_shape) != list(student.input_shape):
        raise UserError(f"teacher {path} reads inputs of shape {tuple(teacher.input_shape)}, the student's data has "
                        f"{tuple(student.input_shape)}")


def _names(meta: DataMeta) -> str:
    names = meta.class_names or [str(i) for i in range(meta.num_classes)]
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"[{shown}] ({meta.num_classes})"


def _input_map(teacher: DataMeta, student: DataMeta) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(scale, shift) taking inputs normalised with the student's statistics to the teacher's; None if equal."""
    if teacher.x_mean is None or student.x_mean is None:
        return None
    if (teacher.x_mean, teacher.x_std) == (student.x_mean, student.x_std) or len(teacher.x_mean) != len(student.x_mean):
        return None
    shape = (1, -1, 1, 1) if student.is_image else (1, -1)
    m0, s0 = (torch.tensor(v).reshape(shape) for v in (student.x_mean, student.x_std))
    m1, s1 = (torch.tensor(v).reshape(shape) for v in (teacher.x_mean, teacher.x_std))
    # x_raw = x * s0 + m0; x_teacher = (x_raw - m1) / s1
    return s0 / s1, (m0 - m1) / s1
