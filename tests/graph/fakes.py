"""Test doubles for the graph's dependencies (never for the database or Gemini)."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage

from allin.models.context import CodeRun, Passage, parse_turn_message
from allin.prompts import Prompt, file_prompt


class EchoContextModel(GenericFakeChatModel):
    """Answers with the route and the passages' first numbers, so tests can see what synthesize sent."""

    seen: list = []

    def __init__(self, **kw):
        super().__init__(messages=iter(()), **kw)

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs):
        from langchain_core.outputs import ChatGeneration, ChatResult

        self.seen.append(messages)
        ctx = parse_turn_message(messages[-1].content)
        cites = " ".join(f"[{p.n}]" for p in ctx.passages) if ctx else ""
        runs = " ".join(r.stdout.strip() for r in ctx.code_runs) if ctx else ""
        text = " ".join(x for x in (f"route={ctx.route if ctx else '?'}", cites, runs) if x)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def bind_tools(self, tools, **kwargs):
        return self


class FakeDeps:
    history_max_tokens = 2000
    history_max_turns = 20
    max_model_retries = 1

    def __init__(self, model=None, passages=None):
        self.model = model or EchoContextModel()
        self.passages = passages if passages is not None else [
            Passage(n=1, document_id="d1", title="Speed", file="speed.pdf", content="Reviews within one business day.", page=2)
        ]
        self.calls: list[str] = []

    async def classify(self, text, history):
        self.calls.append("classify")
        if "```" in text:
            return "code"
        if "who are you" in text.lower():
            return "identity"
        return "knowledge"

    async def search(self, query, ctx):
        self.calls.append("search")
        return self.passages

    async def run_code(self, text, history, ctx):
        self.calls.append("run_code")
        return [CodeRun(language="python", code="print(2)", stdout="2\n", stderr="", outcome="ok", duration_ms=5)]

    async def recall(self, query, ctx):
        return ["I am on the payments team"]

    async def attachment_texts(self, ctx):
        return []

    async def system_prompt(self):
        return Prompt("system", file_prompt("system"), 0)

    def chat_model(self):
        return self.model
