"""Greedy answers of a GGUF file as llama.cpp itself runs it, through llama-cpp-python (the optional ``llamacpp``
extra, built from source): the runtime the file is written for, beside transformers' GGUF reader, which the
export checks with. Used by `export --compare` where the package is installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import time
from pathlib import Path

from .lm_answers import Answers


def llamacpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def open_gguf(path: Path, threads: int, context: int):
    """llama.cpp's model of the file, quiet, on `threads` threads with room for `context` tokens."""
    import llama_cpp

    # verbose=False still lets llama.cpp's warnings through (llama-cpp-python 0.3.36 reads their level as an
    # error), such as a context rounded up past a small model's own; its log callback prints to sys.stderr
    with contextlib.redirect_stderr(io.StringIO()):
        return llama_cpp.Llama(model_path=str(path), n_ctx=context, n_threads=threads, n_threads_batch=threads,
                               verbose=False)


def llamacpp_answers(path: Path, prompts: list[list[int]], stop_ids: list[int], max_new_tokens: int,
                     threads: int) -> Answers:
    """Each prompt's greedy answer by llama.cpp (temperature 0 is its greedy sampler), cut after its first stop id,
    and the answer tokens per second, the prompt's evaluation included (as `greedy_answers` counts them)."""
    model = open_gguf(path, threads, max(map(len, prompts)) + max_new_tokens)
    answers, written, seconds = [], 0, 0.0
    try:
        for ids in prompts:
            t0 = time.perf_counter()
            answer = []
            for token in model.generate(ids, temp=0.0, repeat_penalty=1.0):
                answer.append(token)
                if token in stop_ids or len(answer) == max_new_tokens:
                    break
            seconds += time.perf_counter() - t0
            answers.append(answer)
            written += len(answer)
    finally:
        model.close()
    return Answers(answers, written / seconds if seconds else 0.0)
