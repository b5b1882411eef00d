"""Files mode (retrieval_mode=files): which documents a turn attaches as Gemini files.

The hybrid chunk search is the selection "by embeddings": the documents of its
best hits, best first, are the ones the model gets whole.
"""

from __future__ import annotations

from allin.models.context import Passage

# Whole documents are large (a PDF page is ~260 tokens): a few of them answer a question
# without burying it.
MAX_FILES = 3


def pick_documents(passages: list[Passage], limit: int = MAX_FILES) -> list[Passage]:
    """The best passage of each distinct document, in the search's order, at most `limit`."""
    best: dict[str, Passage] = {}
    for passage in passages:
        if len(best) == limit:
            break
        best.setdefault(passage.document_id, passage)
    return list(best.values())
