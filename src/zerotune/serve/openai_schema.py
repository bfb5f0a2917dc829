"""Request bodies and errors of the OpenAI-compatible API (/v1/completions, /v1/chat/completions).

Fields follow OpenAI's, with its types strictly (``model`` is required, ``"5"`` is not an integer,
``true`` is not a number). Options this server does not implement (``logprobs``, penalties, ...) are
ignored, as fields OpenAI's own API does not know; ``n`` other than 1 is refused. Errors have
OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so its clients raise their
usual exceptions (``openai.BadRequestError``, ``NotFoundError``, ``AuthenticationError``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..data.chat import ROLES

MAX_STOPS = 4  # as OpenAI


class OpenAIError(Exception):
    """An error answered in OpenAI's shape with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


class _Options(BaseModel):
    """What completions and chat completions share."""

    # strict, as OpenAI's schema: "5" is not an integer and true is not a number
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, strict=True)

    model: str = Field(..., description="the served model's name (GET /v1/models)")
    temperature: float = Field(1.0, ge=0, le=2, description="0: greedy; higher is more random")
    top_p: float = Field(1.0, gt=0, le=1, description="sample among the most likely tokens whose probabilities "
                                                      "sum to top_p")
    stop: str | list[str] | None = Field(None, description=f"up to {MAX_STOPS} strings that end the text "
                                                           "(not included in it)")
    n: int = Field(1, description="choices per request: only 1")
    stream: bool = Field(False, description="send server-sent events, one per piece of text")
    stream_options: dict[str, Any] | None = Field(None, description='{"include_usage": true}: a last chunk '
                                                                    "with the token counts")
    seed: int | None = Field(None, description="seed of the sampler (temperature > 0)")

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop strings, got {len(stops)}")
        if any(not s for s in stops):
            raise ValueError("stop strings must not be empty")
        return stops

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v):
        if v != 1:
            raise ValueError(f"n must be 1 (got {v}): this server returns one choice per request; "
                             "send several requests for more (they are batched)")
        return v

    @field_validator("seed")
    @classmethod
    def _seed_range(cls, v):
        if v is not None and not 0 <= v < 2**63:
            raise ValueError("seed must be between 0 and 2**63 - 1")
        return v


class CompletionRequest(_Options):
    """POST /v1/completions."""

    prompt: str | list[str] = Field(..., description="the text to continue (a list must hold exactly one)")
    max_tokens: int | None = Field(None, ge=1, description="most tokens to generate (default 16, or the rest "
                                                           "of the context if less)")
    echo: bool = Field(False, description="not supported: must be false")

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v):
        if isinstance(v, list):
            if len(v) != 1:
                raise ValueError(f"send one prompt per request (got a list of {len(v)}); "
                                 "concurrent requests are batched")
            return v[0]
        return v

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, v):
        if v:
            raise ValueError("echo is not supported")
        return v


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: Literal[ROLES] = Field(..., description=f"one of {', '.join(ROLES)}")  # type: ignore[valid-type]
    content: str | list[TextPart]

    @field_validator("content")
    @classmethod
    def _text(cls, v):
        return v if isinstance(v, str) else "".join(p.text for p in v)


class ChatRequest(_Options):
    """POST /v1/chat/completions."""

    messages: list[Message] = Field(..., min_length=1, description="the conversation so far")
    max_tokens: int | None = Field(None, ge=1, description="most tokens to generate (default: the rest of "
                                                           "the context)")
    max_completion_tokens: int | None = Field(None, ge=1, description="the newer name of max_tokens")


def validation_error(errors: list[dict]) -> OpenAIError:
    """The 400 for a body that fails validation: the first error, where it is and what is allowed."""
    if not errors:
        return OpenAIError(400, "invalid request body")
    e = errors[0]
    loc = [str(p) for p in e.get("loc", ()) if p != "body"]
    if e.get("type") == "json_invalid" or (not loc and e.get("type") in ("model_attributes_type", "dict_type")):
        return OpenAIError(400, "the body is not valid JSON: send a JSON object (Content-Type: application/json)")
    msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
    where = ".".join(loc)
    return OpenAIError(400, f"{where}: {msg}" if where else msg, param=where or None)
