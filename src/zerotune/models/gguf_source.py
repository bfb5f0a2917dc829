"""A GGUF file (llama.cpp's format) as the start of a fine-tune: dequantized once into a transformers directory.

transformers' own GGUF reader does the work (``from_pretrained(dir, gguf_file=name)``, with the
``gguf`` package): it maps llama, qwen2 and the other architectures it supports to their
transformers classes, undoes llama's q/k permutation and dequantizes every tensor to float. The
result is saved as a plain directory (config, safetensors, tokenizer with its chat template,
generation config) plus `SOURCE_FILE`, which records the file, its SHA-256 and its quantization,
so that whatever is made from it can say its weights came from a quantized file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import UserError
from ..run.files import outermost_missing, removed_on_failure
from .pretrained import CATALOG, SOURCE_FILE, cache_root, location


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def quantization(path: Path) -> str:
    """The file's type as llama.cpp names it without its prefix: "Q4_1", "Q8_0", "F16", ...

    Raises:
        UserError: a file that is not GGUF, or whose architecture transformers cannot read (naming those it can).
    """
    gguf = _gguf_package()
    try:
        fields = gguf.GGUFReader(str(path)).fields
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{path} is not a readable GGUF file: {e}") from None
    _check_architecture(path, fields)
    field = fields.get("general.file_type")
    if field is None:
        return "unknown"
    value = int(field.parts[field.data[0]][0])
    try:
        return gguf.LlamaFileType(value).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"type {value}"


def _check_architecture(path: Path, fields) -> None:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    field = fields.get("general.architecture")
    arch = field.contents() if field is not None else None
    readable = [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]
    if arch not in readable:
        raise UserError(f"{path.name} holds a {arch!r} model, which transformers cannot read from GGUF; readable "
                        f"architectures: {', '.join(readable)}")


def dequantized(path: str | Path) -> Path:
    """The transformers directory made from a GGUF file: made once, in the model cache, keyed by the file's
    SHA-256 (a catalogue model installed from the same file is that directory).

    Raises:
        UserError: a missing or unreadable file, an architecture transformers cannot read from GGUF,
            or the ``gguf`` package missing.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"GGUF file {path} does not exist")
    digest = sha256_of(path)
    installed = _installed_from(digest)
    if installed is not None:  # a catalogue model installed from this very file
        return installed
    target = cache_root() / "gguf" / f"{path.stem}-{digest[:16]}"
    if not (target / SOURCE_FILE).is_file():  # written last: a directory without it is incomplete
        with removed_on_failure(outermost_missing(target.parent)):  # a failed read leaves no empty cache folder
            write_directory(path, target, {"file": path.name, "sha256": digest})
    return target


def _installed_from(digest: str) -> Path | None:
    for entry in CATALOG.values():
        if entry.sha256 == digest and (where := location(entry)) is not None:
            return where
    return None


def write_directory(path: Path, target: Path, record: dict) -> None:
    """Dequantize `path` into the transformers directory `target` (replaced whole, never left half written)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp, quiet_gguf_reader():
        record = {**record, "quantization": quantization(path), "format": "gguf"}
        out = Path(tmp) / "model"
        _save_transformers(path, out)
        (out / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)


def _save_transformers(path: Path, out: Path) -> None:
    """Inside `quiet_gguf_reader`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = {"pretrained_model_name_or_path": str(path.parent), "gguf_file": path.name, "local_files_only": True}
    try:
        tokenizer = AutoTokenizer.from_pretrained(**where)
        model = AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"cannot read a causal language model from {path}: {str(e).splitlines()[0]}") from None
    _as_plain_model(model).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


@contextlib.contextmanager
def quiet_gguf_reader():
    """For reading with transformers' GGUF reader: the gguf package checked, transformers' warnings off, the
    reader's own tqdm bar (dequantizing takes a while) only where someone watches it, not in a log (it
    writes to stderr, and transformers' switch for progress bars does not reach it), and each file parsed once.

    transformers opens the file anew for its config, its tokenizer and its weights, and each opening
    parses every metadata field (SmolLM2's 49,152 tokens and 48,900 merges: 3.3 s a time on one core);
    it also rebuilds gguf's tensor-name table for each of the model's modules (~400 times, 5 s in all).
    Inside this block both are made once per file and architecture: SmolLM2 is read 2.1 times as fast, the
    same bytes written (benchmarks/gguf_dequantize.py, docs/benchmarks.md).
    """
    gguf = _gguf_package()
    from .hf_logging import quiet_transformers

    quiet_transformers()
    readers: dict[str, object] = {}
    opened, name_map = gguf.GGUFReader, gguf.get_tensor_name_map

    def reader(path, mode="r"):
        key = f"{os.path.realpath(path)}:{mode}"
        if key not in readers:
            readers[key] = opened(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.cache(name_map)
    try:
        with contextlib.nullcontext() if sys.stderr.isatty() else contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = opened, name_map


def _as_plain_model(model):
    """The same weights in a model transformers will save: one loaded from a GGUF file stays marked as
    quantized (and refuses ``save_pretrained``) though its tensors are float."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):  # no random initialisation of weights that are replaced at once
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=True, assign=True)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    return plain


def _gguf_package():
    try:
        import gguf
    except ImportError:
        raise UserError("reading GGUF files needs the gguf package: pip install 'zerotune[finetune]'") from None
    return gguf
