"""The prompts an exported causal LM is checked on: the run's held-out records first, then fixed questions.

A file that leaves zerotune must answer as the run's model does on prompts it never trained on: the
validation and test records of the run's data (split exactly as training split them), topped up to
`CHECK_PROMPTS` with its training records when it holds out fewer (prompts of the run's own kind,
where a tuned model answers firmly rather than at a near tie that any rounding flips), and with
fixed everyday questions when its data has moved.
Answers are as long as the run's own (``sft.max_new_tokens``).
"""

from __future__ import annotations

import numpy as np

from ..data.preprocess import split_indices
from ..errors import UserError

CHECK_PROMPTS = 20
FIXED = ["What is the capital of France?", "Name three primary colours.", "What is 12 plus 7?",
         "Translate 'good morning' into Spanish.", "Give a synonym for 'happy'.", "How many days are in a week?",
         "What do bees make?", "Which planet is closest to the Sun?", "Spell the word 'cat' backwards.",
         "What is the opposite of 'cold'?", "Write one sentence about the sea.", "What colour is the sky on a clear day?",
         "How many legs does a spider have?", "What is water made of?", "Name a fruit that is yellow.",
         "What is 9 times 3?", "Who wrote 'Romeo and Juliet'?", "What is the largest ocean?",
         "Complete: one, two, three, ...", "Why do we sleep?"]


def answer_tokens(config) -> int:
    """How long an answer is: the run's own greedy answers' length (``sft.max_new_tokens``), which its exact-match
    metric was measured at."""
    from ..config import SFTConfig

    return (config.sft or SFTConfig()).max_new_tokens


def check_conversations(config, n: int = CHECK_PROMPTS) -> tuple[list[list[dict]], int]:
    """(`n` conversations to prompt with, how many of them are the run's held-out records, which come first).

    Args:
        config: the run's `Config` (its data path, fractions and split seed).
        n: how many conversations.
    """
    held, trained = _records(config)
    ours = (held + trained)[:n]
    return ours + [[{"role": "user", "content": q}] for q in FIXED[:n - len(ours)]], min(len(held), n)


def _records(config) -> tuple[list[list[dict]], list[list[dict]]]:
    """The prompts (conversations before the answer) of the run's validation and test records, and of its
    training records; ([], []) when the data cannot be read any more."""
    data = config.data
    if data.name not in ("sft", "preference") or not isinstance(data.path, str):
        return [], []
    try:
        if data.name == "sft":
            from ..data.sft import read_records

            prompts = [messages[:-1] for _, messages in read_records(data.path)]
        else:
            from ..data.preference import read_pairs

            prompts = [turns for _, (turns, _, _) in read_pairs(data.path)]
    except (UserError, OSError):
        return [], []
    train, val, test = split_indices(np.zeros(len(prompts)), (data.val_fraction, data.test_fraction),
                                     data.split_seed, False)
    return [prompts[i] for i in (*val, *test)], [prompts[i] for i in train]
