"""Text generation from a language-model run directory (what `zerotune generate` calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import UserError


def generate(run_dir: str | Path, prompt: str, *, max_new_tokens: int = 200, temperature: float = 0.8,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             stop: list[str] | tuple[str, ...] = (), checkpoint: str = "best", use_cache: bool = True,
             device: str = "cpu", system: str | None = None) -> Iterator[str]:
    """Stream the continuation of `prompt` by a run's model, piece by piece.

    Args:
        run_dir: a language-model run directory.
        prompt: the text to continue (its characters must be in a character-level vocabulary).
        max_new_tokens: tokens to generate at most.
        temperature: 0 for greedy decoding; higher is more random.
        top_k: sample among the k most likely tokens only.
        top_p: sample among the most likely tokens whose probabilities sum to p.
        seed: seed of the sampling generator (None: a different sample each time).
        stop: strings that end the generation; the output stops right before the first one.
        checkpoint: "best" or "last".
        use_cache: keep keys and values of past tokens (the output is the same either way).
        device: where to run the model.
        system: an instruction-tuned run only: a system message before the prompt.

    An instruction-tuned run (data.name = 'sft') formats `prompt` as a user turn with its chat
    template and streams the answer, which ends at its end-of-answer token.

    Returns:
        An iterator over text pieces; joined, they are the whole continuation.
    """
    from ..modes.registry import base_mode
    from ..runload.load import load_run

    run = load_run(run_dir, checkpoint, device)
    stream = base_mode(run.config).text_generator(run, run_dir)  # refuses a run that writes no text
    if not prompt:
        raise UserError("the prompt is empty; give at least one character")
    sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                "seed": seed, "stop": tuple(stop), "use_cache": use_cache}
    return stream(prompt, system, sampling)
