"""A language model as the server holds it: the model behind OpenAI's API, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServedLM:
    """A language model ready to serve: the model and where it came from."""

    model: Any  # a zerotune.lm.textmodel.TextModel
    version: str
    source: dict = field(default_factory=dict)
    backend: str = "pytorch"

    @property
    def name(self) -> str:
        return self.model.name
