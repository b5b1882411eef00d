"""What the graph's nodes call. The app passes a real implementation; tests may pass their own."""

from __future__ import annotations

from typing import Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from allin.models.context import AttachedFile, CodeRun, Passage
from allin.prompts import Prompt
from graphs.assistant.context import Context
from graphs.assistant.state import Route


class AssistantDeps(Protocol):
    async def classify(self, text: str, history: list[BaseMessage]) -> Route: ...

    async def search(self, query: str, ctx: Context) -> list[Passage]: ...

    async def attach_files(self, passages: list[Passage], ctx: Context) -> list[AttachedFile]:
        """Files mode: the documents of the best passages as live Gemini files ([] = use the passages)."""
        ...

    async def run_code(self, text: str, history: list[BaseMessage], ctx: Context) -> list[CodeRun]: ...

    async def recall(self, query: str, ctx: Context) -> list[str]: ...

    async def attachment_texts(self, ctx: Context) -> list[str]: ...

    async def system_prompt(self) -> Prompt: ...

    def chat_model(self) -> BaseChatModel: ...

    @property
    def history_max_tokens(self) -> int: ...

    @property
    def history_max_turns(self) -> int: ...

    @property
    def max_model_retries(self) -> int: ...
