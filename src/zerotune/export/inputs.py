"""Real inputs for parity checks, calibration and accuracy, rebuilt from a run's own data config."""

from __future__ import annotations

import numpy as np
import torch

from ..data.bundle import DataBundle
from ..errors import UserError
from ..runload.load import LoadedRun, run_data
from .signature import Signature, signature_for

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
    if hasattr(data.train, "sequences"):  # preference pairs: the model reads each answer's sequence alone
        data = DataBundle(data.train.sequences(), data.val.sequences(), data.test.sequences(), data.meta,
                          data.tokenizer, data.chat)
    if list(data.meta.input_shape) != list(run.meta.input_shape):
        return None
    # Inputs normalised with other statistics than the model's (e.g. a fine-tune that kept its
    # parent's) would not be the inputs the model sees in service.
    for ours, theirs in ((data.meta.x_mean, run.meta.x_mean), (data.meta.x_std, run.meta.x_std)):
        if (ours is None) != (theirs is None) or (ours is not None and not np.allclose(ours, theirs, rtol=1e-5)):
            return None
    return data


def parity_inputs(run: LoadedRun, data: DataBundle | None,
                  signature: Signature | None = None) -> tuple[np.ndarray, str]:
    """Native inputs for parity checks: the test split when the data is available, else seeded noise.

    Noise comes from the run's signature: N(0, 1) for arrays, the distribution normalised inputs
    have, so it exercises the model in the range it was trained on; random token ids of random
    lengths for text.
    """
    if data is not None and len(data.test):
        return _first(data.test, MAX_PARITY_INPUTS), "test split"
    if data is not None and len(data.val):
        return _first(data.val, MAX_PARITY_INPUTS), "val split"
    signature = signature or signature_for(run.meta, run.model, run.config.data.max_length)
    return signature.noise(64), "random normal" if signature.kind == "array" else "random token"


def _first(split, n: int) -> np.ndarray:
    """The first ``n`` inputs of a split: examples, or a language-model corpus's first windows."""
    x = split.x[:n] if hasattr(split, "x") else split.sample_inputs(n)
    return x.cpu().numpy()


def eval_split(data: DataBundle | None, max_windows: int = 256) -> tuple[np.ndarray, np.ndarray] | None:
    """The test split's native inputs and targets, for accuracy: every example, or for a language
    model a fixed sample of windows and their next tokens. None when there is no test data."""
    if data is None or not len(data.test):
        return None
    test = data.test
    if hasattr(test, "x"):
        return test.x.numpy(), test.y.numpy()
    x, y = test.fixed_windows(max_windows)
    return x.cpu().numpy(), y.cpu().numpy()


def example_batch(run: LoadedRun, data: DataBundle | None, signature: Signature | None = None) -> torch.Tensor:
    """Two native inputs, for tracing and export (two, so the batch axis is not specialised to 1)."""
    x, _ = parity_inputs(run, data, signature)
    return torch.from_numpy(np.ascontiguousarray(x[:2]))


def calibration_batches(data: DataBundle | None, seed: int = 0) -> list[np.ndarray]:
    """A seeded random sample of training inputs, in batches, for static int8 calibration.

    Raises:
        UserError: when the run's data cannot be rebuilt (static int8 needs real inputs).
    """
    if data is None or len(data.train) == 0:
        raise UserError("static int8 needs the run's training data for calibration, and it cannot be rebuilt "
                        "(check data.path in the run's config.yaml)")
    if hasattr(data.train, "x"):
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(data.train), generator=g)[:CALIBRATION_EXAMPLES]
        x = data.train.x[idx].numpy()
    else:  # a language-model corpus: windows at fixed pseudo-random starts
        x = data.train.fixed_windows(CALIBRATION_EXAMPLES, seed)[0].cpu().numpy()
    return [x[i:i + CALIBRATION_BATCH] for i in range(0, len(x), CALIBRATION_BATCH)]
