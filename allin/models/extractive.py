"""The offline chat model: answers by quoting retrieved passages, never by generating.

It reads the turn message built by `context.build_turn_message` and answers
by route: identity from the persona, knowledge by picking the passages'
most relevant sentences (in document order, each with its [n] citation),
code by reporting the runs, chat from the user's memories. Everything is
deterministic. Passages are only ever quoted: nothing in them is obeyed,
and the system message is never echoed.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Any

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from allin.models.context import CodeRun, Passage, TurnContext, parse_turn_message
from allin.models.rules import asks_about_user, is_farewell, is_greeting, is_identity_question, is_self_fact, is_thanks
from allin.models.sentences import Unit, split_units
from allin.models.text import content_words, embed_texts, overlap

NOT_FOUND = "I couldn't find this in the team's documents."

# Sentences that address an AI rather than a reader: documents are data, so these are
# neither obeyed nor repeated (quoting them would only relay the attack).
_INJECTION_RE = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompts?|rules|guidelines)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bnew instructions\b|\bdeveloper mode\b"
    r"|\b(reveal|print|show|repeat|leak)\b.{0,30}\b(prompt|instructions|secrets?|api key)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Scored:
    source: int  # index into the turn's quotable sources (passages, then attachments)
    unit: Unit
    score: float


def _message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = (p if isinstance(p, str) else str(p.get("text", "")) for p in content if isinstance(p, (str, dict)))
    return "".join(parts)


def _fence(text: str, info: str = "") -> str:
    """A fenced block that the text cannot close early (fence longer than any ``` inside)."""
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


class ExtractiveChatModel(BaseChatModel):
    """Answers from the turn context without a generative model (offline mode)."""

    embedder: Any = Field(exclude=True)  # an allin.models.text.Embedder
    persona_name: str = "Allin"
    team: str = "Team 8"
    max_sentences: int = 5
    min_similarity: float = 0.45  # best score below this = nothing relevant (tuned on MiniLM, see tests)
    relative_window: float = 0.2  # also drop units scoring this far below the best one
    lexical_weight: float = 0.15  # bonus for sharing the question's content words
    heading_weight: float = 0.1  # bonus for sitting under a heading that matches the question
    memory_min_similarity: float = 0.3
    cache_size: int = 4096  # embedded units kept: the same passages come back turn after turn

    _cache: OrderedDict[str, np.ndarray] = PrivateAttr(default_factory=OrderedDict)
    _cache_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "allin-extractive"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"persona_name": self.persona_name, "team": self.team, "max_sentences": self.max_sentences}

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any) -> ExtractiveChatModel:
        """Tools are ignored offline; returning self keeps graph code that binds tools working."""
        return self

    # --- LangChain entry points --------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.answer(messages)))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = await asyncio.to_thread(self.answer, messages)  # embedding is CPU work
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in _pieces(self.answer(messages)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        text = await asyncio.to_thread(self.answer, messages)
        for piece in _pieces(text):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
            await asyncio.sleep(0)  # let the event loop send frames between tokens

    # --- answering ---------------------------------------------------------------------

    def answer(self, messages: list[BaseMessage]) -> str:
        """The full answer text for a conversation whose last human message is the turn."""
        last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = _message_text(last) if last is not None else ""
        ctx = parse_turn_message(text) or TurnContext(question=text.strip(), route="chat")
        if ctx.route == "identity":
            return self._identity(ctx)
        if ctx.route == "code":
            return self._code(ctx)
        if ctx.route == "knowledge":
            return self._knowledge(ctx)
        return self._chat(ctx)

    def _identity(self, ctx: TurnContext) -> str:
        hello = "Hi! " if is_greeting(ctx.question) else ""
        return (
            f"{hello}I'm {self.persona_name}, from {self.team} — an onboarding assistant for new engineers. "
            "Here's what I can do:\n"
            "- answer questions about how things are done here from the team's documents, "
            "with numbered citations to the document and page;\n"
            "- run code snippets you paste in a fenced block and show you the output;\n"
            "- remember what you tell me about yourself, across chats;\n"
            "- talk by voice as well as text.\n"
            'Try asking something like "How fast should code reviews be?"'
        )

    def _code(self, ctx: TurnContext) -> str:
        if not ctx.code_runs:
            text = "There was no code to run. Paste it in a fenced block (```python … ```) and ask me to run it."
            found = self._quote(ctx) if ctx.passages else None
            return f"{text}\n\n{found}" if found else text
        return "\n\n".join(_report_run(run, i, len(ctx.code_runs)) for i, run in enumerate(ctx.code_runs, 1))

    def _knowledge(self, ctx: TurnContext) -> str:
        found = self._quote(ctx)
        if found:
            return found
        return (
            f"{NOT_FOUND} Try rephrasing with the words the docs would use, "
            "or ask your team lead to add a document that covers it."
        )

    def _chat(self, ctx: TurnContext) -> str:
        question = ctx.question
        if is_identity_question(question) or (is_greeting(question) and len(question.split()) <= 4):
            return self._identity(ctx)
        if asks_about_user(question):
            remembered = self._relevant_memories(question, ctx.memories, for_self_question=True)
            if len(remembered) == 1:
                return f"You told me: {_sentence(remembered[0])}"
            if remembered:
                return "You told me:\n" + "\n".join(f"- {m}" for m in remembered)
            return "You haven't told me that yet. Tell me and I'll remember it across our chats."
        if is_thanks(question):
            return "You're welcome! Ask me anything else about how things are done here."
        if is_farewell(question):
            return "Bye for now. This chat is saved, so you can pick it up again later."
        if ctx.passages or ctx.attachments:
            found = self._quote(ctx)
            if found:
                return found
        if is_self_fact(question):
            return "Got it, thanks for telling me."
        return (
            "I can help with how things are done here: ask me a question and I'll answer from the "
            "team's documents with citations, paste code in a fenced block and I'll run it, or tell me "
            "about yourself and I'll remember it."
        )

    # --- extractive core ---------------------------------------------------------------

    def _quote(self, ctx: TurnContext) -> str | None:
        """The most relevant units of passages/attachments with citations, or None if nothing fits."""
        sources: list[Passage | str] = [*ctx.passages, *ctx.attachments]
        units = [
            (i, replace(u, heading=u.heading or _section(src)))
            for i, src in enumerate(sources)
            for u in split_units(_source_text(src))
        ]
        units = [(i, u) for i, u in units if _quotable(u)]
        if not units or not ctx.question.strip():
            return None
        chosen = self._select(ctx.question, units)
        if not chosen:
            return None
        body = _render(chosen, sources)
        cited = sorted({s.source for s in chosen if s.source < len(ctx.passages)}, key=lambda i: ctx.passages[i].n)
        parts = ["From the team docs:" if cited else "From what you attached:", body]
        if cited:
            parts.append("Sources:\n" + "\n".join(_source_line(ctx.passages[i]) for i in cited))
        remembered = self._relevant_memories(ctx.question, ctx.memories)
        if remembered:
            parts.append("What I remember about you:\n" + "\n".join(f"- {m}" for m in remembered))
        return "\n\n".join(parts)

    def _select(self, question: str, units: list[tuple[int, Unit]]) -> list[_Scored]:
        """Top units by score (see `_unit_scores`), above the thresholds, back in document order."""
        scored = [_Scored(i, u, score) for (i, u), score in zip(units, self._unit_scores(question, units), strict=True)]
        best = max(s.score for s in scored)
        if best < self.min_similarity:
            return []
        floor = max(self.min_similarity, best - self.relative_window)
        top = sorted((s for s in scored if s.score >= floor), key=lambda s: -s.score)[: self.max_sentences]
        return sorted(top, key=lambda s: (s.source, s.unit.pos))

    def _unit_scores(self, question: str, units: list[tuple[int, Unit]]) -> list[float]:
        """Cosine to the question of the unit alone and of "heading: unit" (averaged), plus
        bonuses for shared words and for a matching heading.

        A sentence alone often lacks its subject ("One business day is the maximum…"
        answers "how fast" only under its heading); the heading alone would rank
        every sentence of a section equally, so both views are used.
        """
        q = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        views = [(u.scoring_text, f"{u.heading}: {u.scoring_text}" if u.heading else None) for _, u in units]
        headings = [u.heading for _, u in units if u.heading]
        texts = list(dict.fromkeys([t for pair in views for t in pair if t] + headings))
        sims = dict(zip(texts, (self._embed(texts) @ q).tolist(), strict=True))
        q_words = content_words(question)
        scores = []
        for (_, u), (plain, in_context) in zip(units, views, strict=True):
            cosine = (sims[plain] + sims[in_context]) / 2 if in_context else sims[plain]
            heading_bonus = self.heading_weight * max(0.0, sims[u.heading]) if u.heading else 0.0
            scores.append(cosine + self.lexical_weight * overlap(q_words, u.scoring_text) + heading_bonus)
        return scores

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings of `texts`, from a bounded LRU cache where possible."""
        with self._cache_lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            known.update(zip(missing, embed_texts(self.embedder, missing), strict=True))
            with self._cache_lock:
                self._cache.update((t, known[t]) for t in missing)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    def _relevant_memories(self, question: str, memories: list[str], *, for_self_question: bool = False) -> list[str]:
        if not memories:
            return []
        if for_self_question and re.search(r"\b(about me|know about|remember about)\b", question, re.IGNORECASE):
            return list(memories)  # "what do you know about me?" wants everything
        q = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        sims = self._embed(memories) @ q
        q_words = content_words(question)
        scores = [float(s) + self.lexical_weight * overlap(q_words, m) for s, m in zip(sims, memories, strict=True)]
        return [m for m, s in zip(memories, scores, strict=True) if s >= self.memory_min_similarity]


# --- rendering -------------------------------------------------------------------------


def _pieces(text: str) -> list[str]:
    """Word and whitespace pieces whose concatenation is `text` (the streamed tokens)."""
    return [p for p in re.split(r"(\s+)", text) if p]


def _source_text(source: Passage | str) -> str:
    return source.content if isinstance(source, Passage) else source


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _section(source: Passage | str) -> str:
    """The heading a passage sits under: the last step of a section path ("Doc > Part > Heading").
    The leading steps (often the document title) are shared by every passage of the document,
    so they would make all headings look alike to the question."""
    section = (source.section or "") if isinstance(source, Passage) else ""
    return section.rsplit(" > ", 1)[-1].strip()


def _quotable(unit: Unit) -> bool:
    """Leave out what reads badly alone (list lead-ins, fragments) and text aimed at an AI."""
    if _INJECTION_RE.search(unit.text):
        return False
    fragment = unit.text.endswith(":") or len(unit.text.split()) < 4
    return not (unit.kind == "sentence" and fragment)


def _label(source: Passage | str, index: int, n_passages: int) -> str:
    return f"[{source.n}]" if isinstance(source, Passage) else f"(your attachment {index - n_passages + 1})"


def _render(chosen: list[_Scored], sources: list[Passage | str]) -> str:
    """Chosen units in order: a source's sentences run on as a paragraph, rows gather under their header."""
    n_passages = sum(isinstance(src, Passage) for src in sources)

    def group_key(s: _Scored) -> tuple:
        if s.unit.kind == "row":
            return (s.source, "row", s.unit.table_header)
        if s.unit.kind == "code":
            return (s.source, "code", s.unit.pos)
        return (s.source, "sentence")

    blocks = []
    for key, group in groupby(chosen, key=group_key):
        items = list(group)
        label = _label(sources[key[0]], key[0], n_passages)
        if key[1] == "row":
            header = list(items[0].unit.table_header)
            if len(header) == 1:  # a header without a separator: add one so it renders as a table
                header.append("|" + "---|" * (header[0].strip().strip("|").count("|") + 1))
            blocks.append("\n".join(header + [s.unit.text for s in items]) + f"\n\n{label}")
        elif key[1] == "code":
            blocks.append(f"{items[0].unit.text}\n{label}")
        else:
            blocks.append(" ".join(f"{s.unit.text} {label}" for s in items))
    return "\n\n".join(blocks)


def _source_line(p: Passage) -> str:
    where = f", p. {p.page}" if p.page is not None else (f", section “{p.section}”" if p.section else "")
    return f"[{p.n}] {p.title or p.file}{where}"


# Sandbox outcomes (tools/sandbox) and Gemini's code-execution outcomes, in words.
_OK = "finished OK"
_OUTCOMES = {
    "ok": _OK,
    "outcome_ok": _OK,
    "error": "failed",
    "outcome_failed": "failed",
    "timeout": "ran out of time",
    "outcome_deadline_exceeded": "ran out of time",
    "memory": "ran out of memory",
    "output_limit": "printed more than the output limit",
    "killed": "was killed",
}


def _report_run(run: CodeRun, index: int, total: int) -> str:
    """One run: the verdict, the limit/why sentence, then stdout and stderr in fenced blocks."""
    verdict = _OUTCOMES.get(run.outcome.strip().lower(), f"stopped ({run.outcome})")
    which = f"Run {index} of {total}: " if total > 1 else ""
    language = run.language or "code"
    if run.outcome.strip().lower() == "unavailable":
        return f"{which}I couldn't run the {language} code. {run.message}".rstrip()
    lines = [f"{which}I ran the {language} code ({run.duration_ms} ms): it {verdict}."]
    if run.message and verdict != _OK:  # on success the sandbox's message is just "Finished."
        lines.append(run.message)
    if run.stdout:
        lines.append("Output:\n" + _fence(run.stdout, "text"))
    if run.stderr:
        title = "It also wrote to stderr:" if verdict == _OK else "Error:"
        lines.append(title + "\n" + _fence(run.stderr, "text"))
    if not run.stdout and not run.stderr and verdict == _OK:
        lines.append("It printed nothing.")
    return "\n".join(lines)
