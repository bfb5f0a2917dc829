"""Typed options of the `zerotune scratch` commands, with their defaults in one place.

The CLI builds these objects from its flags and the Python API accepts the same objects, so both
go through the same validation (`validate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UserError
from .activations import HIDDEN
from .mlp import INITS
from .optim import GDConfig


@dataclass
class DataConfig:
    """Where the data comes from and how it is split.

    Attributes:
        data: built-in dataset name (diabetes, breast_cancer, iris, wine, digits) or CSV path.
        target: target column of a CSV file.
        features: keep only these feature columns (names or 0-based indices).
        test_size: fraction of rows held out for testing.
        standardize: standardise features with training-split statistics.
        seed: seed of the train/test split.
    """

    data: str = "diabetes"
    target: str | None = None
    features: list[str] | None = None
    test_size: float = 0.25
    standardize: bool = True
    seed: int = 0


@dataclass
class OutputConfig:
    """Where the run is written and how much is logged.

    Attributes:
        runs_dir: parent directory of run directories.
        name: run directory name; generated from the command and the time when omitted.
        log_every: iterations between parameter / gradient-norm scalars (the loss is logged at
            every iteration).
        hist_every: iterations between weight histograms (MLP); 0 turns them off.
    """

    runs_dir: str = "runs"
    name: str | None = None
    log_every: int = 10
    hist_every: int = 5

    def validate(self) -> None:
        if self.log_every < 1:
            raise UserError(f"log_every must be >= 1, got {self.log_every}")
        if self.hist_every < 0:
            raise UserError(f"hist_every must be >= 0, got {self.hist_every}")
        bad_name = not self.name or "/" in self.name or self.name in (".", "..")
        if self.name is not None and bad_name:
            raise UserError(f"--name must be a plain directory name, got {self.name!r}")


@dataclass
class LinRegConfig:
    """Options of `scratch linreg`.

    Attributes:
        data: data source and split.
        gd: gradient descent.
        output: run directory and logging.
        loss_scale: s in J = s/m Σ (ŷ − y)²: 0.5 for 1/(2m), 1 for 1/m.
        compare_scaling: also run gradient descent on raw and standardised features and log
            both loss curves and condition numbers.
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(data="diabetes"))
    gd: GDConfig = field(default_factory=lambda: GDConfig(lr=0.1, iters=5000, tol=1e-10,
                                                          momentum=0.9))
    output: OutputConfig = field(default_factory=OutputConfig)
    loss_scale: float = 0.5
    compare_scaling: bool = True

    def validate(self) -> None:
        self.gd.validate()
        self.output.validate()
        if not self.loss_scale > 0:
            raise UserError(f"loss_scale must be positive, got {self.loss_scale}")


@dataclass
class LogRegConfig:
    """Options of `scratch logreg`.

    Attributes:
        data: data source and split.
        gd: gradient descent.
        output: run directory and logging.
        l2: L2 penalty λ on the weights.
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(data="breast_cancer"))
    gd: GDConfig = field(default_factory=lambda: GDConfig(lr=0.5, iters=2000, tol=1e-8,
                                                          momentum=0.9))
    output: OutputConfig = field(default_factory=OutputConfig)
    l2: float = 1e-2

    def validate(self) -> None:
        self.gd.validate()
        self.output.validate()
        if not self.l2 >= 0:
            raise UserError(f"l2 must be >= 0, got {self.l2}")


@dataclass
class MLPConfig:
    """Options of `scratch mlp`.

    Attributes:
        data: data source and split.
        gd: gradient descent (one iteration is one epoch).
        output: run directory and logging.
        hidden: hidden layer widths.
        activation: hidden activation: relu, sigmoid or tanh.
        init: xavier or he; None picks He for ReLU, Xavier otherwise.
        l2: L2 penalty λ on the weights.
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(data="digits"))
    gd: GDConfig = field(default_factory=lambda: GDConfig(lr=0.1, iters=30, method="minibatch",
                                                          batch_size=32, momentum=0.9))
    output: OutputConfig = field(default_factory=lambda: OutputConfig(log_every=1))
    hidden: list[int] = field(default_factory=lambda: [64])
    activation: str = "relu"
    init: str | None = None
    l2: float = 1e-4

    def validate(self) -> None:
        self.gd.validate()
        self.output.validate()
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise UserError(f"hidden layer widths must be positive integers, got {self.hidden}")
        if self.activation not in HIDDEN:
            raise UserError(
                f"activation must be one of {', '.join(HIDDEN)}, got {self.activation!r}"
            )
        if self.init is not None and self.init not in INITS:
            raise UserError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if not self.l2 >= 0:
            raise UserError(f"l2 must be >= 0, got {self.l2}")
