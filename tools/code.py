"""The code step: Gemini's code-execution tool when keyed, the local sandbox offline."""

from __future__ import annotations

import time

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from allin.models.context import CodeRun
from allin.models.retry import model_retrying
from allin.prompts import file_prompt
from tools.sandbox import SandboxLimits, extract_code_blocks, run_code

MAX_BLOCKS_PER_TURN = 3
RUNNABLE = {"python", "py", "python3", "bash", "sh"}


async def run_user_code(text: str, limits: SandboxLimits | None = None) -> list[CodeRun]:
    """Run the fenced blocks the user wrote (offline mode). No block → no run."""
    runs = []
    for language, code in extract_code_blocks(text)[:MAX_BLOCKS_PER_TURN]:
        if language.lower() not in RUNNABLE:
            runs.append(CodeRun(language=language, code=code, stdout="", stderr="", outcome="unavailable",
                                duration_ms=0, message=f"I can only run Python or shell here, not {language}."))
            continue
        result = await run_code(code, "python" if language.lower().startswith("py") else "bash", limits)
        runs.append(CodeRun(language=result.language, code=result.code, stdout=result.stdout,
                            stderr=result.stderr, outcome=result.outcome, duration_ms=result.duration_ms,
                            message=result.message))
    return runs


def _outcome(value: object) -> str:
    # langchain-google-genai reports 1 for OUTCOME_OK and 2 for failures.
    if value in (1, "OUTCOME_OK", "ok"):
        return "ok"
    if value in ("OUTCOME_DEADLINE_EXCEEDED",):
        return "timeout"
    return "error"


async def run_gemini_code(model: BaseChatModel, text: str, history: list[BaseMessage], *,
                          max_retries: int = 0) -> list[CodeRun]:
    """One Gemini call with the code-execution tool: the model writes and runs the code server-side.

    Transient errors (rate limits, 5xx, timeouts) are retried up to `max_retries` times with backoff.
    """
    bound = model.bind_tools([{"code_execution": {}}])
    recent = history[-6:]
    while recent and not isinstance(recent[0], HumanMessage):  # Gemini wants the user to speak first
        recent = recent[1:]
    messages = [SystemMessage(file_prompt("code")), *recent, HumanMessage(text)]
    async for attempt in model_retrying(max_retries):
        with attempt:
            started = time.perf_counter()
            response = await bound.ainvoke(messages)
            elapsed = int((time.perf_counter() - started) * 1000)
    return _runs_from_blocks(response.content if isinstance(response.content, list) else [], elapsed)


def _runs_from_blocks(blocks: list, elapsed_ms: int) -> list[CodeRun]:
    """CodeRuns from the response's content blocks: each executable_code, then its result."""
    runs: list[CodeRun] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "executable_code":
            runs.append(CodeRun(language=str(block.get("language", "python")).lower().replace("language.", ""),
                                code=block.get("executable_code", ""), stdout="", stderr="",
                                outcome="ok", duration_ms=elapsed_ms))
        elif block.get("type") == "code_execution_result" and runs:
            outcome = _outcome(block.get("outcome"))
            output = str(block.get("code_execution_result", ""))
            last = runs[-1]
            last.outcome = outcome
            if outcome == "ok":
                last.stdout = output
            else:
                last.stderr = output
    return runs
