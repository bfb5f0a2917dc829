"""Checking that an exported model computes what the PyTorch model computes, on real inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import UserError
from .runtime import Runner

CHUNK = 256  # examples per call, so a large test split never needs one huge batch


@dataclass
class Parity:
    """The outcome of comparing a candidate's outputs with a reference's on the same inputs."""

    reference: str  # what the candidate was compared with, e.g. "pytorch fp32"
    inputs: str  # "test split" or "random normal" (when the run's data cannot be rebuilt)
    n: int
    max_abs_diff: float
    agreement: float | None  # fraction of equal predicted classes (classification only)
    bound: str  # the condition that had to hold, in words
    ok: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        agree = "" if self.agreement is None else f", same class on {self.agreement:.1%}"
        return (f"vs {self.reference} on {self.n} {self.inputs} inputs: max |diff| {self.max_abs_diff:.3g}{agree} "
                f"(bound: {self.bound})")


def outputs(run: Runner, x: np.ndarray) -> np.ndarray:
    """Outputs of ``run`` on ``x``, computed in chunks."""
    return np.concatenate([run(x[i:i + CHUNK]) for i in range(0, len(x), CHUNK)])


def compare(reference: Runner, candidate: Runner, x: np.ndarray, classification: bool) -> tuple[float, float | None]:
    """Max absolute output difference and class agreement between two runners on ``x``.

    The candidate is also run one example at a time on the first few inputs, so a batch axis that
    was fixed at export time instead of left free shows up as a failure here.
    """
    ref, got = outputs(reference, x), outputs(candidate, x)
    # One at a time on both sides: dynamic int8 scales activations per batch, so batch size matters.
    ref1, got1 = ([run(x[i:i + 1]) for i in range(min(4, len(x)))] for run in (reference, candidate))
    ref1, got1 = np.concatenate(ref1), np.concatenate(got1)
    if got.shape != ref.shape or got1.shape != ref1.shape:
        raise UserError(f"exported model gives outputs of shape {got.shape[1:]}, PyTorch gives {ref.shape[1:]}")
    diff = max(float(np.abs(ref - got).max(initial=0.0)), float(np.abs(ref1 - got1).max(initial=0.0)))
    if not (np.isfinite(got).all() and np.isfinite(got1).all()):
        diff = float("inf")
    # Over the last axis: classes of a classifier, next tokens of a language model (B, T, V).
    agreement = float((ref.argmax(-1) == got.argmax(-1)).mean()) if classification and len(x) else None
    return diff, agreement


def verify(reference: Runner, candidate: Runner, x: np.ndarray, *, reference_name: str, inputs: str,
           classification: bool, tolerance: float | None = None, min_agreement: float | None = None) -> Parity:
    """Compare a candidate with its reference and say whether the bound holds.

    Args:
        reference: the PyTorch model the export came from.
        candidate: the exported model.
        x: inputs, already normalised as the model expects.
        reference_name: how the reference is named in reports.
        inputs: where ``x`` came from, for reports.
        classification: whether outputs are logits over classes or tokens (enables the agreement measure).
        tolerance: bound on the max absolute difference (exact exports).
        min_agreement: bound on class agreement (quantized exports, whose outputs move by design).
    """
    diff, agreement = compare(reference, candidate, x, classification)
    ok, bounds = True, []
    if tolerance is not None:
        ok &= diff <= tolerance
        bounds.append(f"max |diff| <= {tolerance:g}")
    if min_agreement is not None and agreement is not None:
        ok &= agreement >= min_agreement
        bounds.append(f"same class >= {min_agreement:.0%}")
    return Parity(reference_name, inputs, len(x), diff, agreement, " and ".join(bounds) or "none", bool(ok))
