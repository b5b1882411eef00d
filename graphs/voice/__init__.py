"""Voice sessions for `/ws`: offline (`session`: VAD → local STT → assistant graph → local TTS) and
keyed (`live`: Gemini Live with `search_knowledge`). Both write voice turns into the chat's history."""
