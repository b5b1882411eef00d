"""Which embedder the settings ask for: the packaged MiniLM by default, Gemini when chosen."""

from __future__ import annotations

from allin.config import Settings


def get_embedder(settings: Settings):
    from allin.knowledge.embeddings import GeminiEmbedder, get_local_embedder

    if settings.embedding_provider == "gemini":
        if not settings.gemini_enabled:
            raise RuntimeError("EMBEDDING_PROVIDER=gemini needs GOOGLE_API_KEY")
        from allin.models.gemini_client import make_genai_client

        return GeminiEmbedder(make_genai_client(settings), settings.gemini_embedding_model, settings.embedding_dim)
    if settings.embedding_dim != 384:
        raise RuntimeError("the local MiniLM embedder makes 384-d vectors: set EMBEDDING_DIM=384")
    return get_local_embedder()
