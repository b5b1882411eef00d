"""A protocol-faithful fake of the Gemini API (REST, Files, Live) for tests.

Use the `fake_gemini` pytest fixture (tests/fake_gemini/fixtures.py); see
that module's docstring for the script and journal API.
"""

from .fake import DEFAULT_KEY, FakeGemini, running
from .script import (Audio, Close, CodeExecution, Delay, Embedding, Entry, Error, FunctionCall,
                     GoAway, Interrupted, Json, Parts, Reply, SessionResumptionUpdate, Text,
                     ToolCall, Transcript)

__all__ = [
    "DEFAULT_KEY", "Audio", "Close", "CodeExecution", "Delay", "Embedding", "Entry", "Error",
    "FakeGemini", "FunctionCall", "GoAway", "Interrupted", "Json", "Parts", "Reply",
    "SessionResumptionUpdate", "Text", "ToolCall", "Transcript", "running",
]
