"""The graph's nodes: small async functions returning partial state."""

from __future__ import annotations

import dataclasses
import re

from langchain_core.messages import (AIMessage, BaseMessage, HumanMessage, RemoveMessage, SystemMessage,
                                     trim_messages)
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from allin.models.context import (AttachedFile, CodeRun, Passage, TurnContext, build_files_turn_content,
                                  build_turn_message)
from allin.models.errors import is_transient_model_error
from allin.models.gemini_client import api_status
from allin.models.retry import model_retrying
from allin.prompts import file_prompt
from graphs.assistant.context import Context
from graphs.assistant.deps import AssistantDeps
from graphs.assistant.state import State

_CITE_RE = re.compile(r"\[(\d{1,3})\]")
# State fields that belong to one turn, with their empty values.
PER_TURN_FIELDS: dict[str, object] = {
    "passages": [], "files": [], "code_runs": [], "memories": [], "citations": [], "attachments": [], "error": None,
}


def only_changes(state: State, update: dict) -> dict:
    """`update` less the fields whose value the state already holds: a field written gets a new
    version even when nothing changed, and a list field costs the checkpoint another blob
    (serialised, inserted, indexed)."""
    return {key: value for key, value in update.items() if key not in state or state[key] != value}


def last_user_text(state: State) -> str:
    for msg in reversed(state["messages"]):
        if isinstance(msg, HumanMessage):
            return msg.text if hasattr(msg, "text") and isinstance(msg.text, str) else str(msg.content)
    return ""


def history_before_last_user(state: State) -> list[BaseMessage]:
    msgs = list(state["messages"])
    for i in range(len(msgs) - 1, -1, -1):
        if isinstance(msgs[i], HumanMessage):
            return msgs[:i]
    return msgs


def make_nodes(deps: AssistantDeps):
    """Nodes closed over their dependencies (models, search, sandbox, memory)."""

    async def classify(state: State, runtime: Runtime[Context]) -> dict:
        text = last_user_text(state)
        route = await deps.classify(text, history_before_last_user(state))
        # Reset per-turn fields: a new turn must not reuse the last turn's passages or code.
        # Only those not already empty: each written field costs a blob in the checkpoint.
        stale = {key: empty for key, empty in PER_TURN_FIELDS.items() if key not in state or state[key]}
        return {"route": route, **stale}

    async def retrieve(state: State, runtime: Runtime[Context]) -> dict:
        passages = await deps.search(last_user_text(state), runtime.context)
        update: dict = {"passages": [dataclasses.asdict(p) for p in passages]}
        if runtime.context.retrieval_mode == "files" and passages:
            files = await deps.attach_files(passages, runtime.context)
            if files:
                update["files"] = [dataclasses.asdict(f) for f in files]
        return update

    async def code_execute(state: State, runtime: Runtime[Context]) -> dict:
        runs = await deps.run_code(last_user_text(state), history_before_last_user(state), runtime.context)
        return {"code_runs": [dataclasses.asdict(r) for r in runs]}

    async def recall(state: State, runtime: Runtime[Context]) -> dict:
        memories = await deps.recall(last_user_text(state), runtime.context)
        attachments = await deps.attachment_texts(runtime.context)
        return only_changes(state, {"memories": memories, "attachments": attachments})

    async def synthesize(state: State, runtime: Runtime[Context]) -> dict:
        prompt = await deps.system_prompt()
        passages = [Passage(**p) for p in state.get("passages") or []]
        ctx = TurnContext(
            question=last_user_text(state),
            route=state.get("route") or "chat",
            passages=passages,
            code_runs=[CodeRun(**c) for c in state.get("code_runs") or []],
            memories=list(state.get("memories") or []),
            attachments=list(state.get("attachments") or []),
        )
        earlier = history_before_last_user(state)
        history = trim_messages(
            earlier[-2 * deps.history_max_turns:],
            max_tokens=deps.history_max_tokens,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
            allow_partial=False,
        )
        # What the model can no longer see leaves the thread: every turn loads and stores the whole
        # message list, so an unbounded thread costs more each turn (chat_turns keeps the whole chat).
        forgotten = [RemoveMessage(id=m.id) for m in earlier[:len(earlier) - len(history)] if m.id]
        # Files mode: the attached documents replace the passages (numbered the same way for citations).
        files = [AttachedFile(**f) for f in state.get("files") or []]
        turn = build_files_turn_content(ctx, files, file_prompt("files")) if files else build_turn_message(ctx)
        messages = [SystemMessage(prompt.text), *history, HumanMessage(turn)]
        answer = None
        cache = await deps.files_cache(prompt.text, turn[:-1], files) if files and hasattr(deps, "files_cache") else None
        if cache:
            # The cache holds the system prompt and the files: the request names it and sends the rest.
            try:
                answer = await _stream_answer(deps, [*history, HumanMessage(turn[-1:])], runtime.stream_writer,
                                              cached_content=cache)
            except Exception as exc:
                if (api_status(exc) or (exc.__cause__ and api_status(exc.__cause__))) not in (403, 404):
                    raise
                await deps.forget_files_cache(cache)  # gone early: answer without it, a new one next turn
        if answer is None:
            answer = await _stream_answer(deps, messages, runtime.stream_writer)
        used = {int(n) for n in _CITE_RE.findall(answer)}
        citations = [source.citation() for source in (files or passages) if source.n in used]
        reply = AIMessage(content=answer, additional_kwargs={"citations": citations, "prompt_version": prompt.version})
        # The runner reads the prompt version from the reply, so an unchanged one need not be written.
        return {"messages": [*forgotten, reply],
                **only_changes(state, {"citations": citations, "prompt_version": prompt.version})}

    return classify, retrieve, code_execute, recall, synthesize


async def _stream_answer(deps: AssistantDeps, messages: list[BaseMessage], write: StreamWriter,
                         **call_options) -> str:
    """Stream the model's answer; retry transient errors before any token.

    Each piece goes out as a custom stream event `{"token": text}` (the runner streams `custom`: the
    `messages` mode hangs a callback handler on every step of the run to find the model's tokens,
    a tenth of a turn's CPU). LangGraph Studio's `messages` mode still sees the model's tokens.
    Once a token has reached the user a retry would repeat it, so a failure after that ends the turn.
    """
    model = deps.chat_model()
    started = False

    def retryable(exc: BaseException) -> bool:
        return not started and is_transient_model_error(exc)

    async for attempt in model_retrying(deps.max_model_retries, retryable=retryable):
        with attempt:
            parts: list[str] = []
            async for chunk in model.astream(messages, **call_options):
                piece = chunk.text if isinstance(chunk.text, str) else str(chunk.content)
                if piece:
                    started = True
                    parts.append(piece)
                    write({"token": piece})
            return "".join(parts)
    raise AssertionError("unreachable")
