"""Every training mode, in the order a run's modes are asked: a new mode is one line in MODES."""

from __future__ import annotations

import functools
import importlib

from .base import Mode

# "module:Class", the module relative to this package when it starts with a dot. Base modes (what is
# learned) before added ones (how); among base modes the first that applies wins.
MODES: list[str] = [
    ".sft:InstructionTuning",
    ".preference:Preference",
    ".lm:LanguageModel",
    ".supervised:Supervised",
    ".finetune:Finetune",
    ".distill:Distill",
]


@functools.cache
def mode_class(entry: str) -> type[Mode]:
    """The class a MODES entry names."""
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module, __package__), name)


def modes_for(config) -> list[Mode]:
    """New instances of the modes a run of `config` is in: its base mode first, then the added ones in order."""
    classes = [mode_class(entry) for entry in MODES]
    base = next(cls for cls in classes if cls.base and cls.applies(config))
    return [base(), *(cls() for cls in classes if not cls.base and cls.applies(config))]


def base_mode(config) -> Mode:
    """The mode that says what a run of `config` learns."""
    return modes_for(config)[0]
