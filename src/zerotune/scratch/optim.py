"""Gradient descent in plain NumPy: batch, mini-batch and stochastic, with momentum and decay.

Every model in this package is a function ``loss_and_grad(params, X, y) -> (loss, grads)`` over a
dict of NumPy arrays; `minimize` runs gradient descent on any such function. One *iteration* is one
pass over the training rows (an epoch): a single update for batch gradient descent, ``ceil(m / B)``
updates for mini-batch, ``m`` updates for stochastic gradient descent.

Update rule (heavy-ball momentum, Polyak 1964), with inverse-time learning-rate decay::

    lr_t = lr / (1 + decay * (t - 1))        t = 1, 2, ... iterations
    v    = momentum * v - lr_t * grad
    θ    = θ + v
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError

Params = dict[str, np.ndarray]
LossGrad = Callable[[Params, np.ndarray, np.ndarray], tuple[float, Params]]

METHODS = ("batch", "minibatch", "sgd")


@dataclass
class GDConfig:
    """Options of gradient descent.

    Attributes:
        lr: learning rate (step size), > 0.
        iters: maximum number of iterations (passes over the training rows).
        tol: stop when ``||grad J|| <= tol * ||grad J(θ0)||`` on the full training set; 0 turns
            the test off, so only `iters` stops the run.
        method: "batch" (all rows per update), "minibatch" (`batch_size` rows) or "sgd" (one row).
        batch_size: rows per update for "minibatch".
        momentum: heavy-ball momentum in [0, 1); 0 is plain gradient descent.
        decay: inverse-time learning-rate decay per iteration, >= 0; 0 keeps the rate constant.
        seed: seed of the row shuffle (mini-batch and stochastic).
    """

    lr: float = 0.1
    iters: int = 1000
    tol: float = 0.0
    method: str = "batch"
    batch_size: int = 32
    momentum: float = 0.0
    decay: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        """Raise a UserError naming the first invalid field."""
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"learning rate must be a positive number, got {self.lr}")
        if self.iters < 0:
            raise UserError(f"iters must be >= 0, got {self.iters}")
        if not self.tol >= 0:
            raise UserError(f"tol must be >= 0, got {self.tol}")
        if self.method not in METHODS:
            raise UserError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.momentum < 1.0:
            raise UserError(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.decay >= 0:
            raise UserError(f"decay must be >= 0, got {self.decay}")


@dataclass
class GDState:
    """What callbacks see after each update or iteration; read it, do not change it.

    Attributes:
        iteration: iterations done (0 before the first update).
        step: parameter updates done.
        loss: training loss (full set at an iteration end, the batch at a step end).
        params: current parameters (the dict changes as training goes on; copy what you keep).
        grads: gradient of `loss` at `params`.
        grad_norm: Euclidean norm of all gradients together.
        lr: learning rate used for the latest update.
        metrics: extra values from the ``metrics`` hook of `minimize` (iteration ends only).
    """

    iteration: int
    step: int
    loss: float
    params: Params
    grads: Params
    grad_norm: float
    lr: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class GDResult:
    """Outcome of `minimize`.

    Attributes:
        params: final parameters.
        losses: full training loss per iteration; ``losses[0]`` is the loss at the start.
        grad_norms: full-gradient norm per iteration, aligned with `losses`.
        iterations: iterations done.
        steps: parameter updates done.
        converged: True when the `tol` test stopped the run.
        seconds: wall time of the run.
        metrics: extra values per iteration from the ``metrics`` hook.
    """

    params: Params
    losses: list[float]
    grad_norms: list[float]
    iterations: int
    steps: int
    converged: bool
    seconds: float
    metrics: list[dict[str, float]] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


class GDHook:
    """Hooks called by `minimize`; subclass and override the ones you need.

    Gradient descent has iterations rather than epochs, so these events are its own; the torch
    trainer's are those of `zerotune.train.callbacks.Callback`.
    """

    def on_step_end(self, state: GDState) -> None:
        """After each mini-batch or stochastic update (not called for batch gradient descent)."""

    def on_iteration_end(self, state: GDState) -> None:
        """After the full-data evaluation that ends each iteration, and once at iteration 0."""

    def on_fit_end(self, result: GDResult) -> None:
        """Once, after the last iteration."""


def global_norm(grads: Params) -> float:
    """Euclidean norm of all gradient arrays taken together."""
    return math.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values()))


def minimize(
    loss_and_grad: LossGrad,
    params: Params,
    X: np.ndarray,
    y: np.ndarray,
    config: GDConfig,
    callbacks: list[GDHook] | tuple[GDHook, ...] = (),
    metrics: Callable[[Params], dict[str, float]] | None = None,
) -> GDResult:
    """Minimise ``loss_and_grad`` over ``params`` by gradient descent.

    Args:
        loss_and_grad: ``(params, X, y) -> (loss, grads)`` with grads keyed like params.
        params: starting parameters; copied, never changed in place.
        X: training features, (m, F).
        y: training targets, (m,).
        config: gradient-descent options.
        callbacks: objects whose hooks are called as the run goes.
        metrics: optional ``params -> {name: value}`` evaluated at every iteration end
            (e.g. test accuracy), passed to callbacks and kept in the result.

    Returns:
        The final parameters and the loss history.

    Raises:
        UserError: when an option is invalid.
        DivergenceError: (a UserError) when the loss grows without bound or becomes inf/NaN,
            with a hint to lower the learning rate.
    """
    config.validate()
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    rng = np.random.default_rng(config.seed)
    m = X.shape[0]
    batch = {"batch": m, "minibatch": config.batch_size, "sgd": 1}[config.method]
    start = time.perf_counter()

    # Overflow is expected when the learning rate is too large; it is caught by the finiteness
    # check below and reported as one clear error instead of a stream of RuntimeWarnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, grads = loss_and_grad(params, X, y)
        _check_finite(loss, params, config, 0, None)
        loss0, gnorm0 = float(loss), global_norm(grads)
        losses, grad_norms, history = [loss0], [gnorm0], []
        extra = metrics(params) if metrics else {}
        if metrics:
            history.append(extra)
        state = GDState(0, 0, loss0, params, grads, gnorm0, config.lr, extra)
        for cb in callbacks:
            cb.on_iteration_end(state)

        converged = config.tol > 0 and gnorm0 <= config.tol * max(gnorm0, 1e-300)
        step, it, rising = 0, 0, 0
        while not converged and it < config.iters:
            it += 1
            lr = config.lr / (1.0 + config.decay * (it - 1))
            if batch >= m:
                # Batch gradient descent reuses the full gradient computed at the end of the
                # previous iteration: one evaluation per update.
                _update(params, velocity, grads, lr, config.momentum)
                step += 1
            else:
                order = rng.permutation(m)
                for lo in range(0, m, batch):
                    idx = order[lo : lo + batch]
                    b_loss, b_grads = loss_and_grad(params, X[idx], y[idx])
                    _check_finite(b_loss, params, config, it, loss0)
                    _update(params, velocity, b_grads, lr, config.momentum)
                    step += 1
                    if callbacks:
                        s = GDState(it, step, float(b_loss), params, b_grads,
                                    global_norm(b_grads), lr)
                        for cb in callbacks:
                            cb.on_step_end(s)
            prev = losses[-1]
            loss, grads = loss_and_grad(params, X, y)
            _check_finite(loss, params, config, it, loss0)
            loss, gnorm = float(loss), global_norm(grads)
            rising = rising + 1 if loss > prev else 0
            _check_growth(loss, loss0, rising, config, it)
            losses.append(loss)
            grad_norms.append(gnorm)
            extra = metrics(params) if metrics else {}
            if metrics:
                history.append(extra)
            state = GDState(it, step, loss, params, grads, gnorm, lr, extra)
            for cb in callbacks:
                cb.on_iteration_end(state)
            converged = config.tol > 0 and gnorm <= config.tol * gnorm0

    result = GDResult(params, losses, grad_norms, it, step, bool(converged),
                      time.perf_counter() - start, history)
    for cb in callbacks:
        cb.on_fit_end(result)
    return result


def _update(params: Params, velocity: Params, grads: Params, lr: float, momentum: float) -> None:
    for k in params:
        velocity[k] = momentum * velocity[k] - lr * grads[k]
        params[k] = params[k] + velocity[k]


class DivergenceError(UserError):
    """Gradient descent diverged: the loss grew without bound or became inf/NaN."""


def _diverged(config: GDConfig, it: int, detail: str) -> DivergenceError:
    return DivergenceError(
        f"gradient descent diverged at iteration {it} ({detail}); "
        f"the learning rate {config.lr:g} is too large: try a smaller one, e.g. {config.lr / 10:g}"
        + (" or less momentum" if config.momentum > 0 else "")
    )


def _check_finite(loss, params: Params, config: GDConfig, it: int, loss0: float | None) -> None:
    if math.isfinite(float(loss)) and all(np.isfinite(v).all() for v in params.values()):
        return
    if loss0 is None:
        raise UserError("the loss is not finite at the starting parameters; check the data scale")
    raise _diverged(config, it, f"the loss went from {loss0:.4g} to {float(loss)}")


#: The run stops when the loss exceeds its starting value this many times over ...
GROWTH_LIMIT = 1e6
#: ... or rises this many iterations in a row while above its starting value.
RISING_LIMIT = 20


def _check_growth(loss: float, loss0: float, rising: int, config: GDConfig, it: int) -> None:
    # A stable run can rise for a few iterations (momentum overshoots), but not without bound.
    if loss > GROWTH_LIMIT * max(loss0, 1e-12) or (loss > loss0 and rising >= RISING_LIMIT):
        raise _diverged(config, it, f"the loss grew from {loss0:.4g} to {loss:.4g}")
