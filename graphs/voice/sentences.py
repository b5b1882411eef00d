"""Streamed answer tokens -> sentences to speak, as soon as each one is complete.

Speech should start on the answer's first sentence, not after the whole
answer. The answer is Markdown (citations, lists, code), so sentences are cut
by `allin.voice.speakable.split_sentences` over the text received so far:
every sentence but the last is complete (text after it has arrived), the last
may still grow. Parsing the growing text costs 1-2 ms for a 1 KB answer, so
it is only redone near a possible boundary: for a few tokens after one that
holds a sentence end or a line break (a sentence is complete once the next
one starts).
"""

from __future__ import annotations

from allin.voice.speakable import split_sentences


_BOUNDARY = frozenset(".!?…\n")
LOOKAHEAD_TOKENS = 3  # ". ", " ", "Next": a break shows within a few tokens of its full stop


class SentenceStream:
    """Feed tokens, get the sentences completed by them; `finish` gives the rest."""

    def __init__(self) -> None:
        self._text = ""
        self._given = 0  # sentences handed out so far
        self._armed = 0  # tokens left to re-check after a possible boundary

    def feed(self, token: str) -> list[str]:
        self._text += token
        boundary = not _BOUNDARY.isdisjoint(token)
        if boundary:
            self._armed = LOOKAHEAD_TOKENS
        if not self._armed:
            return []
        self._armed -= 1
        new = self._take(split_sentences(self._text)[:-1])
        if new and not boundary:
            self._armed = 0  # found it; wait for the next full stop
        return new

    def finish(self, full_text: str | None = None) -> list[str]:
        """The remaining sentences once the answer is complete (`full_text` wins over the tokens)."""
        if full_text is not None:
            self._text = full_text
        return self._take(split_sentences(self._text))

    def _take(self, complete: list[str]) -> list[str]:
        # Markdown read later can re-shape earlier text (a table row seen first as a
        # paragraph); what was said stays said, and counting keeps us from repeating it.
        new = complete[self._given :]
        self._given = max(self._given, len(complete))
        return new
