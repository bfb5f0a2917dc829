"""Real inputs for parity checks, calibration and accuracy, rebuilt from a run's own data config."""

from __future__ import annotations

import numpy as np
import torch

from ..data.bundle import DataBundle
from ..errors import UserError
from ..runs import LoadedRun, run_data

MAX_PARITY_INPUTS = 1024
CALIBRATION_EXAMPLES = 512
CALIBRATION_BATCH = 64


def load_data(run: LoadedRun) -> DataBundle | None:
    """The run's data splits (normalised exactly as in training), or None when they cannot be rebuilt,
    e.g. because a data file has moved since the run was trained."""
    try:
        data = run_data(run)  # the run's own data path: tokenizer, parent's normalisation
    except (UserError, OSError):
        return None
    if list(data.meta.input_shape) != list(run.meta.input_shape):
        return None
    # Inputs normalised with other statistics than the model's (e.g. a fine-tune that kept its
    # parent's) would not be the inputs the model sees in service.
    for ours, theirs in ((data.meta.x_mean, run.meta.x_mean), (data.meta.x_std, run.meta.x_std)):
        if (ours is None) != (theirs is None) or (ours is not None and not np.allclose(ours, theirs, rtol=1e-5)):
            return None
    return data


def parity_inputs(run: LoadedRun, data: DataBundle | None) -> tuple[np.ndarray, str]:
    """Inputs for parity checks: the test split when the data is available, else seeded noise.

    Noise is drawn as N(0, 1), the distribution normalised inputs have, so it exercises the model
    in the range it was trained on.
    """
    if data is not None and len(data.test):
        return data.test.x[:MAX_PARITY_INPUTS].numpy(), "test split"
    if data is not None and len(data.val):
        return data.val.x[:MAX_PARITY_INPUTS].numpy(), "val split"
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, *run.meta.input_shape, generator=g).numpy(), "random normal"


def example_batch(run: LoadedRun, data: DataBundle | None) -> torch.Tensor:
    """Two inputs, for tracing and export (two, so the batch axis is not specialised to 1)."""
    x, _ = parity_inputs(run, data)
    return torch.from_numpy(np.ascontiguousarray(x[:2]))


def calibration_batches(data: DataBundle | None, seed: int = 0) -> list[np.ndarray]:
    """A seeded random sample of training inputs, in batches, for static int8 calibration.

    Raises:
        UserError: when the run's data cannot be rebuilt (static int8 needs real inputs).
    """
    if data is None or len(data.train) == 0:
        raise UserError("static int8 needs the run's training data for calibration, and it cannot be rebuilt "
                        "(check data.path in the run's config.yaml)")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.train), generator=g)[:CALIBRATION_EXAMPLES]
    x = data.train.x[idx].numpy()
    return [x[i:i + CALIBRATION_BATCH] for i in range(0, len(x), CALIBRATION_BATCH)]
