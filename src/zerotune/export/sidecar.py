"""The JSON file written next to every exported model: what a server needs to use it on raw inputs.

``model.onnx`` gets ``model.onnx.json`` holding the data metadata (input shape, normalisation,
class names), the graph's inputs (`signature.Signature.to_dict`), where the model came from, how
it was exported, the parity check and the model file's SHA-256, so a server can refuse a file
that does not match its sidecar. The sidecar also records the SHA-256 of its own content, and its
values are validated when it is read: a server refuses a sidecar that was edited or whose
normalisation cannot be applied (a zero, negative or NaN std; a list of the wrong length).

A text model also gets its tokenizer, ``model.onnx.tokenizer/`` (the files ``save_pretrained``
writes), whose files' SHA-256 the sidecar records too: the exported directory serves on its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import __version__
from ..data.bundle import DataMeta
from ..errors import UserError, format_validation_error
from ..run.atomic import replace_dir, temporary_dir
from ..run.files import read_json, write_json
from ..run.schema import MetaFile

SIDECAR_VERSION = 1
FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".tflite": "tflite"}


def sidecar_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def tokenizer_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.tokenizer`` (a directory)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".tokenizer")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SidecarModel(BaseModel):
    """What a sidecar must hold; fields not named here are kept as they are."""

    model_config = ConfigDict(extra="allow")

    format: Literal["onnx", "torchscript", "tflite"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: dict
    meta: MetaFile
    content_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


def _plain(obj):
    """``obj`` as JSON reads it back: NaN and infinite floats as None, tuples as lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def content_sha256(content: dict) -> str:
    """SHA-256 of a sidecar's content (less this hash itself), as canonical JSON."""
    body = {k: v for k, v in content.items() if k != "content_sha256"}
    return sha256(json.dumps(_plain(body), sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def _file_hashes(directory: Path) -> dict[str, str]:
    return {f.name: sha256(f.read_bytes()) for f in sorted(directory.iterdir()) if f.is_file()}


def write_tokenizer(tokenizer, target: Path) -> dict[str, str]:
    """Save ``tokenizer`` into the directory ``target`` (replacing it), written aside and renamed into place.

    Returns:
        The SHA-256 of every file written, by name.
    """
    tmp = temporary_dir(target)
    try:
        tokenizer.save_pretrained(str(tmp))
        files = _file_hashes(tmp)
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return files


def load_export_tokenizer(model_path: str | Path, content: dict):
    """The tokenizer a text model's sidecar names, checked against the hashes the sidecar holds.

    Raises:
        UserError: when the directory is missing, or its files differ from those exported.
    """
    info = (content.get("input") or {}).get("tokenizer") or {}
    if not info.get("path"):
        raise UserError(f"the sidecar of {Path(model_path).name} names no tokenizer; export the run again")
    directory = Path(model_path).parent / info["path"]
    if not directory.is_dir():
        raise UserError(f"{model_path} takes text and needs its tokenizer {directory.name}/ next to it; "
                        "copy it with the model or export the run again")
    want = info.get("files") or {}
    have = _file_hashes(directory)
    changed = sorted(n for n in want if have.get(n) != want[n])
    if changed:
        raise UserError(f"the tokenizer in {directory} does not match the sidecar ({', '.join(changed)} "
                        "changed or missing); export the run again")
    from ..data.text import load_tokenizer

    return load_tokenizer(directory)


def build_sidecar(*, fmt: str, data: bytes, file_name: str, source: dict, meta: DataMeta, export: dict,
                  parity: dict | None, signature=None, tokenizer: dict | None = None) -> dict:
    """The sidecar's content.

    Args:
        fmt: "onnx", "torchscript" or "tflite".
        data: the model file's bytes (for its size and hash).
        file_name: the model file's name, relative to the sidecar.
        source: {"run", "checkpoint", "model"}: where the weights came from.
        meta: the run's data metadata.
        export: how it was exported: opset, int8 mode, pruning, sparsity.
        parity: the parity check's result.
        signature: the graph's input signature (default: float32 arrays of the data's shape).
        tokenizer: text models: {"path" (relative to the sidecar), "files" (SHA-256 by name),
            "max_length", "truncation", "class"}.
    """
    if signature is None:
        from .signature import signature_for

        signature = signature_for(meta)
    described = signature.to_dict()
    if signature.kind == "array":
        only = described["tensors"][0]
        described.update(name=only["name"], dtype=only["dtype"], shape=only["shape"],
                         normalised="the model takes normalised inputs; apply meta.x_mean / meta.x_std first")
    elif signature.kind == "text":
        described.update(tokenizer=tokenizer, raw=(
            "strings: tokenise them with the tokenizer in input.tokenizer.path (truncation at max_length, "
            "special tokens added), then feed input_ids and attention_mask"))
    output = {**described.pop("output"),
              "kind": "standardised values" if meta.task == "regression" else "logits"}
    content = {
        "sidecar_version": SIDECAR_VERSION,
        "zerotune": __version__,
        "format": fmt,
        "file": file_name,
        "bytes": len(data),
        "sha256": sha256(data),
        "source": source,
        "input": described,
        "output": output,
        "export": export,
        "parity": parity,
        "meta": meta.to_dict(),
    }
    content["content_sha256"] = content_sha256(content)
    return content


def write_sidecar(path: str | Path, content: dict) -> None:
    write_json(path, content)


def read_sidecar(model_path: str | Path, data: bytes | None = None) -> dict:
    """Read and check the sidecar of an exported model.

    Args:
        model_path: the exported model file.
        data: the model file's bytes; when given, their SHA-256 must match the sidecar's.

    Raises:
        UserError: when the sidecar is missing, corrupt, edited, holds values a server cannot use
            (one line naming the field and what is allowed), or describes another file.
    """
    path = sidecar_path(model_path)
    if not path.exists():
        raise UserError(f"{model_path} has no sidecar {path.name}; export it with `zerotune export`")
    content = read_json(path, kind=None)  # any JSON: what is not a sidecar is said below
    if not isinstance(content, dict) or not {"format", "sha256", "meta", "source"} <= set(content):
        raise UserError(f"{path} is not a zerotune export sidecar")
    try:
        checked = SidecarModel.model_validate(content)
    except ValidationError as e:
        raise UserError(f"{path} holds invalid values: {format_validation_error(e, schema=SidecarModel)}; export the run again") from None
    # Sidecars written before the content hash have none; their values are still validated above.
    if checked.content_sha256 is not None and checked.content_sha256 != content_sha256(content):
        raise UserError(f"{path} was changed after export (its content SHA-256 differs); export the run again")
    try:
        content["meta"] = DataMeta.from_dict(content["meta"])
    except ValueError as e:
        raise UserError(f"{path} has invalid metadata: {e}") from None
    if data is not None and sha256(data) != content["sha256"]:
        raise UserError(f"{model_path} does not match its sidecar {path.name} (SHA-256 differs): "
                        "the file was changed or corrupted; export it again")
    return content
