"""Find the code a user pasted in a chat message: fenced Markdown blocks."""

from __future__ import annotations

import ast
import warnings

from markdown_it import MarkdownIt

# Info-string spellings seen in chat, mapped to the languages the sandbox runs.
LANGUAGE_ALIASES = {
    "python": "python",
    "python3": "python",
    "py": "python",
    "py3": "python",
    "bash": "bash",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
}


def normalize_language(tag: str) -> str:
    tag = tag.strip().lower()
    return LANGUAGE_ALIASES.get(tag, tag)


def _parses_as_python(code: str) -> bool:
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning on odd escapes: still Python
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def extract_code_blocks(markdown_text: str) -> list[tuple[str, str]]:
    """Fenced blocks as (language, code), in order.

    A tagged block keeps its (normalized) tag, whatever it is; the caller decides
    what it can run. An untagged block counts as Python when it parses as Python,
    and is dropped otherwise. Indented (unfenced) blocks are not code to run.
    """
    blocks: list[tuple[str, str]] = []
    for token in MarkdownIt("commonmark").parse(markdown_text):
        if token.type != "fence":
            continue
        tag = token.info.split(maxsplit=1)[0] if token.info.strip() else ""
        code = token.content
        if tag:
            blocks.append((normalize_language(tag), code))
        elif code.strip() and _parses_as_python(code):
            blocks.append(("python", code))
    return blocks
