"""A language model's answers, one by one: scoring a file of prompts, and writing every answer as JSONL.

`zerotune eval RUN --prompts FILE` asks a run's model (a corpus run's GPT before any tuning, or a
tuned one) each record of a JSONL file of instruction or chat records, in the run's chat format, and
scores the answers by exact match as an instruction-tuning run's evaluation does. ``--answers``
writes each prompt, its reference, the answer and whether they match, one JSON object a line.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from ..errors import UserError
from ..run.atomic import atomic_write_text
from ..run.files import RunDir, outermost_missing, removed_on_failure
from ..modes.registry import base_mode
from ..run.lock import run_lock_if_inside


def check_request(config, prompts: str | Path | None, answers: str | None) -> None:
    """Refuse ``--prompts`` on a run whose model writes no text, and ``--answers`` where there are none to write.

    Raises:
        UserError: naming the option and the runs it applies to.
    """
    mode = base_mode(config)
    if prompts is not None and not mode.answers_prompts:
        raise UserError(f"--prompts applies to language-model runs, whose model writes text; this run's data.name "
                        f"is {config.data.name!r}")
    if answers is not None and prompts is None and not mode.answers_split:
        raise UserError(f"--answers applies to instruction-tuned runs, whose evaluation answers held-out prompts, "
                        f"or with --prompts FILE to any language-model run; this run's data.name is {config.data.name!r}")


def answers_file(run_dir: str | Path, answers: str, split: str, prompts: str | Path | None, force: bool) -> Path:
    """Where ``--answers`` writes: the FILE given, else ``RUN/eval/answers-<split or prompts stem>.jsonl``.

    Raises:
        UserError: the file exists and `force` is not set, or it is a directory.
    """
    out = Path(answers) if answers else RunDir(run_dir).answers(Path(prompts).stem if prompts else split)
    if out.is_dir():
        raise UserError(f"--answers {out} is a directory; give a file name")
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite it, or give another file with --answers FILE")
    return out


def score_prompts(run, path: str | Path, rows: list | None) -> dict:
    """Loss, perplexity and exact match of a loaded run's model on every record of a JSONL file.

    Args:
        run: a `LoadedRun` of a language model.
        path: the JSONL file (prompt/response or chat records, as instruction data).
        rows: when a list, each record's answer row is appended to it (`SFTTask.answer_rows`).
    """
    from ..config import SFTConfig
    from ..data.sft import prompts_split
    from ..runload.load import chat_format_for
    from ..tasks.sft import SFTTask

    fmt, _, _, context = chat_format_for(run.config, run.path)
    width = min(run.config.data.max_length, context) if context else run.config.data.max_length
    split = prompts_split(path, fmt, width)
    task = SFTTask(run.meta, fmt, run.config.sft or SFTConfig())
    return task.full_metrics(run.model, split, rows)


def held_for(out: Path | None, run_dir: str | Path) -> contextlib.AbstractContextManager:
    """The run directory held for the whole evaluation when the answers go into it (nothing else writes there)."""
    return run_lock_if_inside(out, run_dir) if out is not None else contextlib.nullcontext()


def write_answers(out: Path, rows: list[dict]) -> None:
    """`rows` as JSONL at `out`, all or nothing (a folder made for it goes again if the write fails)."""
    with removed_on_failure(outermost_missing(out.parent)):
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
