"""The model behind the server: loaded from a run directory or an exported file, on one backend.

Whatever the source, the server sees one object that takes raw (un-normalised) inputs and returns
classes and probabilities (or regression values in target units).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..data.build import normalize_inputs
from ..data.bundle import DataMeta
from ..errors import UserError
from ..export.runtime import Runner, load_torchscript, onnx_runner, torch_runner

BACKENDS = ("auto", "torch", "onnx")
BACKEND_NAMES = {"torch": "pytorch", "onnx": "onnxruntime"}


@dataclass
class ServedModel:
    """A model ready to answer requests.

    Attributes:
        name: the model's registry name (e.g. "cnn").
        meta: the run's data metadata: input shape, normalisation, classes.
        backend: "pytorch" or "onnxruntime".
        source: where it came from: the run, checkpoint, file and format.
        version: a short hash of the weights or model file, so clients can tell models apart.
        runner: the backend call on normalised float32 batches.
    """

    name: str
    meta: DataMeta
    backend: str
    source: dict
    version: str
    runner: Runner
    export: dict | None = None

    @property
    def classification(self) -> bool:
        return self.meta.task == "classification"

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Raw inputs (B, *input_shape) -> (probabilities (B, C),) or (values (B,),).

        The run's normalisation is applied here, exactly as ``normalize_inputs`` does in evaluation.
        """
        x = normalize_inputs(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), self.meta).numpy()
        out = self.runner(x).astype(np.float64)
        if self.classification:
            z = np.exp(out - out.max(axis=1, keepdims=True))  # softmax, shifted so exp cannot overflow
            return (z / z.sum(axis=1, keepdims=True),)
        return (out[:, 0] * self.meta.y_std + self.meta.y_mean,)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def load_served_model(target: str | Path, backend: str = "auto", checkpoint: str = "best",
                      threads: int | None = None) -> ServedModel:
    """Load what ``zerotune serve TARGET`` serves.

    Args:
        target: a run directory, an exported ``.onnx`` file or a TorchScript ``.pt`` file (each
            export with its ``.json`` sidecar).
        backend: "torch", "onnx", or "auto": PyTorch for runs and ``.pt`` files, onnxruntime for ``.onnx``.
            A run served with "onnx" is exported in memory and checked against PyTorch first.
        checkpoint: "best" or "last" (runs only).
        threads: CPU threads for the backend (default: its own choice).

    Raises:
        UserError: when the target is not a run or an export, or does not fit the backend.
    """
    if backend not in BACKENDS:
        raise UserError(f"backend {backend!r} is unknown; allowed: {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise UserError(f"threads must be at least 1, got {threads}")
    target = Path(target)
    if target.is_dir():
        return _from_run(target, "torch" if backend == "auto" else backend, checkpoint, threads)
    if not target.is_file():
        raise UserError(f"{target} does not exist; give a run directory or an exported .onnx / .pt file")
    kind = {".onnx": "onnx", ".pt": "torch"}.get(target.suffix)
    if kind is None:
        raise UserError(f"{target} is neither a run directory nor an exported model (.onnx or .pt)")
    if backend not in ("auto", kind):
        raise UserError(f"{target.name} runs on the {kind} backend only; use --backend {kind} "
                        "or serve the run directory")
    from ..export.sidecar import read_sidecar

    data = target.read_bytes()
    side = read_sidecar(target, data)
    if kind == "onnx":
        runner = onnx_runner(data, threads)
    else:
        if threads:
            torch.set_num_threads(threads)
        runner = torch_runner(load_torchscript(data))
    source = {**side["source"], "file": str(target), "format": side["format"]}
    return ServedModel(side["source"].get("model", "unknown"), side["meta"], BACKEND_NAMES[kind], source,
                       side["sha256"][:12], runner, side.get("export"))


def _from_run(run_dir: Path, backend: str, checkpoint: str, threads: int | None) -> ServedModel:
    from ..export.prepare import prepare_for_export
    from ..runs import load_run
    from ..train.checkpoint import MODEL_FILE, find_checkpoint

    run = load_run(run_dir, checkpoint)
    example = torch.zeros(2, *run.meta.input_shape)
    model = prepare_for_export(run.model, example)
    found = find_checkpoint(run_dir / "checkpoints" / run.checkpoint)
    weights = found / MODEL_FILE if found is not None else None
    version = _file_hash(weights) if weights is not None and weights.exists() else __version__
    source = {"run": str(run_dir.resolve()), "checkpoint": run.checkpoint, "format": "run checkpoint"}
    export = None
    if backend == "torch":
        if threads:
            torch.set_num_threads(threads)
        runner = torch_runner(model)
    else:
        from ..export.onnx_export import DEFAULT_OPSET, to_onnx
        from ..export.parity import verify

        runner = onnx_runner(to_onnx(model, example, DEFAULT_OPSET), threads)
        x = torch.randn(64, *run.meta.input_shape, generator=torch.Generator().manual_seed(0)).numpy()
        parity = verify(torch_runner(model), runner, x, reference_name="pytorch fp32", inputs="random normal",
                        classification=run.meta.task == "classification", tolerance=1e-4)
        if not parity.ok:
            raise UserError(f"the in-memory ONNX export does not match PyTorch: {parity.summary()}")
        export = {"format": "onnx", "opset": DEFAULT_OPSET, "in_memory": True, "parity": parity.to_dict()}
    return ServedModel(run.config.model.name, run.meta, BACKEND_NAMES[backend], source, version, runner, export)
