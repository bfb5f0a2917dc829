"""Token ids to text as they are generated: one incremental detokenizer for every tokenizer.

Decoding one token at a time is wrong for most tokenizers: a byte-level BPE token may hold half
a UTF-8 character (decoded alone it is U+FFFD), and SentencePiece drops the space that starts a
decoded sequence. Decoding the whole text again at every token is right but costs more each token.
`Detokenizer` decodes a short window instead: the tokens from the start of the last piece it gave
out, once without and once with the tokens since, and gives out the difference. While that
difference is empty (a special token) or ends in U+FFFD (a character not yet complete), it waits
and the window grows by a token; a complete character takes at most 4 bytes, so valid text keeps
the window to a few tokens. Joined, the pieces are the decoding of all tokens at once.

`TextStream` adds stop strings on top: it never gives out a stop string or what follows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

REPLACEMENT = "\ufffd"  # what a byte-level decoder shows for an incomplete UTF-8 sequence
CONTEXT = 5  # tokens before the first new one decoded along with it, so its leading space comes out right


class Detokenizer:
    """Turns token ids, pushed one at a time, into text pieces (see the module docstring).

    Args:
        decode: token ids -> text (a tokenizer's ``decode``).
        context: ids that come before the first pushed one (a prompt); only its last few are read.
    """

    def __init__(self, decode: Callable[[list[int]], str], context: Sequence[int] = ()):
        self.decode = decode
        self.ids = [int(t) for t in list(context)[-CONTEXT:]]
        self.read = len(self.ids)  # ids before this index have been given out as text

    def push(self, tok: int) -> str:
        """The new text that `tok` completes, or "" while it waits for more tokens."""
        self.ids.append(int(tok))
        return self._take(final=False)

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character stays U+FFFD): the tokens have ended."""
        return self._take(final=True)

    def _take(self, final: bool) -> str:
        if self.read == len(self.ids):
            return ""
        before = self.decode(self.ids[:self.read])
        text = self.decode(self.ids)
        if not final and (len(text) <= len(before) or text.endswith(REPLACEMENT)):
            return ""
        del self.ids[:self.read]  # the window starts where the new piece starts
        self.read = len(self.ids)
        return text[len(before):]


def held_tail(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that is the beginning of a stop string (and not all of it)."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


class TextStream:
    """Token ids in, finished text out: the text a stream may show so far, never a stop string or what follows.

    ``push(tok)`` returns the new text that is safe to show (held back while it could be the start
    of a stop string or ends in an incomplete character) and ``stopped`` turns True once a stop
    string appeared; ``finish()`` returns what was held back when the tokens run out.

    Args:
        decode: token ids -> text (a tokenizer's ``decode``).
        context: ids before the first pushed one (the prompt), see `Detokenizer`.
        stops: strings that end the text.
    """

    def __init__(self, decode: Callable[[list[int]], str], context: Sequence[int] = (), stops: Sequence[str] = ()):
        self.detok = Detokenizer(decode, context)
        self.stops = list(stops)
        self.text, self.sent = "", 0  # everything decoded so far; how much of it was shown
        self.stopped = False

    def _cut(self, final: bool) -> str:
        # a stop string cannot start before `sent`: the held-back tail covers any partial match
        hits = [i for s in self.stops if (i := self.text.find(s, self.sent)) >= 0]
        if hits:
            self.stopped = True
            end = min(hits)
        else:
            end = len(self.text) if final else len(self.text) - held_tail(self.text, self.stops)
        piece = self.text[self.sent:end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return piece

    def push(self, tok: int) -> str:
        if self.stopped:
            return ""
        self.text += self.detok.push(tok)
        return self._cut(final=False)

    def finish(self) -> str:
        if self.stopped:
            return ""
        self.text += self.detok.flush()
        return self._cut(final=True)
