"""Text generation from a language-model run directory (what `zerotune generate` calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import UserError


def load_lm(run_dir: str | Path, checkpoint: str = "best", device: str = "cpu"):
    """A language-model run's model (eval mode) and tokenizer.

    Raises:
        UserError: the run is not a language-model run, or its tokenizer is missing.
    """
    from ..data.lm_tokenizer import load_tokenizer_dir
    from ..run.files import RunDir
    from ..runload.load import load_run

    run = load_run(run_dir, checkpoint, device)
    if run.meta.task == "sft":  # an instruction-tuned model answers through its chat format
        from ..runload.load import chat_format_for

        return run, chat_format_for(run.config, run_dir)[0]
    if run.meta.task != "lm":
        raise UserError(f"{run_dir} is a {run.meta.task} run; generate needs a language-model run "
                        f"(data.name = 'corpus', model.name = 'gpt')")
    return run, load_tokenizer_dir(RunDir(run_dir).tokenizer)


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
    from ..lm.sampling import generate_text, stream_text

    run, tokenizer = load_lm(run_dir, checkpoint, device)
    if not prompt:
        raise UserError("the prompt is empty; give at least one character")
    if run.meta.task == "sft":
        from ..data.chat import user_turn
        from ..lm.detokenize import TextStream
        from ..lm.sampling import sample_tokens

        ids = tokenizer.prompt_ids(user_turn(prompt, system))
        tokens = sample_tokens(run.model, ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                               seed=seed, use_cache=use_cache, stop_id=tokenizer.stop_id)
        # the answer alone, decoded as `ChatFormat.decode` does: up to its end token or end text
        stops = [*stop, *([tokenizer.end_text] if tokenizer.end_text else [])]
        return stream_text(tokens, TextStream(tokenizer.text, (), stops))
    if system is not None:
        raise UserError("--system applies to instruction-tuned runs (data.name = 'sft')")
    tokenizer.encode(prompt, what="prompt")  # characters outside a char vocabulary: one clear error, up front
    return generate_text(run.model, tokenizer, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                         top_k=top_k, top_p=top_p, seed=seed, stop=list(stop), use_cache=use_cache)

