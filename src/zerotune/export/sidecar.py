"""The JSON file written next to every exported model: what a server needs to use it on raw inputs.

``model.onnx`` gets ``model.onnx.json`` holding the data metadata (input shape, normalisation,
class names), where the model came from, how it was exported, the parity check and the model
file's SHA-256, so a server can refuse a file that does not match its sidecar.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .. import __version__
from ..data.bundle import DataMeta
from ..errors import UserError
from ..rundir import read_json, write_json

SIDECAR_VERSION = 1
FORMATS = {".onnx": "onnx", ".pt": "torchscript"}


def sidecar_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_sidecar(*, fmt: str, data: bytes, file_name: str, source: dict, meta: DataMeta, export: dict,
                  parity: dict | None) -> dict:
    """The sidecar's content.

    Args:
        fmt: "onnx" or "torchscript".
        data: the model file's bytes (for its size and hash).
        file_name: the model file's name, relative to the sidecar.
        source: {"run", "checkpoint", "model"}: where the weights came from.
        meta: the run's data metadata.
        export: how it was exported: opset, int8 mode, pruning, sparsity.
        parity: the parity check's result.
    """
    return {
        "sidecar_version": SIDECAR_VERSION,
        "zerotune": __version__,
        "format": fmt,
        "file": file_name,
        "bytes": len(data),
        "sha256": sha256(data),
        "source": source,
        "input": {"name": "input", "dtype": "float32", "shape": ["batch", *meta.input_shape],
                  "normalised": "the model takes normalised inputs; apply meta.x_mean / meta.x_std first"},
        "output": {"name": "logits", "kind": "logits" if meta.task == "classification" else "standardised values"},
        "export": export,
        "parity": parity,
        "meta": meta.to_dict(),
    }


def write_sidecar(path: str | Path, content: dict) -> None:
    write_json(path, content)


def read_sidecar(model_path: str | Path, data: bytes | None = None) -> dict:
    """Read and check the sidecar of an exported model.

    Args:
        model_path: the exported model file.
        data: the model file's bytes; when given, their SHA-256 must match the sidecar's.

    Raises:
        UserError: when the sidecar is missing, corrupt, or describes another file.
    """
    path = sidecar_path(model_path)
    if not path.exists():
        raise UserError(f"{model_path} has no sidecar {path.name}; export it with `zerotune export`")
    content = read_json(path)
    if not isinstance(content, dict) or not {"format", "sha256", "meta", "source"} <= set(content):
        raise UserError(f"{path} is not a zerotune export sidecar")
    try:
        content["meta"] = DataMeta.from_dict(content["meta"])
    except TypeError as e:
        raise UserError(f"{path} has invalid metadata: {e}") from None
    if data is not None and sha256(data) != content["sha256"]:
        raise UserError(f"{model_path} does not match its sidecar {path.name} (SHA-256 differs): "
                        "the file was changed or corrupted; export it again")
    return content
