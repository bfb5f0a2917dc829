"""Pure functions that turn values into tensorboardX ``Summary`` protos; nothing here writes.

The heavy lifting (PNG encoding, PR-curve counting, protos of plugins) is tensorboardX's; these
functions pick the inputs, batch values and keep tags valid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import numpy as np

_BAD_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.\-/]")


def clean_tag(text: str) -> str:
    """A TensorBoard-safe tag fragment: letters, digits and ``_ . - /``, others become ``_``."""
    return _BAD_TAG_CHARS.sub("_", str(text)).strip("/") or "_"


# SummaryWriter's rule (tensorboardX.summary._clean_tag): letters of any alphabet stay.
_WRITER_BAD_TAG_CHARS = re.compile(r"[^-/\w.]")


def writer_tag(tag: str) -> str:
    """``tag`` as ``SummaryWriter.add_scalar`` writes it: characters other than letters, digits
    and ``- / _ .`` become ``_``, and leading slashes go."""
    return _WRITER_BAD_TAG_CHARS.sub("_", tag).lstrip("/")


def scalars(pairs: Iterable[tuple[str, float]]):
    """One Summary holding many scalars: one event per step instead of one per tag."""
    from tensorboardX.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=t, simple_value=v) for t, v in pairs])


def histogram(tag: str, stats: np.ndarray):
    """A histogram Summary from the packed statistics of :func:`zerotune.track.stats.hist_stats`.

    Args:
        tag: the tag.
        stats: [min, max, num, sum, sum_squares, count_0, ..., count_{bins-1}] with equal-width
            buckets between min and max.

    Returns:
        The Summary, or None when the values were not finite (nothing meaningful to draw).
    """
    from tensorboardX.summary import histogram_raw

    lo, hi, num, total, squares = (float(v) for v in stats[:5])
    counts = np.asarray(stats[5:], dtype=np.float64)
    if not (np.isfinite(lo) and np.isfinite(hi)) or num <= 0:
        return None
    bins = len(counts)
    width = max(hi - lo, 1e-12)
    limits = lo + width * np.arange(1, bins + 1) / bins
    return histogram_raw(tag, lo, hi, num, total, squares, limits.tolist(), counts.tolist())


@functools.cache
def _tensorflow_buckets() -> tuple[float, ...]:
    """TensorFlow's default histogram bucket edges: ±1e-12 growing by 10% up to ±1e20, and 0.

    Built by repeated multiplication, as tensorboardX builds them, so the edges are the same
    floats bit for bit.
    """
    edges, edge = [], 1e-12
    while edge < 1e20:
        edges.append(edge)
        edge *= 1.1
    return tuple([-e for e in reversed(edges)] + [0.0] + edges)


def values_histogram(tag: str, values):
    """A histogram Summary of an array of values, in TensorFlow's default buckets.

    The same summary as ``SummaryWriter.add_histogram``; for values already on the host (the
    training callback summarises device tensors with :func:`histogram` instead).
    """
    from tensorboardX.summary import histogram as tbx_histogram

    return tbx_histogram(tag, np.asarray(values), list(_tensorflow_buckets()))


def image(tag: str, hwc_uint8: np.ndarray):
    """A PNG image Summary from an (H, W, 3) or (H, W, 1) uint8 array.

    Encoded here rather than with ``tensorboardX.summary.image``, which resamples every image
    (even at scale 1) before encoding; zlib level 3 is the fastest level for these figures and
    costs a few percent in size.
    """
    import io

    from PIL import Image
    from tensorboardX.proto.summary_pb2 import Summary

    arr = np.ascontiguousarray(hwc_uint8, dtype=np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=3)
    h, w = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=h, width=w, colorspace=channels, encoded_image_string=buf.getvalue()))])


def text(tag: str, markdown: str):
    """A text Summary; TensorBoard renders it as Markdown (tables, code blocks)."""
    from tensorboardX.summary import text as tbx_text

    return tbx_text(tag, markdown)


def pr_curve(tag: str, is_positive: np.ndarray, scores: np.ndarray, num_thresholds: int = 101):
    """A precision-recall curve Summary for one binary problem (one class vs. the rest)."""
    from tensorboardX.summary import pr_curve as tbx_pr_curve

    return tbx_pr_curve(tag, is_positive.astype(np.bool_), scores.astype(np.float32), num_thresholds)


def custom_scalars(layout: dict):
    """The custom-scalars layout Summary: ``{category: {chart: ["Multiline", [tag regexes]]}}``."""
    from tensorboardX.summary import custom_scalars as tbx_custom_scalars

    return tbx_custom_scalars(layout)


def graph_event(model, example):
    """An Event holding the traced graph of ``model`` on ``example`` (for the Graphs tab).

    Tracing runs the model once; callers put it in eval mode so no state (batch-norm statistics,
    dropout RNG) changes.
    """
    import warnings

    from tensorboardX.proto.event_pb2 import Event
    from torch.utils.tensorboard._pytorch_graph import graph

    with warnings.catch_warnings():
        # TensorBoard's graph format is built from a TorchScript trace; torch marks tracing as
        # deprecated, which says nothing about this use.
        warnings.simplefilter("ignore", DeprecationWarning)
        graph_def, _ = graph(model, example)
    return Event(graph_def=graph_def.SerializeToString())
