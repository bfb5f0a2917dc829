"""Turning the ``inputs`` of a /predict request into a float32 batch (or a list of texts), or a clear
reason why not."""

from __future__ import annotations

from typing import Any

import numpy as np


class InputError(ValueError):
    """Inputs the model cannot take; the server answers 422 with this message."""


def describe_shape(shape: list) -> str:
    """``[1, 8, 8]``, as a message shows a shape."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def to_batch(inputs: Any, input_shape: list[int], max_examples: int) -> np.ndarray:
    """Validate raw request inputs and return them as a (B, *input_shape) float32 array.

    Accepted: one example of shape ``input_shape`` or a batch ``[N, *input_shape]``; for
    single-channel images also ``[H, W]`` and ``[N, H, W]``.

    Raises:
        InputError: text, non-numbers, ragged arrays, NaN/infinity, wrong shapes, too many examples.
    """
    shape = tuple(input_shape)
    want = (f"this model takes arrays of numbers: one example of shape {describe_shape(input_shape)} or a batch "
            f"{describe_shape(['N', *input_shape])}")
    if isinstance(inputs, str):
        raise InputError(f"inputs is text; {want}")
    try:
        arr = np.asarray(inputs)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise InputError(f"inputs is not a rectangular array (nested lists of different lengths?); {want}") from None
    if arr.dtype.kind in "US":
        raise InputError(f"inputs contains text; {want}")
    if arr.dtype.kind == "b":
        raise InputError(f"inputs contains true/false values; {want}")
    if arr.dtype.kind not in "iuf":
        raise InputError(f"inputs is not a rectangular array of numbers (null values, mixed types, nested lists of "
                         f"different lengths or numbers too large?); {want}")
    with np.errstate(over="ignore", invalid="ignore"):
        arr = arr.astype(np.float32)
    if arr.shape == shape:
        batch = arr[None]
    elif arr.shape[1:] == shape and arr.ndim == len(shape) + 1:
        batch = arr
    elif len(shape) == 3 and shape[0] == 1 and arr.shape == shape[1:]:
        batch = arr[None, None]
    elif len(shape) == 3 and shape[0] == 1 and arr.ndim == 3 and arr.shape[1:] == shape[1:]:
        batch = arr[:, None]
    else:
        raise InputError(f"inputs has shape {describe_shape(list(arr.shape))}; {want}")
    if len(batch) == 0:
        raise InputError(f"inputs holds no examples; {want}")
    if len(batch) > max_examples:
        raise InputError(f"inputs holds {len(batch)} examples; at most {max_examples} are allowed per request")
    if not np.isfinite(batch).all():
        raise InputError("inputs contains NaN or infinite values (or numbers too large for float32)")
    return batch


def check_outputs(out: np.ndarray, x: np.ndarray | None = None) -> None:
    """Refuse a request whose outputs are not finite: JSON cannot carry them, and they mean nothing.

    Finite inputs far outside the training data (e.g. 3e38) make float32 activations overflow.
    Rows are checked one by one, so in a shared model call only the requests that overflowed fail.

    Args:
        out: the request's rows of the model's outputs.
        x: its raw inputs (arrays; None for text), to say how large they were.

    Raises:
        InputError: naming the examples whose outputs overflowed.
    """
    bad = np.flatnonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1))
    if not bad.size:
        return
    which = ", ".join(str(i) for i in bad[:10]) + (", ..." if bad.size > 10 else "")
    if x is None:
        raise InputError(f"the model's outputs overflow (infinite or NaN) for inputs[{which}]; "
                         "shorten or change the text")
    peak = float(np.abs(x[bad]).max())
    raise InputError(f"the model's outputs overflow float32 (infinite or NaN) for example(s) {which}: inputs as large "
                     f"as {peak:.3g} are too far from the training data; send values in the training range (each "
                     "feature's mean and std are under input.normalisation in GET /metadata)")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def to_texts(inputs: Any, max_examples: int) -> list[str]:
    """Validate the ``inputs`` of a text model: one string or a list of 1 to ``max_examples`` strings.

    Raises:
        InputError: numbers, arrays of numbers, nulls, an empty list, too many texts, or text that is
            not valid Unicode (lone surrogates).
    """
    want = f"this model takes text: one string or a list of 1 to {max_examples} strings"
    if isinstance(inputs, str):
        texts = [inputs]
    elif isinstance(inputs, list):
        if not inputs:
            raise InputError(f"inputs is an empty list; {want}")
        if len(inputs) > max_examples:
            raise InputError(f"inputs holds {len(inputs)} texts; at most {max_examples} are allowed per request")
        for i, t in enumerate(inputs):
            if not isinstance(t, str):
                raise InputError(f"inputs[{i}] is {_kind(t)}, not a string; {want}")
        texts = inputs
    else:
        raise InputError(f"inputs is {_kind(inputs)}; {want}")
    for i, t in enumerate(texts):
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"inputs[{i}] is not valid Unicode text (it holds a lone surrogate)") from None
    return texts
