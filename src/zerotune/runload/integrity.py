"""Whether a run can be resumed: everything a resume reads, checked before its first step.

A run that never wrote a checkpoint (no ``checkpoints/``, or one holding only the temporary
directory of a first write that was killed) starts again from step 0. A run with some checkpoint
files but not all, or with files that differ from their checksums, is damaged, not new: it is
refused, since starting it over would delete its events and overwrite ``best/``. So is a run that
lacks a file it would only read after training (``meta.json``, ``best/``, a tokenizer), so that a
refused resume never trains for hours first, and leaves the directory as it was.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..data.bundle import DataMeta
from ..train import checkpoint as ckpt
from ..run.checksums import Damaged, check_files
from ..run.files import MODEL_FILE, STATE_FILE, RunDir, read_json


def start_over(run_dir: str | Path) -> str:
    """How to start a damaged run over, said explicitly: nothing does it behind the user's back."""
    return f"to start over, delete {run_dir} or train under another --name"


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint a resume continues from, or None for a run that never wrote one.

    Raises:
        Damaged: when ``checkpoints/`` holds something (``best/``, an earlier ``last``) but no ``last``.
    """
    run = RunDir(run_dir)
    found = ckpt.find_checkpoint(run.checkpoint("last"))
    if found is not None or not run.checkpoints.is_dir():
        return found
    temporary = set(run.checkpoints.glob(ckpt.TEMPORARY_GLOB))
    left = sorted(p.name for p in run.checkpoints.iterdir() if p not in temporary)
    if left:
        raise Damaged(f"{run.checkpoint('last') / STATE_FILE} is missing, yet {run.checkpoints} holds "
                      f"{', '.join(left)}: the run is damaged, not new; {start_over(run_dir)}")
    return None


def load_resumable(run_dir: str | Path, config: Config, last: Path) -> ckpt.Checkpoint:
    """Read and check the `last` checkpoint at `last`, and everything else the resume of this run reads.

    Args:
        run_dir: the run directory.
        config: its config, as it will be resumed.
        last: its `last` checkpoint (see `last_checkpoint`).

    Raises:
        UserError: naming the file; for a damaged run, with how to start it over.
    """
    try:
        checkpoint = ckpt.load_checkpoint(last)
        _check_run_files(RunDir(run_dir), config, checkpoint)
    except Damaged as e:
        raise Damaged(f"{e}; {start_over(run_dir)}") from None
    return checkpoint


def _check_run_files(run: RunDir, config: Config, last: ckpt.Checkpoint) -> None:
    """meta.json (shapes, normalisation), env.json and finetune.json when there (read back at the start), the
    tokenizer/ or hf/ its data and model were saved with, and ``best/``, on which the final metrics are measured."""
    if not run.meta.is_file():
        raise Damaged(f"{run.meta} is missing: it holds the data's shapes and normalisation")
    try:
        DataMeta.from_dict(read_json(run.meta))
    except (TypeError, ValueError) as e:  # not an object, keys DataMeta does not have, fields of the wrong kind
        raise Damaged(f"{run.meta} is damaged: {e}") from None
    for optional in (run.env, run.finetune):
        if optional.exists():
            read_json(optional)
    for folder in _saved_folders(run, config):
        if not folder.is_dir():
            raise Damaged(f"{folder} is missing: the run was saved with it")
    best = ckpt.find_checkpoint(run.checkpoint("best"))
    if best is not None:
        _check_best(best, last)


def _saved_folders(run: RunDir, config: Config) -> list[Path]:
    """The folders a new run of this config writes (see `pipeline.train.write_run_files`) and a resume reads."""
    folders = [run.hf] if config.model.name in ("hf", "hf_lm") else []
    if config.data.name == "corpus" or (config.data.name in ("sft", "preference") and config.model.name == "gpt"):
        folders.append(run.tokenizer)
    return folders


def _check_best(best: Path, last: ckpt.Checkpoint) -> None:
    """`best` whole and holding the same tensors as `last` (names, shapes, dtypes: its header, not its data)."""
    check_files(best)
    weights = ckpt.read_weights(best, check=False)  # memory-mapped: nothing but the header is read here
    for name, t in last.weights.items():
        got = weights.get(name)
        if got is None or got.shape != t.shape or got.dtype != t.dtype:
            what = "lacks it" if got is None else f"holds {got.dtype} {tuple(got.shape)}"
            raise Damaged(f"{best / MODEL_FILE} does not fit the run's model: {name} is {t.dtype} "
                          f"{tuple(t.shape)} in {last.path.name}/, {best.name}/ {what}")
