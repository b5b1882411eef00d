"""Answers worth a second look, across all users (admin review only).

Two kinds: answers a user rated down (feedback -1), and knowledge questions
Allin could not answer from the documents (a knowledge-route answer with no
citation, or one saying it couldn't find the answer). They feed the admin's
feedback page and `allin eval --from-feedback`, which turns them into a
draft evaluation dataset.

Unlike every other query on chats, these read every user's turns: callers
must be admin-only (the route checks the role; the CLI runs as the operator).
"""

from __future__ import annotations

from typing import Literal

import psycopg

ReviewKind = Literal["all", "low_rated", "unanswered"]

# The offline answerer's wording (allin.models.extractive.NOT_FOUND) and what the system prompt asks
# Gemini to say ("I couldn't find this in the team's documents"), typographic apostrophe included.
_NOT_FOUND_RE = r"could(n't|n’t| not) find"

_SQL = """
SELECT a.id AS turn_id, a.seq, a.chat_id, u.name AS user_name, q.content AS question, a.content AS answer,
       a.route, jsonb_array_length(a.citations) AS citation_count, a.prompt_version, a.created_at,
       f.rating, f.comment,
       coalesce(f.rating = -1, false) AS low_rated,
       (a.route = 'knowledge' AND a.status = 'complete'
        AND (jsonb_array_length(a.citations) = 0 OR a.content ~* %(not_found)s)) AS unanswered
FROM chat_turns a
JOIN users u ON u.id = a.user_id
LEFT JOIN chat_turns q ON q.id = a.reply_to
LEFT JOIN feedback f ON f.turn_id = a.id
WHERE a.role = 'assistant'
  AND (%(before)s::bigint IS NULL OR a.seq < %(before)s::bigint)
  AND {kind_filter}
ORDER BY a.seq DESC
LIMIT %(limit)s
"""

_LOW_RATED = "coalesce(f.rating = -1, false)"
_UNANSWERED = ("(a.route = 'knowledge' AND a.status = 'complete'"
               " AND (jsonb_array_length(a.citations) = 0 OR a.content ~* %(not_found)s))")
_FILTERS: dict[str, str] = {
    "low_rated": _LOW_RATED,
    "unanswered": _UNANSWERED,
    "all": f"({_LOW_RATED} OR {_UNANSWERED})",
}


async def review_items(conn: psycopg.AsyncConnection, *, kind: ReviewKind = "all", limit: int = 50,
                       before_seq: int | None = None) -> list[dict]:
    """Newest first; `before_seq` continues a page (the last item's `seq`)."""
    if kind not in _FILTERS:
        raise ValueError(f"unknown kind {kind!r}")
    cur = await conn.execute(
        _SQL.format(kind_filter=_FILTERS[kind]),
        {"not_found": _NOT_FOUND_RE, "before": before_seq, "limit": limit},
    )
    rows = await cur.fetchall()
    for row in rows:
        row["reasons"] = [r for r in ("low_rated", "unanswered") if row[r]]
    return rows


def draft_case(item: dict) -> dict:
    """A dataset line (graphs/evals) for a reviewer to complete: the question, and where it came from."""
    return {
        "id": f"feedback-{str(item['turn_id'])[:8]}",
        "question": item["question"] or "",
        "route": item["route"] if item["route"] in ("knowledge", "code", "chat", "identity") else None,
        "expected_docs": [],
        "expected_phrases": [],
        "tags": ["from-feedback", *item["reasons"]],
        "source": {
            "turn_id": str(item["turn_id"]),
            "chat_id": str(item["chat_id"]),
            "reasons": item["reasons"],
            "rating": item["rating"],
            "comment": item["comment"],
            "answer": item["answer"],
            "prompt_version": item["prompt_version"],
            "created_at": item["created_at"].isoformat() if item["created_at"] else None,
        },
    }
