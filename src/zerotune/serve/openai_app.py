"""The OpenAI-compatible API of a language model: /v1/completions, /v1/chat/completions, /v1/models.

Any `TextModel` is served: a zerotune GPT trained from zero or a Hugging Face causal LM. Requests
are validated (`openai_schema`), tokenised, checked against the context, and handed to the
batching `Scheduler`; their tokens come back as text through `TextStream` (stop strings cut,
incomplete characters held back). ``stream: true`` answers server-sent events in OpenAI's chunk
shapes and ends with ``data: [DONE]``. Every error a client can cause is a 4xx in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import UserError
from ..lm.detokenize import TextStream
from .access import add_health, bearer_guard
from .body_limit import BodyLimit
from .lm_scheduler import Job, Scheduler
from .served_lm import ServedLM
from .openai_schema import ChatRequest, CompletionRequest, OpenAIError, validation_error
from .openai_scoring import scored_choice
from .openai_tokens import add_token_routes
from .pages import add_page
from .run_summary import run_summary


class Generation:
    """One request's text, piece by piece, with its finish reason and token counts."""

    def __init__(self, scheduler: Scheduler, model, prompt: list[int], max_tokens: int, req, stop: tuple = ()):
        self.prompt_tokens, self.completion_tokens = len(prompt), 0
        self.ids: list[int] = []  # the tokens generated, for logprobs
        self.job = scheduler.submit(Job(prompt, max_tokens, req.temperature, req.top_p, req.seed))
        self.text = TextStream(model.decode, prompt, [*(req.stop or []), *stop])
        self.finish_reason = "length"

    async def pieces(self):
        try:
            while (tok := await self.job.queue.get()) is not None:
                if isinstance(tok, Exception):
                    raise tok
                self.completion_tokens += 1
                self.ids.append(tok)
                if piece := self.text.push(tok):
                    yield piece
                if self.text.stopped:
                    break
            if tail := self.text.finish():
                yield tail
            self.finish_reason = "stop" if self.text.stopped or self.job.eos else "length"
        finally:
            self.job.cancelled = True  # done, stopped, or the client left: the row stops at the next step

    async def whole(self) -> str:
        return "".join([p async for p in self.pieces()])

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def _encode(served: ServedLM, encode, what) -> list[int]:
    try:
        ids = list(encode(what))
    except UserError as e:
        raise OpenAIError(400, str(e), param="prompt") from None
    except Exception as e:  # tokenizers raise assorted types on odd input; none is the server's fault
        raise OpenAIError(400, f"the tokenizer cannot read the input: {type(e).__name__}: {str(e)[:200]}") from None
    if not ids:
        raise OpenAIError(400, "the prompt gives no tokens; send some text", param="prompt")
    return ids


def _prompt_ids(served: ServedLM, prompt: str | list[int]) -> list[int]:
    """A completion's prompt as token ids: text tokenised, or ids checked against the vocabulary."""
    if isinstance(prompt, str):
        return _encode(served, served.model.encode, prompt)
    vocab = served.model.vocab_size
    if not prompt or not all(0 <= t < vocab for t in prompt):
        raise OpenAIError(400, f"a prompt of token ids needs at least one id, each from 0 to {vocab - 1}",
                          param="prompt")
    try:
        served.model.decode(prompt)
    except Exception:  # an id of the model's padded vocabulary that the tokenizer has no text for
        raise OpenAIError(400, "the prompt holds token ids the tokenizer cannot decode", param="prompt") from None
    return prompt


def _budget(served: ServedLM, prompt: list[int], asked: int | None, default: int | None, param: str) -> int:
    """max_tokens for this request, checked against the context (0: the prompt is only scored)."""
    context = served.model.context_length
    room = context - len(prompt)
    if room < 1 and not (asked == 0 and room == 0):
        raise OpenAIError(400, f"the prompt is {len(prompt)} tokens and the model's context is {context}: "
                               f"shorten it to at most {context - 1} tokens", param=param, code="context_length_exceeded")
    if asked is not None and asked > room:
        raise OpenAIError(400, f"{len(prompt)} prompt tokens + max_tokens {asked} exceed the model's context of "
                               f"{context} tokens: ask for at most {room}", param="max_tokens",
                          code="context_length_exceeded")
    return asked if asked is not None else min(default or room, room)


def _check_model(served: ServedLM, model: str) -> None:
    if model not in ("", served.name):
        raise OpenAIError(404, f"the model {model!r} does not exist; this server serves {served.name!r}",
                          param="model", code="model_not_found")


def _sse(chunks):
    async def events():
        async for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _completion_body(served, gen: Generation, ident: str, created: int, text: str | None, final: bool) -> dict:
    choice = {"text": text or "", "index": 0, "logprobs": None, "finish_reason": gen.finish_reason if final else None}
    return {"id": ident, "object": "text_completion", "created": created, "model": served.name, "choices": [choice]}


def _chat_chunk(served, ident: str, created: int, delta: dict, finish: str | None) -> dict:
    return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": served.name,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def _include_usage(req) -> bool:
    return bool((req.stream_options or {}).get("include_usage"))


async def _scored_completion(served: ServedLM, scheduler: Scheduler, req: CompletionRequest, prompt: list[int],
                             budget: int, ident: str, created: int) -> dict:
    """A completion with echo or logprobs (whole, never streamed); max_tokens 0 only scores the prompt."""
    if budget == 0:
        text, ids, finish, usage = "", [], "length", {"prompt_tokens": len(prompt), "completion_tokens": 0,
                                                      "total_tokens": len(prompt)}
    else:
        gen = Generation(scheduler, served.model, prompt, budget, req)
        text = await gen.whole()
        ids, finish, usage = gen.ids, gen.finish_reason, gen.usage()
    choice = {**await scored_choice(served.model, prompt, ids, text, req), "finish_reason": finish}
    return {"id": ident, "object": "text_completion", "created": created, "model": served.name,
            "choices": [choice], "usage": usage}


async def _completion(served: ServedLM, scheduler: Scheduler, req: CompletionRequest):
    _check_model(served, req.model)
    prompt = _prompt_ids(served, req.prompt)
    budget = _budget(served, prompt, req.max_tokens, 16, "prompt")
    ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    if req.echo or req.logprobs is not None:
        return await _scored_completion(served, scheduler, req, prompt, budget, ident, created)
    gen = Generation(scheduler, served.model, prompt, budget, req)
    if not req.stream:
        text = await gen.whole()
        return {**_completion_body(served, gen, ident, created, text, True), "usage": gen.usage()}

    async def chunks():
        async for piece in gen.pieces():
            yield _completion_body(served, gen, ident, created, piece, False)
        yield _completion_body(served, gen, ident, created, "", True)
        if _include_usage(req):
            yield {**_completion_body(served, gen, ident, created, "", True), "choices": [], "usage": gen.usage()}

    return _sse(chunks())


async def _chat(served: ServedLM, scheduler: Scheduler, req: ChatRequest):
    _check_model(served, req.model)
    messages = [{"role": m.role, "content": m.content} for m in req.messages]
    prompt = _encode(served, served.model.encode_chat, messages)
    asked = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    # without an end-of-text token, the chat format ends an answer with a newline (data/chat.py)
    stop = (served.model.chat_stop,) if getattr(served.model, "chat_stop", None) else ()
    gen = Generation(scheduler, served.model, prompt, _budget(served, prompt, asked, None, "messages"), req, stop)
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not req.stream:
        text = await gen.whole()
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                  "finish_reason": gen.finish_reason}
        return {"id": ident, "object": "chat.completion", "created": created, "model": served.name,
                "choices": [choice], "usage": gen.usage()}

    async def chunks():
        yield _chat_chunk(served, ident, created, {"role": "assistant", "content": ""}, None)
        async for piece in gen.pieces():
            yield _chat_chunk(served, ident, created, {"content": piece}, None)
        yield _chat_chunk(served, ident, created, {}, gen.finish_reason)
        if _include_usage(req):
            yield {**_chat_chunk(served, ident, created, {}, None), "choices": [], "usage": gen.usage()}

    return _sse(chunks())


def _refusal() -> OpenAIError:
    return OpenAIError(401, "missing or wrong bearer token: send 'Authorization: Bearer TOKEN'", code="invalid_api_key")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenAIError)
    async def openai_error(request: Request, exc: OpenAIError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return JSONResponse(validation_error(list(exc.errors())).body(), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse(OpenAIError(exc.status_code, str(exc.detail)).body(), exc.status_code)


def _model_card(served: ServedLM) -> dict:
    return {"id": served.name, "object": "model", "created": 0, "owned_by": "zerotune"}


def _add_routes(app: FastAPI, served: ServedLM, scheduler: Scheduler, guard: list, options) -> None:
    errors = {400: {"description": "invalid request (OpenAI error shape)"},
              401: {"description": "missing or wrong bearer token"}, 404: {"description": "unknown model"}}

    add_health(app, served)
    add_page(app, "chat.html")
    add_token_routes(app, served, guard, errors, _check_model)
    run = run_summary(served.source)

    @app.get("/metadata", dependencies=guard, summary="the model, its context length and batching counters")
    async def metadata() -> dict[str, Any]:
        m = served.model
        return {"model": {"name": served.name, "backend": served.backend, "source": served.source,
                          "kind": type(m).__name__}, "task": "lm", "run": run, "context_length": m.context_length,
                "vocab_size": m.vocab_size, "version": {"zerotune": __version__, "model": served.version},
                "batching": {"enabled": options.batching, "max_batch": scheduler.max_batch,
                             "max_wait_ms": scheduler.max_wait * 1000, **scheduler.stats()}}

    @app.get("/v1/models", dependencies=guard, summary="the served model (OpenAI: list models)")
    async def models():
        return {"object": "list", "data": [_model_card(served)]}

    @app.get("/v1/models/{model}", dependencies=guard, responses=errors, summary="one model (OpenAI: retrieve)")
    async def model(model: str):
        _check_model(served, model)
        return _model_card(served)

    @app.post("/v1/completions", dependencies=guard, responses=errors, summary="continue a prompt (OpenAI)")
    async def completions(body: CompletionRequest):
        return await _completion(served, scheduler, body)

    @app.post("/v1/chat/completions", dependencies=guard, responses=errors, summary="answer a chat (OpenAI)")
    async def chat(body: ChatRequest):
        return await _chat(served, scheduler, body)


def create_lm_app(served: ServedLM, options) -> FastAPI:
    """The FastAPI application serving a language model over OpenAI's API.

    Args:
        served: the model.
        options: a `ServeOptions` (token, body limit, batching: max_batch and max_wait_ms).
    """
    scheduler = Scheduler(served.model, options.max_batch if options.batching else 1,
                          options.wait_ms(language_model=True) if options.batching else 0.0)

    @asynccontextmanager
    async def lifespan(app):
        scheduler.start()
        yield
        await asyncio.to_thread(scheduler.stop)  # every request already accepted is answered first

    app = FastAPI(title=f"zerotune: {served.name}", version=__version__, lifespan=lifespan,
                  description=f"The `{served.name}` language model behind OpenAI's API: POST /v1/completions and "
                              "/v1/chat/completions (stream: true for server-sent events), GET /v1/models; "
                              "its tokenizer at /tokenize and /detokenize; a chat page at /.")
    app.state.scheduler = scheduler
    app.add_middleware(BodyLimit, max_bytes=options.max_body_bytes)
    _add_error_handlers(app)
    _add_routes(app, served, scheduler, bearer_guard(options.token, _refusal), options)
    return app
