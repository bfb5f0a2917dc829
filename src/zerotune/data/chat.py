"""Chat formatting for instruction tuning and generation: the tokenizer's own template, or ours.

A Hugging Face tokenizer with a ``chat_template`` formats conversations itself
(``apply_chat_template``). Every other tokenizer (one without a template, and the character or BPE
tokenizer of a zerotune GPT run) gets the default template, plain text that any vocabulary trained
on ordinary text can spell::

    System: {system}          (only when there is a system message)
    User: {user}
    Assistant: {assistant}

A prompt ends with ``Assistant: ``; the model writes the answer and then the end marker: the
tokenizer's end-of-sequence token when it has one, a newline otherwise. Only the answer and its
end marker are response tokens (what the loss sees when the prompt is masked).
"""

from __future__ import annotations

from ..errors import UserError

ROLES = ("system", "user", "assistant")
DEFAULT_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}
NEWLINE_END = "\n"  # the end marker of a tokenizer without an end-of-sequence token


def default_template(messages: list[dict], add_generation_prompt: bool = True) -> str:
    """The default chat template as text: one ``Role: content`` line per message, then ``Assistant: ``."""
    text = "".join(f"{DEFAULT_NAMES[m['role']]}: {m['content']}\n" for m in messages)
    return text + ("Assistant: " if add_generation_prompt else "")


# What the default template writes around the messages: a character vocabulary needs these
# (``data.chat_chars`` adds them to a corpus run's).
TEMPLATE_CHARS = "".join(sorted(set(default_template([{"role": r, "content": ""} for r in ROLES]) + NEWLINE_END)))
FIX_TEMPLATE_CHARS = ("pretrain the GPT with --set data.chat_chars=true (its vocabulary then holds the template's "
                      "characters) or --set data.tokenizer=bpe")


def outside_vocabulary(tokenizer, text: str, contents: list[str], what: str) -> str:
    """Why `text`, formatted from `contents` by the default template, does not encode with a character
    vocabulary: the characters the template adds and those of the record itself, each with its fix."""
    def known(c: str) -> bool:
        try:
            tokenizer.encode(c)
        except UserError:
            return False
        return True

    missing = [c for c in dict.fromkeys(text) if not known(c)]
    own = set("".join(contents))
    template = [c for c in missing if c in TEMPLATE_CHARS]
    record = [c for c in missing if c in own and c not in TEMPLATE_CHARS]
    size = f"this run's character vocabulary ({tokenizer.vocab_size} characters)"
    parts = []
    if template:
        parts.append(f"the default chat template (System:/User:/Assistant: lines, newline end) uses characters outside "
                     f"{size}: {_shown(template)}; they come from the template, not from the record: {FIX_TEMPLATE_CHARS}")
    if record:
        parts.append(f"the {what} has characters outside {size}: {_shown(record)}; add text with them to the "
                     f"pretraining corpus or pretrain with --set data.tokenizer=bpe")
    return "; and ".join(parts)


def _shown(chars: list[str]) -> str:
    return ", ".join(map(repr, chars[:8])) + (f" and {len(chars) - 8} more" if len(chars) > 8 else "")


def default_template_jinja() -> str:
    """`default_template` as a Jinja chat template, for files read by other tools (a GGUF file's own template)."""
    names = ", ".join(f"'{role}': '{name}'" for role, name in DEFAULT_NAMES.items())
    return ("{% set names = {" + names + "} %}{% for m in messages %}{{ names[m['role']] }}: {{ m['content'] }}\n"
            "{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}")


class ChatFormat:
    """Turns conversations into token ids with one tokenizer, and answers back into text.

    Args:
        tokenizer: a transformers tokenizer, or a zerotune ``LMTokenizer`` (char/BPE of a GPT run).
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.is_hf = hasattr(tokenizer, "apply_chat_template")
        self.uses_template = self.is_hf and bool(getattr(tokenizer, "chat_template", None))
        eos = getattr(tokenizer, "eos_token_id", None) if self.is_hf else None
        self.end_id: int | None = int(eos) if eos is not None else None
        self.end_text = "" if self.end_id is not None else NEWLINE_END

    @property
    def template_name(self) -> str:
        return "tokenizer" if self.uses_template else "default"

    def prompt_text(self, messages: list[dict]) -> str:
        """The conversation so far, formatted up to where the assistant's answer starts."""
        if self.uses_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return default_template(messages)

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """Token ids of `prompt_text` (with the tokenizer's start token when it adds one and the template does not)."""
        return self._ids(self.prompt_text(messages), [m["content"] for m in messages])

    def history_ids(self, messages: list[dict]) -> list[int]:
        """Token ids of the conversation as it stands, without the prompt for a next answer: where an
        assistant's message ends (its end marker included) when `messages` ends with one."""
        if self.uses_template:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        else:
            text = default_template(messages, add_generation_prompt=False)
        return self._ids(text, [m["content"] for m in messages])

    def _ids(self, text: str, contents: list[str], what: str = "prompt") -> list[int]:
        if not self.is_hf:
            return self._own_ids(text, contents, what)
        return list(self.tokenizer(text, add_special_tokens=not self.uses_template)["input_ids"])

    def _own_ids(self, text: str, contents: list[str], what: str) -> list[int]:
        """A zerotune tokenizer's ids; a character it lacks is blamed on the template or the record."""
        try:
            return self.tokenizer.encode(text, what=what)
        except UserError as e:
            raise UserError(outside_vocabulary(self.tokenizer, text, contents, what) or str(e)) from None

    def response_ids(self, answer: str) -> list[int]:
        """Token ids of an answer followed by the end marker."""
        if not self.is_hf:
            return self._own_ids(answer + self.end_text, [answer], "response")
        ids = list(self.tokenizer(answer + self.end_text, add_special_tokens=False)["input_ids"])
        return ids + ([self.end_id] if self.end_id is not None else [])

    def text(self, ids: list[int]) -> str:
        """Ids decoded as they are (a prompt, say), special tokens left out."""
        return self.tokenizer.decode(ids, skip_special_tokens=True) if self.is_hf else self.tokenizer.decode(ids)

    def decode(self, ids: list[int]) -> str:
        """An answer's text: the ids up to the end marker, decoded, without special tokens."""
        if self.end_id is not None and self.end_id in ids:
            ids = ids[:ids.index(self.end_id)]
        if self.is_hf:
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
        else:
            text = self.tokenizer.decode(ids)
        if self.end_text and self.end_text in text:
            text = text[:text.index(self.end_text)]
        return text

    @property
    def stop_id(self) -> int | None:
        """The token that ends an answer: end-of-sequence, or the newline when it is one token."""
        if self.end_id is not None:
            return self.end_id
        ids = self.tokenizer.encode(NEWLINE_END) if not self.is_hf else self.tokenizer.encode(
            NEWLINE_END, add_special_tokens=False)
        return ids[0] if len(ids) == 1 else None

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer) if self.is_hf else self.tokenizer.vocab_size

    @property
    def pad_id(self) -> int:
        """A valid token id to pad with (its labels are ignored; causal models never look ahead at it)."""
        if self.is_hf:
            for name in ("pad_token_id", "eos_token_id", "unk_token_id"):
                value = getattr(self.tokenizer, name, None)
                if value is not None:
                    return int(value)
        return 0


def user_turn(prompt: str, system: str | None = None) -> list[dict]:
    """A one-question conversation: an optional system message and the user's prompt."""
    if not prompt:
        raise UserError("the prompt is empty; give at least one character")
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
