"""Train/val/test splits plus the metadata a run needs to rebuild and serve its model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .batches import Split  # a bundle holds three; importers of the bundle find it here too


# Tasks whose model is a causal language model answering in a chat format (instruction and preference
# tuning): served, exported and read back as such.
CHAT_TASKS = ("sft", "preference")


@dataclass
class DataMeta:
    """Everything about the data that a model and its users need, saved as meta.json in a run."""

    source: str
    task: str  # "classification" | "regression" | "lm" | one of CHAT_TASKS
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
        """The metadata a dict holds (meta.json, an export's sidecar), checked against `run.schema.MetaFile`.

        Raises:
            ValueError: one line naming the first field that is missing, unknown or wrong.
        """
        from pydantic import ValidationError

        from ..errors import format_validation_error
        from ..run.schema import MetaFile

        try:
            MetaFile.model_validate(d)
        except ValidationError as e:
            raise ValueError(format_validation_error(e, schema=MetaFile)[:300]) from None
        return cls(**d)


@dataclass
class DataBundle:
    train: Split
    val: Split
    test: Split
    meta: DataMeta
    tokenizer: object | None = None  # language-model corpora: saved into the run directory
    chat: object | None = None  # instruction tuning: the ChatFormat that formats prompts and decodes answers

    def split(self, name: str) -> Split:
        return {"train": self.train, "val": self.val, "test": self.test}[name]
