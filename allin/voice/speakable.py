"""Turn an answer written for the screen (Markdown, citations, code) into sentences to speak.

Parsed with markdown-it-py rather than regexes, so emphasis, links, lists and
fenced code are recognised the way the web client renders them. Code and
tables are not read out: the listener is told they are in the chat.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

CODE_NOTE = "I've put the code in the chat."
TABLE_NOTE = "I've put a table in the chat."
LINK_NOTE = "the link in the chat"
SOURCES_NOTE = "The sources are in the chat."

_CITATION = re.compile(r"\s*\[\^?\d+(?:\s*[,;–-]\s*\^?\d+)*\]")
_SOURCES = re.compile(r"\s*(?:sources|references)\s*:", re.IGNORECASE)
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")
_CLAUSE = re.compile(r"(?<=[,;:—])\s+")
# Abbreviations whose period does not end a sentence ("e.g. Python", "Dr. Lee").
_ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "dr.", "mr.", "mrs.", "ms.", "prof.", "no.", "fig."}


def _inline_text(token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        # images, inline HTML and link/emphasis markers carry nothing to say
    return "".join(parts)


def _blocks(markdown: str) -> list[str]:
    """Speakable text of each block (paragraph, heading, list item), in order."""
    md = MarkdownIt("commonmark").enable("table")
    blocks: list[str] = []
    in_table = False
    for token in md.parse(markdown):
        if token.type == "table_open":
            in_table = True
            blocks.append(TABLE_NOTE)
        elif token.type == "table_close":
            in_table = False
        elif in_table:
            continue
        elif token.type in ("fence", "code_block"):
            blocks.append(CODE_NOTE)
        elif token.type == "inline":
            text = _inline_text(token)
            if _SOURCES.match(text):
                # The answer's trailing source list (file names, pages): shown, not read out.
                blocks.append(SOURCES_NOTE)
                break
            blocks.append(text)
    out: list[str] = []
    for text in blocks:
        text = _URL.sub(LINK_NOTE, _CITATION.sub("", text))
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))
        if not any(c.isalnum() for c in text):
            continue
        if text[-1].isalnum() or text[-1] in ")\"'”’":
            text += "."  # headings and list items: end them so they are said as sentences
        if out and text == out[-1] and text in (CODE_NOTE, TABLE_NOTE, SOURCES_NOTE):
            continue  # two code blocks in a row: say it once
        out.append(text)
    return out


def _split_block(text: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        head = text[start : m.start()]
        last_word = head.rsplit(None, 1)[-1].lower() if head.strip() else ""
        nxt = text[m.end() : m.end() + 1]
        if last_word in _ABBREVIATIONS or (nxt and nxt.islower()):
            continue
        sentences.append(text[start : m.end()].strip())
        start = m.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Pack clauses (split at , ; : —) into pieces of at most max_chars; words if a clause is longer."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for clause in _CLAUSE.split(sentence):
        words = clause.split()
        while words:  # a clause longer than max_chars is cut between words
            take, size = 0, 0
            while take < len(words) and (take == 0 or size + 1 + len(words[take]) <= max_chars):
                size += len(words[take]) + (1 if take else 0)
                take += 1
            chunk, words = " ".join(words[:take]), words[take:]
            if pieces and len(pieces[-1]) + 1 + len(chunk) <= max_chars:
                pieces[-1] += " " + chunk
            else:
                pieces.append(chunk)
    return pieces


def split_sentences(text: str, *, max_chars: int = 200) -> list[str]:
    """Markdown answer -> plain sentences to synthesize one by one (short first audio, steady stream)."""
    out: list[str] = []
    for block in _blocks(text):
        for sentence in _split_block(block):
            out.extend(_split_long(sentence, max_chars))
    return out
