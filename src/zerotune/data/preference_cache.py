"""The reference model's log-probs of every pair, kept in a run directory (``reference_logps.safetensors``).

A full or partial fine-tune changes the weights the reference would come from, so the reference's
log-probs of every record are computed once before training and written here: training holds no
second model. Each split's tensor (N, 2: chosen, rejected) is stored with a fingerprint of the token
ids and labels it was computed on, so a resume (or `eval`) whose data no longer tokenises the same
is refused instead of being compared against the wrong reference.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import UserError
from ..run.atomic import atomic_write_bytes
from .bundle import DataBundle
from .preference import PreferenceSplit

SPLITS = ("train", "val", "test")


def fingerprint(split: PreferenceSplit) -> str:
    """SHA-256 of a split's token ids and labels: what its reference log-probs were computed on."""
    digest = hashlib.sha256()
    for t in (split.x, split.y):
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_reference(path: str | Path, data: DataBundle, refs: dict[str, torch.Tensor]) -> None:
    """Write `refs` ({split: (N, 2) log-probs}) with each split's fingerprint, all or nothing."""
    from safetensors.torch import save

    tensors = {name: refs[name].detach().float().cpu().contiguous() for name in SPLITS}
    metadata = {f"fingerprint.{name}": fingerprint(data.split(name)) for name in SPLITS}
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_reference(path: str | Path, data: DataBundle) -> dict[str, torch.Tensor]:
    """The reference log-probs of `data`'s splits, read back and checked against the data.

    Raises:
        UserError: one line naming the file: missing, unreadable, or computed on other data.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing: the run's reference log-probs were saved there before training")
    try:
        with safe_open(str(path), "pt") as f:
            metadata, refs = f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is damaged: {str(e).splitlines()[0][:200]}") from None
    for name in SPLITS:
        split, ref = data.split(name), refs.get(name)
        if ref is None or tuple(ref.shape) != (len(split), 2):
            raise UserError(f"{path} does not fit the run's data: its {name} split has {len(split)} pairs")
        if metadata.get(f"fingerprint.{name}") != fingerprint(split):
            raise UserError(f"{path} was computed on other {name} data than data.path tokenises to now "
                            f"(the file or the tokenizer changed); the reference does not fit this run")
    return refs


def with_cached(data: DataBundle, refs: dict[str, torch.Tensor]) -> DataBundle:
    """`data` whose splits carry the cached reference log-probs."""
    train, val, test = (data.split(name).with_reference(refs[name]) for name in SPLITS)
    return DataBundle(train, val, test, data.meta, data.tokenizer, data.chat)
