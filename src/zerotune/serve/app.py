"""The HTTP API: POST /predict, GET /health, GET /metadata, the OpenAPI docs at /docs, and a
prediction form at / (`serve.pages`).

``inputs`` is one example or many: nested arrays of numbers for tabular and image models, strings
for text models (tokenised by the server with the run's own tokenizer).

Everything a client can get wrong is answered with a 4xx and a message saying what to send:
401 without the bearer token (when one is set), 413 for a body over the size limit, 422 for
inputs of the wrong type, shape or values: also numbers too far from the training data for the
model to compute (a million training standard deviations, e.g. 3e38), outputs that overflow, and a
model call that fails on a request's own values. Whatever parses as JSON never gets a 5xx.
"""

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model
from typing_extensions import Annotated

from .. import __version__
from ..errors import UserError
from .access import Health, add_health, bearer_guard
from .batcher import MicroBatcher
from .body_limit import BodyLimit
from .inputs import InputError, check_outputs, describe_shape, to_batch, to_texts
from .model import ServedModel
from .pages import add_page
from .run_summary import run_summary


PREDICT_WAIT_MS = 1.0  # one model call answers a request: a short wait is enough to share it
LM_WAIT_MS = 20.0  # a batch decodes together to the end: requests must arrive within the window to share it


@dataclass
class ServeOptions:
    """How the server behaves.

    Attributes:
        token: bearer token required on /predict and /metadata (None: no authentication).
        max_body_bytes: larger request bodies get 413.
        max_examples: most examples in one request.
        batching: coalesce concurrent requests into one model call.
        max_batch: most examples per model call when batching.
        max_wait_ms: how long a request may wait for others to share its model call (None: 1 ms for
            /predict, ``LM_WAIT_MS`` for a language model, whose batches share every decode step).
    """

    token: str | None = None
    max_body_bytes: int = 1_000_000
    max_examples: int = 1024
    batching: bool = True
    max_batch: int = 64
    max_wait_ms: float | None = None

    def __post_init__(self):
        if self.max_body_bytes < 1024:
            raise UserError(f"max body size must be at least 1 KB, got {self.max_body_bytes} bytes")
        if self.max_examples < 1:
            raise UserError(f"max examples per request must be at least 1, got {self.max_examples}")
        if self.max_batch < 1:
            raise UserError(f"max batch must be at least 1, got {self.max_batch}")
        if self.max_wait_ms is not None and not 0 <= self.max_wait_ms <= 1000:
            raise UserError(f"max wait must be between 0 and 1000 ms, got {self.max_wait_ms}")
        if self.token is not None and len(self.token) < 8:
            raise UserError("the bearer token must be at least 8 characters")

    def wait_ms(self, language_model: bool = False) -> float:
        """The batching window in ms: the one given, or the default for the kind of model."""
        if self.max_wait_ms is not None:
            return self.max_wait_ms
        return LM_WAIT_MS if language_model else PREDICT_WAIT_MS


# No `from __future__ import annotations` here: FastAPI must see the request model built inside
# _add_routes as a real class, not as a name it cannot resolve.


class PredictResponse(BaseModel):
    """Predictions, one entry per input example, in request order."""

    classes: list[int] | None = Field(None, description="predicted class index (classification)")
    labels: list[str] | None = Field(None, description="predicted class name (classification)")
    probabilities: list[list[float]] | None = Field(None, description="class probabilities (classification)")
    values: list[float] | None = Field(None, description="predicted values in target units (regression)")
    truncated: list[int] | None = Field(None, description="text models: positions of the inputs cut to the "
                                                          "model's max_length tokens before predicting")
    model: str
    version: str


def _example(served: ServedModel) -> list:
    """A valid example input for the docs: the training mean of each channel or feature."""
    shape = served.meta.input_shape
    mean = np.asarray(served.meta.x_mean if served.meta.x_mean is not None else [], dtype=np.float64)
    if len(shape) == 3 and mean.size == shape[0]:
        x = np.broadcast_to(mean.reshape(-1, 1, 1), shape)
    elif mean.size == int(np.prod(shape)):
        x = mean.reshape(shape)
    else:
        x = np.zeros(shape)
    return np.round(x, 3).tolist()


TEXT_EXAMPLE = "a short review: the food was great"


def _text_input_field(served: ServedModel, max_examples: int):
    """The ``inputs`` field of a text model: validated by `to_texts` (clear 422 messages), described
    to OpenAPI as a string or a list of strings."""
    schema = {
        "anyOf": [{"type": "string"},
                  {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": max_examples}],
        "title": "Inputs",
        "description": f"One text, or a list of 1 to {max_examples} texts. The server tokenises them with the "
                       f"model's own tokenizer, truncated to {served.max_length} tokens as in training; "
                       f"the answer's `truncated` lists the inputs that were cut.",
        "examples": [TEXT_EXAMPLE, [TEXT_EXAMPLE, "terrible service"]],
    }
    return Annotated[Any, WithJsonSchema(schema)], Field(...)


def _input_metadata(served: ServedModel, opts: "ServeOptions") -> dict:
    meta = served.meta
    if served.text:
        return {
            "type": "text", "dtype": "string",
            "accepts": ["one string", f"a list of 1 to {opts.max_examples} strings"],
            "tokenizer": {"class": type(served.tokenizer).__name__, "max_length": served.max_length,
                          "truncation": True, "applied_by_server": True},
            "model_inputs": served.signature.to_dict(),
        }
    shape_text, batch_text = describe_shape(meta.input_shape), describe_shape(["N", *meta.input_shape])
    return {
        "type": "array of numbers", "dtype": "float32", "shape": meta.input_shape,
        "accepts": [f"one example {shape_text}", f"a batch {batch_text} with N <= {opts.max_examples}"],
        "feature_names": meta.feature_names,
        "normalisation": {"applied_by_server": meta.x_mean is not None, "mean": meta.x_mean, "std": meta.x_std},
    }


def _lifespan(batcher: MicroBatcher):
    """Start the batcher with the server; on shutdown, answer every queued request before stopping."""

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()  # every request already queued is answered before the process exits
        logging.getLogger("uvicorn.error").info(
            "zerotune: answered %d examples in %d model calls; stopped", batcher.examples, batcher.batches)

    return lifespan


def _description(served: ServedModel) -> str:
    meta = served.meta
    if served.text:
        return (f"Predictions of the `{served.name}` model ({meta.task}) on text, tokenised by the server. "
                "GET /metadata tells what to send.")
    return (f"Predictions of the `{served.name}` model ({meta.task}, input shape "
            f"{describe_shape(meta.input_shape)}) on raw, un-normalised inputs. GET /metadata tells what to send.")


def _refusal() -> HTTPException:
    return HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def _request_model(served: ServedModel, opts: ServeOptions) -> type[BaseModel]:
    """The body of POST /predict: ``{"inputs": ...}`` and nothing else, described for this model."""
    if served.text:
        inputs_field = _text_input_field(served, opts.max_examples)
    else:
        shape_text = describe_shape(served.meta.input_shape)
        batch_text = describe_shape(["N", *served.meta.input_shape])
        inputs_field = (list[Any] | str, Field(
            description=f"One example as a nested array of shape {shape_text}, or a batch of up to "
                        f"{opts.max_examples} examples {batch_text}, in raw (un-normalised) units; the "
                        "server applies the model's normalisation. Text is rejected: this model takes numbers.",
            examples=[_example(served)]))
    return create_model("PredictRequest", __config__=ConfigDict(extra="forbid"), inputs=inputs_field)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InputError)
    async def bad_inputs(request: Request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, 422)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        # FastAPI's default echoes the offending input, which may hold NaN or Infinity (not valid
        # JSON, so the error itself would fail with a 500) or a megabyte of numbers. Say where and why.
        errors = [{"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, 422)


def _metadata(served: ServedModel, opts: ServeOptions, run: dict | None) -> dict[str, Any]:
    meta = served.meta
    return {
        "model": {"name": served.name, "backend": served.backend, "source": served.source,
                  "export": served.export},
        "task": meta.task,
        "run": run,
        "input": _input_metadata(served, opts),
        "classes": meta.class_names if meta.task == "classification" else None,
        "version": {"zerotune": __version__, "model": served.version},
        "batching": {"enabled": opts.batching, "max_batch": opts.max_batch, "max_wait_ms": opts.wait_ms()},
        "limits": {"max_body_bytes": opts.max_body_bytes, "max_examples": opts.max_examples},
    }


def _model_failure(served: ServedModel, e: Exception) -> InputError:
    """The 422 for inputs that passed validation yet break the model (int8 scales of overflowed
    activations); the batcher has run them alone, so the failure is theirs."""
    logging.getLogger("uvicorn.error").warning("zerotune: the model failed on a request", exc_info=True)
    reason = (str(e).strip().splitlines() or [""])[-1][:200]  # TorchScript puts its own trace first
    if not reason.startswith(type(e).__name__):
        reason = f"{type(e).__name__}: {reason}"
    hint = "change or shorten the text" if served.text else (
        "send values in the training range (each feature's mean and std are under input.normalisation "
        "in GET /metadata)")
    return InputError(f"the model cannot compute outputs for these inputs ({reason}); {hint}")


def _predictions(served: ServedModel, out: np.ndarray, truncated: list[int] | None = None) -> dict[str, Any]:
    """The body of a /predict answer for the model's outputs ``out`` (N, classes or 1); a text model's also
    says which inputs were cut to its token limit (``truncated``, empty when none was)."""
    result: dict[str, Any] = {"model": served.name, "version": served.version}
    if truncated is not None:
        result["truncated"] = truncated
    if served.classification:
        classes = out.argmax(axis=1)
        names = served.meta.class_names or [str(i) for i in range(out.shape[1])]
        result.update(classes=classes.tolist(), labels=[names[c] for c in classes],
                      probabilities=out.tolist())
    else:
        result["values"] = out.tolist()
    return result


def _add_routes(app: FastAPI, served: ServedModel, opts: ServeOptions, batcher: MicroBatcher) -> None:
    guard = bearer_guard(opts.token, _refusal)
    PredictRequest = _request_model(served, opts)
    add_health(app, served, Health)
    add_page(app, "predict.html")
    run = run_summary(served.source)

    @app.get("/metadata", dependencies=guard, summary="the model, its input schema, classes and version")
    async def metadata() -> dict[str, Any]:
        return _metadata(served, opts, run)

    @app.post("/predict", dependencies=guard, response_model=PredictResponse,
              responses={401: {"description": "missing or wrong bearer token"},
                         413: {"description": "request body too large"},
                         422: {"description": "inputs of the wrong type, shape or values"}},
              summary="predict for one example or a batch (strings for text models)")
    async def predict(body: PredictRequest):  # type: ignore[valid-type]
        truncated = None
        if served.text:
            x, truncated = served.encode_counted(to_texts(body.inputs, opts.max_examples))
        else:
            x = to_batch(body.inputs, served.meta.input_shape, opts.max_examples)
            served.check_range(x)
        try:
            (out,) = await batcher.submit(x)
        except Exception as e:
            raise _model_failure(served, e) from None
        check_outputs(out, None if served.text else x)
        # Returned as-is: the values are already plain lists, and re-validating them costs latency.
        return JSONResponse(_predictions(served, out, truncated))


def create_app(served: ServedModel, options: ServeOptions | None = None) -> FastAPI:
    """The FastAPI application serving ``served``.

    Args:
        served: the loaded model; a language model (`ServedLM`) gets the OpenAI-compatible API instead.
        options: authentication, limits and batching.
    """
    opts = options or ServeOptions()
    if not isinstance(served, ServedModel):  # a language model: OpenAI's API
        from .openai_app import create_lm_app

        return create_lm_app(served, opts)
    batcher = MicroBatcher(served.predict, opts.max_batch if opts.batching else 1,
                           opts.wait_ms() if opts.batching else 0.0, concat=served.signature.concat)
    app = FastAPI(title=f"zerotune: {served.name}", version=__version__, description=_description(served),
                  lifespan=_lifespan(batcher))
    app.state.batcher = batcher
    app.add_middleware(BodyLimit, max_bytes=opts.max_body_bytes)
    _add_error_handlers(app)
    _add_routes(app, served, opts, batcher)
    return app
