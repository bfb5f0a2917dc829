"""What a preference-tuned model actually writes: greedy answers to held-out prompts, scored as

- ``answers/chosen``: the share equal to the pair's chosen answer (stripped texts);
- ``answers/preferred``: the share that ``preference.answer_regex`` matches whole, the preferred
  behaviour (a format, a length), right or wrong otherwise.

The rewards say which of two given answers the model finds likelier; these say whether what it writes
by itself has changed, which is what a user tunes for.
"""

from __future__ import annotations

import re

import torch

from ..data.chat import ChatFormat
from ..data.preference import PreferenceSplit
from ..lm.answer import greedy_ids
from ..models.modes import eval_mode


class AnswerCheck:
    """Greedy answers to a split's prompts and their scores.

    Args:
        fmt: the chat format (decodes answers, knows the end token).
        cfg: the PreferenceConfig (``answer_regex``, ``max_new_tokens``).
    """

    def __init__(self, fmt: ChatFormat, cfg):
        self.fmt, self.max_new_tokens = fmt, cfg.max_new_tokens
        self.regex = re.compile(cfg.answer_regex) if cfg.answer_regex else None

    def answers(self, model: torch.nn.Module, split: PreferenceSplit, n: int) -> list[str]:
        """The model's greedy answers to the first `n` prompts of `split`."""
        with eval_mode(model):
            return [self.fmt.decode(greedy_ids(model, split.prompt(i), self.max_new_tokens, self.fmt.stop_id))
                    for i in range(n)]

    def chosen(self, split: PreferenceSplit, i: int) -> str:
        """The chosen answer of pair `i`, as the data gives it."""
        return self.fmt.decode(split.answer(i, 0))

    def preferred(self, answer: str) -> bool | None:
        """Whether `answer` follows the preferred behaviour (None: no ``answer_regex`` to say)."""
        return None if self.regex is None else self.regex.fullmatch(answer.strip()) is not None

    def scores(self, model: torch.nn.Module, split: PreferenceSplit, n: int) -> dict[str, float]:
        """``answers/chosen`` and, with a regex, ``answers/preferred`` over the first `n` prompts."""
        got = self.answers(model, split, n)
        out = {"answers/chosen": sum(a.strip() == self.chosen(split, i).strip() for i, a in enumerate(got)) / max(n, 1)}
        if self.regex is not None:
            out["answers/preferred"] = sum(bool(self.preferred(a)) for a in got) / max(n, 1)
        return out

    def names(self) -> list[str]:
        """The names `scores` gives."""
        return ["answers/chosen"] + (["answers/preferred"] if self.regex is not None else [])
