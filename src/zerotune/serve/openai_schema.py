"""Request bodies and errors of the OpenAI-compatible API (/v1/completions, /v1/chat/completions).

Fields follow OpenAI's, with its types strictly (``model`` is required, ``"5"`` is not an integer,
``true`` is not a number). Options this server does not implement (penalties, ``best_of``, ...) are
ignored, as fields OpenAI's own API does not know; ``n`` other than 1 is refused. Completions take
``echo`` and ``logprobs`` (OpenAI's legacy format, what EleutherAI's lm-eval scores with), and a
prompt of token ids as well as text. Errors have
OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so its clients raise their
usual exceptions (``openai.BadRequestError``, ``NotFoundError``, ``AuthenticationError``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..data.chat import ROLES

MAX_STOPS = 4  # as OpenAI
MAX_LOGPROBS = 5  # alternatives per token, as OpenAI's legacy completions


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

    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        ..., description="the text to continue, or its token ids (a list of prompts must hold exactly one)")
    echo: bool = Field(False, description="the prompt comes back before the completion (with its logprobs)")
    max_tokens: int | None = Field(None, ge=0, description="most tokens to generate (default 16, or the rest "
                                                           "of the context if less); 0 only with echo")
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS, description="log-probabilities of each token and "
                                 f"of the 0 to {MAX_LOGPROBS} most likely tokens at each position")

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v):
        if isinstance(v, list) and (not v or not isinstance(v[0], int)):
            if len(v) != 1:
                raise ValueError(f"send one prompt per request (got a list of {len(v)}); "
                                 "concurrent requests are batched")
            return v[0]
        return v

    @field_validator("max_tokens")
    @classmethod
    def _zero_with_echo(cls, v, info: ValidationInfo):
        if v == 0 and not info.data.get("echo"):  # echo is declared first, so it is read by now
            raise ValueError("max_tokens 0 needs echo: true (the prompt scored, nothing generated); "
                             "otherwise ask for at least 1 token")
        return v

    @model_validator(mode="after")
    def _whole(self):
        if self.stream and (self.echo or self.logprobs is not None):
            raise ValueError("echo and logprobs are answered whole: send them with stream: false")
        return self


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
