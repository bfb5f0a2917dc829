"""Train/val/test tensors plus the metadata a run needs to rebuild and serve its model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch


@dataclass
class Split:
    x: torch.Tensor  # (N, *input_shape) float32, normalised
    y: torch.Tensor  # (N,) int64 classes or float32 (standardised) targets

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))

    def epoch_batches(self, seed: int, epoch: int, batch_size: int) -> "EpochBatches":
        """The shuffled micro-batches of one epoch, a pure function of (seed, epoch).

        The training loop only needs ``len()`` and ``[i] -> (x, y)``; a language-model corpus
        (data/corpus.py) offers the same with random windows instead of examples.
        """
        from .batches import epoch_permutation

        return EpochBatches(self, epoch_permutation(len(self), seed, epoch, self.x.device), batch_size)

    def sample_inputs(self, n: int) -> torch.Tensor:
        """The first n inputs (for shape checks and graph tracing)."""
        return self.x[:n]


@dataclass
class EpochBatches:
    split: Split
    perm: torch.Tensor
    batch_size: int

    def __len__(self) -> int:
        return (len(self.perm) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.perm[i * self.batch_size:(i + 1) * self.batch_size]
        return self.split.x[idx], self.split.y[idx]


@dataclass
class DataMeta:
    """Everything about the data that a model and its users need, saved as meta.json in a run."""

    source: str
    task: str  # "classification" | "regression" | "lm"
    input_shape: list[int]
    num_classes: int  # 0 for regression
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    x_mean: list[float] | None = None  # per channel (images) or per feature (tables)
    x_std: list[float] | None = None
    y_mean: float = 0.0  # regression target standardisation
    y_std: float = 1.0
    sizes: dict[str, int] = field(default_factory=dict)
    truncated: dict[str, int] | None = None  # text: examples per split cut to data.max_length tokens

    @property
    def num_outputs(self) -> int:
        return 1 if self.task == "regression" else self.num_classes  # classes, or an lm's vocabulary

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DataMeta":
        return cls(**d)


@dataclass
class DataBundle:
    train: Split
    val: Split
    test: Split
    meta: DataMeta
    tokenizer: object | None = None  # language-model corpora: saved into the run directory

    def split(self, name: str) -> Split:
        return {"train": self.train, "val": self.val, "test": self.test}[name]
