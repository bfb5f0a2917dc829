"""What the JSON files of a run directory hold, checked when they are read back.

A run directory can be edited by hand, cut short by a full disk or damaged; a reader that trusted
it would fail deep inside with a traceback. meta.json and metrics.json are validated here, once,
so a bad file is one line naming the file and the field. Values are strict: JSON written by
zerotune never holds ``true`` where a number belongs, or ``"3"`` where an integer does.
"""

from __future__ import annotations

import math
import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from ..errors import UserError, format_validation_error
from .files import read_json

Count = Annotated[StrictInt, Field(ge=0)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
PositiveFinite = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
Number = Annotated[float, Field(strict=True)]


class MetaFile(BaseModel):
    """meta.json, the data metadata (`data.bundle.DataMeta`), and the ``meta`` of an export's sidecar."""

    model_config = ConfigDict(extra="forbid")

    source: StrictStr
    task: Literal["classification", "regression", "lm", "sft", "preference"]
    input_shape: list[Annotated[StrictInt, Field(ge=1)]] = Field(min_length=1)
    num_classes: Count
    class_names: list[StrictStr] | None = None
    feature_names: list[StrictStr] | None = None
    x_mean: list[Finite] | None = None
    x_std: list[PositiveFinite] | None = None
    y_mean: Finite = 0.0
    y_std: PositiveFinite = 1.0
    sizes: dict[str, Count] = {}
    truncated: dict[str, Count] | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if (self.x_mean is None) != (self.x_std is None):
            raise ValueError("x_mean and x_std come together: give both or neither")
        shape = self.input_shape
        # normalize_inputs applies one value per channel (images) or per feature (tables)
        want = shape[0] if len(shape) == 3 else math.prod(shape)
        for name in ("x_mean", "x_std"):
            values = getattr(self, name)
            if values is not None and len(values) != want:
                what = "channels" if len(shape) == 3 else "features"
                raise ValueError(f"{name} has {len(values)} values; input shape {shape} has {want} {what}")
        if self.class_names is not None and self.task == "classification" and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for {self.num_classes} classes")
        return self


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ClassRow(_Open):
    precision: Number | None = None
    recall: Number | None = None
    f1: Number | None = None
    support: Count | None = None


class SplitMetrics(_Open):
    """One split's metrics: the headline numbers, and for classification the per-class table and confusion matrix."""

    n: Count | None = None
    loss: Number | None = None
    accuracy: Number | None = None
    f1_macro: Number | None = None
    roc_auc: Number | None = None
    r2: Number | None = None
    mse: Number | None = None
    rmse: Number | None = None
    mae: Number | None = None
    per_class: dict[str, ClassRow] | None = None
    confusion_matrix: list[list[Count]] | None = None

    @model_validator(mode="after")
    def _square_matrix(self):
        m = self.confusion_matrix
        if m is not None:
            n = len(self.per_class) if self.per_class is not None else len(m)
            if len(m) != n or any(len(row) != n for row in m):
                raise ValueError(f"confusion_matrix must be {n} x {n}, one row and column per class")
        return self


class TrainingSummary(_Open):
    steps: Count | None = None
    best_step: Count | None = None
    monitor_mode: Literal["min", "max"] | None = None


class MetricsFile(_Open):
    """metrics.json: the fields its readers (report, doctor) use; the rest passes through as written."""

    checkpoint: StrictStr = "best"
    val: SplitMetrics | None = None
    test: SplitMetrics | None = None
    training: TrainingSummary | None = None


def _checked(path: str | os.PathLike, schema: type[BaseModel]) -> dict:
    raw = read_json(path)
    try:
        schema.model_validate(raw)
    except ValidationError as e:
        detail = format_validation_error(e, schema=schema)
        raise UserError(f"{path} is invalid: {detail[:300]}") from None
    return raw


def read_meta(path: str | os.PathLike) -> dict:
    """meta.json, checked against `MetaFile`, as the plain dict it holds."""
    return _checked(path, MetaFile)


def read_metrics(path: str | os.PathLike) -> dict:
    """metrics.json, checked against `MetricsFile`, as the plain dict it holds."""
    return _checked(path, MetricsFile)
