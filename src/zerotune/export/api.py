"""`export_run`: export a run's model to a verified file plus its JSON sidecar."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.bundle import CHAT_TASKS
from ..errors import UserError
from ..run.atomic import atomic_write_bytes
from ..run.files import RunDir, outermost_missing, removed_on_failure
from ..run.lock import run_lock_if_inside
from ..runload.load import load_run
from .build import EXPORT_FORMATS, Bounds, ExportContext, ExportOptions, build_export
from .inputs import load_data, parity_inputs
from .parity import Parity
from .sidecar import build_sidecar, sidecar_path, tokenizer_path, write_sidecar, write_tokenizer


@dataclass
class ExportResult:
    path: Path
    sidecar: Path
    bytes: int
    parity: list[Parity]
    info: dict
    label: str


def export_run(run_dir: str | Path, options: ExportOptions | None = None, *, out: str | Path | None = None,
               force: bool = False, checkpoint: str = "best", bounds: Bounds | None = None) -> ExportResult:
    """Export a run's model, check it against PyTorch on real inputs, and write it with its sidecar.

    Args:
        run_dir: the run directory.
        options: format, opset, int8 and pruning choices (default: ONNX, opset 18, float32).
        out: the model file to write, or a directory for the default file name
            (default: ``<run>/export/<default name>``).
        force: overwrite existing files.
        checkpoint: "best" or "last".
        bounds: parity bounds (default: max |diff| 1e-4; int8: 97% same class).

    A text run's tokenizer is written beside the model (``<file>.tokenizer/``), so the exported
    directory serves on its own.

    Returns:
        Where the files went, their size and the parity checks.

    Raises:
        UserError: bad options, not a run directory, files that exist without ``force``, a failed
            export, or a parity check that misses its bound (then nothing is written); another job
            writing in the run when the export goes into it.
    """
    options = (options or ExportOptions()).validate()
    path = _output_path(Path(run_dir), options, out)
    with run_lock_if_inside(path, run_dir):  # into the run (the default): not while another job writes there
        return _export(load_run(run_dir, checkpoint), path, options, bounds or Bounds(), force)


def _export(run, path: Path, options: ExportOptions, bounds: Bounds, force: bool) -> ExportResult:
    """Build, check and write the export of a loaded run to `path` (see `export_run`)."""
    side, tok = sidecar_path(path), tokenizer_path(path)
    if not force:
        for p in (path, side, tok):
            if p.exists():
                raise UserError(f"{p} already exists; pass --force to overwrite it")

    data = load_data(run)
    hf = getattr(run.model, "hf_model", None)
    if hf is not None and run.meta.task in CHAT_TASKS:  # a transformers causal LM: logits, LoRA merged first
        from .causal_lm import build_causal_lm

        built, signature = build_causal_lm(hf, parity_inputs(run, data)[0], options, bounds.tolerance)
    else:
        ctx = ExportContext.create(run, data)
        built, signature = build_export(ctx, options, bounds), ctx.signature
    tokenizer = _run_tokenizer(run) if signature.kind == "text" else None

    source = {"run": str(run.path.resolve()), "run_name": run.path.name, "checkpoint": run.checkpoint,
              "model": run.config.model.name}
    if not force and any(p.exists() for p in (path, side, tok)):  # appeared while we were exporting
        raise UserError(f"{path} or its sidecar appeared during export; pass --force to overwrite")
    # A failed write (a full disk) removes the folders and files this export made.
    with removed_on_failure(outermost_missing(path.parent), tok, path, side):
        path.parent.mkdir(parents=True, exist_ok=True)
        tok_info = None
        if tokenizer is not None:  # first: a sidecar, written last, only ever names complete files
            files = write_tokenizer(tokenizer, tok)
            tok_info = {"path": tok.name, "files": files, "class": type(tokenizer).__name__,
                        "max_length": signature.max_length, "truncation": True}
        content = build_sidecar(fmt=options.format, data=built.data, file_name=path.name, source=source,
                                meta=run.meta, export=built.info, parity=[p.to_dict() for p in built.parity],
                                signature=signature, tokenizer=tok_info)
        atomic_write_bytes(path, built.data)
        write_sidecar(side, content)
    return ExportResult(path, side, len(built.data), built.parity, built.info, options.label)


def _run_tokenizer(run):
    """The tokenizer a text run was trained with (its own ``hf/`` copy)."""
    from ..data.text import load_tokenizer
    from ..runload.load import model_dir

    directory = model_dir(run.config, run.path)
    if directory is None:
        raise UserError(f"{run.path} reads text but names no transformers model whose tokenizer to ship")
    return load_tokenizer(directory)


def _output_path(run_dir: Path, options: ExportOptions, out: str | Path | None) -> Path:
    if out is None:
        return RunDir(run_dir).export / options.file_name()
    as_dir = str(out).endswith(("/", "\\"))  # before Path() drops the trailing slash
    out = Path(out)
    if as_dir or out.is_dir():
        return out / options.file_name()
    suffix = EXPORT_FORMATS[options.format]
    if out.suffix != suffix:
        name = {"onnx": "ONNX", "torchscript": "TorchScript", "tflite": "TFLite"}[options.format]
        raise UserError(f"--out {out}: {name} files must end in {suffix}")
    return out
