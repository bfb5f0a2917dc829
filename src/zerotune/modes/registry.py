"""Every training mode, in the order a run's modes are asked: a new mode is its import and one line in MODES."""

from __future__ import annotations

from .base import Mode
from .distill import Distill
from .finetune import Finetune
from .lm import LanguageModel
from .preference import Preference
from .sft import InstructionTuning
from .supervised import Supervised

# Base modes (what is learned) before added ones (how); among base modes the first that applies wins.
MODES: list[type[Mode]] = [
    InstructionTuning,
    Preference,
    LanguageModel,
    Supervised,
    Finetune,
    Distill,
]


def modes_for(config) -> list[Mode]:
    """New instances of the modes a run of `config` is in: its base mode first, then the added ones in order."""
    base = next(cls for cls in MODES if cls.base and cls.applies(config))
    return [base(), *(cls() for cls in MODES if not cls.base and cls.applies(config))]


def base_mode(config) -> Mode:
    """The mode that says what a run of `config` learns."""
    return modes_for(config)[0]
