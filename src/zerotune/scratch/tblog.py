"""TensorBoard logging for the from-scratch models.

Layered like tensorboardX itself: pure functions turn a training state into ``{tag: value}``
summaries, and `BoardLogger` (a `GDHook`) writes them through zerotune's one event writer,
:class:`~zerotune.track.sink.EventSink`. The loss is written every iteration; parameters,
gradient norms and the learning rate every ``log_every`` iterations, histograms every
``hist_every``, because each scalar costs time to write and a linear regression iteration costs
less than a few of them.
"""

from __future__ import annotations

import numpy as np

from .optim import GDHook, GDResult, GDState, Params

#: Models with at most this many parameters get one scalar curve per parameter.
MAX_PARAM_SCALARS = 32


def param_labels(params: Params, feature_names: list[str] | None = None) -> dict[str, list[str]]:
    """One label per scalar parameter: ``w/bmi`` for a named feature, ``W/2_1`` by index otherwise.

    TensorBoard tags allow only letters, digits, ``_ - . /``, so indices are joined with ``_``.
    """
    labels = {}
    for name, value in params.items():
        if value.ndim == 0:
            labels[name] = [name]
        elif value.ndim == 1 and feature_names and len(feature_names) == value.size and name == "w":
            labels[name] = [f"{name}/{f}" for f in feature_names]
        else:
            labels[name] = [f"{name}/" + "_".join(map(str, idx)) for idx in np.ndindex(value.shape)]
    return labels


def param_scalars(params: Params, labels: dict[str, list[str]]) -> dict[str, float]:
    """``params/<label>`` -> value for small models, ``param_norm/<name>`` -> ‖θ‖ otherwise."""
    if sum(v.size for v in params.values()) <= MAX_PARAM_SCALARS:
        return {f"params/{lab}": float(v)
                for name, value in params.items()
                for lab, v in zip(labels[name], np.ravel(value))}
    return {f"param_norm/{name}": float(np.linalg.norm(v)) for name, v in params.items()}


def grad_scalars(state: GDState) -> dict[str, float]:
    """Total and per-parameter gradient norms, and the learning rate."""
    out = {"grad_norm/total": state.grad_norm, "lr": state.lr}
    out.update({f"grad_norm/{k}": float(np.linalg.norm(g)) for k, g in state.grads.items()})
    return out


class BoardLogger(GDHook):
    """Writes the loss, parameters, gradient norms and extra metrics of a run to TensorBoard.

    Args:
        writer: the run's :class:`~zerotune.track.sink.EventSink`.
        log_every: interval (iterations, and steps for the batch loss) of everything but the
            per-iteration training loss.
        hist_every: interval of weight and gradient histograms; 0 turns them off.
        feature_names: names used to label the weights of linear models.
    """

    def __init__(self, writer, log_every: int = 10, hist_every: int = 0,
                 feature_names: list[str] | None = None):
        self.writer = writer
        self.log_every = max(1, int(log_every))
        self.hist_every = int(hist_every)
        self.feature_names = feature_names
        self._labels: dict[str, list[str]] | None = None
        self._last_state: GDState | None = None

    def on_step_end(self, state: GDState) -> None:
        if state.step % self.log_every == 0:
            self.writer.add_scalar("loss/batch", state.loss, state.step)

    def on_iteration_end(self, state: GDState) -> None:
        w, it = self.writer, state.iteration
        w.add_scalar("loss/train", state.loss, it)
        for tag, value in state.metrics.items():
            w.add_scalar(tag, value, it)
        if it % self.log_every == 0:
            self._log_params(state)
        if self.hist_every and it % self.hist_every == 0:
            for k, v in state.params.items():
                w.add_histogram(f"weights/{k}", v, it)
                w.add_histogram(f"grads/{k}", state.grads[k], it)
        self._last_state = state

    def on_fit_end(self, result: GDResult) -> None:
        # The last iteration is always logged in full, whatever the interval.
        state = self._last_state
        if state is not None and state.iteration % self.log_every != 0:
            self._log_params(state)
        self.writer.flush()

    def _log_params(self, state: GDState) -> None:
        if self._labels is None:
            self._labels = param_labels(state.params, self.feature_names)
        for tag, value in {**param_scalars(state.params, self._labels),
                           **grad_scalars(state)}.items():
            self.writer.add_scalar(tag, value, state.iteration)


class PathRecorder(GDHook):
    """Keeps (w, b) after every iteration of a one-feature linear model, for the contour plot."""

    def __init__(self):
        self.path: list[tuple[float, float]] = []

    def on_iteration_end(self, state: GDState) -> None:
        self.path.append((float(state.params["w"][0]), float(state.params["b"])))

    def as_array(self) -> np.ndarray:
        return np.asarray(self.path)


def markdown_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A small markdown table for ``add_text`` (TensorBoard renders markdown)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
