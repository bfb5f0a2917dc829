"""The served model's tokenizer over HTTP: GET /tokenizer_info, POST /tokenize and /detokenize, in the
shapes of vLLM's server.

EleutherAI's lm-eval finds these by itself (its ``tokenizer_backend=auto`` asks /tokenizer_info), so it
counts and sends token ids exactly as the server reads them, with no tokenizer files of its own and no
hub access: a zerotune GPT's character or BPE vocabulary has no Hugging Face tokenizer to download.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from .openai_schema import OpenAIError
from .served_lm import ServedLM


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    model: str = Field("", description="the served model's name (optional)")
    prompt: str = Field(..., description="the text to tokenise, as a completion's prompt is")
    add_special_tokens: bool = Field(True, description="accepted for compatibility: text is always tokenised "
                                                       "as a completion's prompt is")


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    model: str = Field("", description="the served model's name (optional)")
    tokens: list[int] = Field(..., description="token ids to turn back into text")


def _tokenize(served: ServedLM, text: str) -> list[int]:
    try:
        return list(served.model.encode(text)) if text else []
    except Exception as e:  # a character outside a char vocabulary (UserError) or the tokenizer's own error
        raise OpenAIError(400, f"the tokenizer cannot read the prompt: {str(e)[:200]}", param="prompt") from None


def _detokenize(served: ServedLM, ids: list[int]) -> str:
    vocab = served.model.vocab_size
    if not all(0 <= t < vocab for t in ids):
        raise OpenAIError(400, f"token ids go from 0 to {vocab - 1}", param="tokens")
    try:
        return served.model.decode(ids)
    except Exception:  # an id of the model's padded vocabulary that the tokenizer has no text for
        raise OpenAIError(400, "the tokenizer cannot decode these token ids", param="tokens") from None


def add_token_routes(app: FastAPI, served: ServedLM, guard: list, responses: dict, check_model) -> None:
    """The three routes, behind the same token as the rest of the API."""
    tokenizer = getattr(served.model, "tokenizer", None)

    @app.get("/tokenizer_info", dependencies=guard, responses=responses, summary="the tokenizer's special tokens")
    async def tokenizer_info():
        return {"eos_token": getattr(tokenizer, "eos_token", None), "bos_token": getattr(tokenizer, "bos_token", None),
                "pad_token": getattr(tokenizer, "pad_token", None), "model_max_length": served.model.context_length,
                "vocab_size": served.model.vocab_size}

    @app.post("/tokenize", dependencies=guard, responses=responses, summary="text to token ids")
    async def tokenize(body: TokenizeRequest):
        check_model(served, body.model)
        ids = _tokenize(served, body.prompt)
        return {"tokens": ids, "count": len(ids), "max_model_len": served.model.context_length}

    @app.post("/detokenize", dependencies=guard, responses=responses, summary="token ids to text")
    async def detokenize(body: DetokenizeRequest):
        check_model(served, body.model)
        return {"prompt": _detokenize(served, body.tokens)}
