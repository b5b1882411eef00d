"""A chat as a readable Markdown transcript: citations as footnotes, code runs as fenced blocks."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

_CITE_RE = re.compile(r"\[(\d{1,3})\]")
_SPEAKER = {"user": "You", "assistant": "Allin"}


def fence(text: str, lang: str = "") -> str:
    """A fenced block that no backtick run inside `text` can close early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def slug(text: str, fallback: str = "chat", max_len: int = 50) -> str:
    """ASCII, lower-case, dash-separated: safe in a Content-Disposition filename."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:max_len].strip("-")
    return out or fallback


def _when(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC") if ts else ""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _footnote(label: str, cite: dict[str, Any]) -> str:
    where = [cite.get("title") or cite.get("file") or "source"]
    if cite.get("page"):
        where.append(f"page {cite['page']}")
    if cite.get("section"):
        where.append(f"section {_one_line(cite['section'])}")
    line = f"[^{label}]: " + ", ".join(str(w) for w in where)
    if cite.get("file") and cite.get("file") != cite.get("title"):
        line += f" ({cite['file']})"
    if cite.get("snippet"):
        line += f" — “{_one_line(cite['snippet'])[:300]}”"
    return line


def _code_blocks(runs: list[dict[str, Any]]) -> list[str]:
    parts: list[str] = []
    for run in runs:
        lang = (run.get("language") or "").lower()
        if run.get("code"):
            parts.append(fence(run["code"], "python" if lang in ("", "python", "python3") else lang))
        outcome = run.get("outcome") or "unknown"
        took = f", {run['duration_ms']} ms" if run.get("duration_ms") is not None else ""
        parts.append(f"*Result: {outcome}{took}*")
        if run.get("stdout"):
            parts.append(fence(run["stdout"], "text"))
        if run.get("stderr"):
            parts.append("stderr:\n\n" + fence(run["stderr"], "text"))
        if run.get("message"):
            parts.append(f"> {_one_line(run['message'])}")
    return parts


def to_markdown(chat: dict[str, Any], turns: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    """`chat`, `turns`, `events` as the store returns them (rows)."""
    lines = [f"# {_one_line(chat['title'])}", ""]
    lines.append(f"- Chat: `{chat['id']}`")
    lines.append(f"- Started: {_when(chat['created_at'])}")
    lines.append(f"- Status: {chat['status']}")
    if chat.get("topics"):
        lines.append("- Topics: " + ", ".join(chat["topics"]))
    if chat.get("forked_from"):
        src = chat["forked_from"]
        lines.append(f"- Forked from chat `{src.get('chat_id')}` at turn `{src.get('turn_id')}`")
    lines.append(f"- Turns: {len(turns)}")
    lines += ["", "---", ""]
    footnote_no = 0
    for turn in turns:
        header = f"**{_SPEAKER.get(turn['role'], turn['role'])}** · {_when(turn['created_at'])}"
        if turn.get("modality") == "voice":
            header += " · voice"
        if turn.get("status") and turn["status"] != "complete":
            header += f" · {turn['status']}"
        lines += [header, ""]
        # Number this turn's citations document-wide: [n] in the text becomes a footnote reference.
        labels: dict[int, str] = {}
        for cite in turn.get("citations") or []:
            if isinstance(cite, dict) and isinstance(cite.get("n"), int) and cite["n"] not in labels:
                footnote_no += 1
                labels[cite["n"]] = str(footnote_no)
        content = _CITE_RE.sub(lambda m: f"[^{labels[int(m.group(1))]}]" if int(m.group(1)) in labels
                               else m.group(0), turn["content"] or "")
        lines += [content.strip() or "*(no text)*", ""]
        code_parts = _code_blocks(turn.get("code") or [])
        if code_parts:
            lines += [*(p + "\n" for p in code_parts)]
        cited = {c["n"]: c for c in turn.get("citations") or [] if isinstance(c, dict) and c.get("n") in labels}
        for n, label in labels.items():
            lines.append(_footnote(label, cited[n]))
        if labels:
            lines.append("")
    if events:
        lines += ["---", "", "## Events", ""]
        for event in events:
            lines.append(f"- {_when(event['created_at'])} — {event['kind']}")
    return "\n".join(lines).rstrip() + "\n"
