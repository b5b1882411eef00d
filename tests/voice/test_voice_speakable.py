"""Markdown answers -> sentences to speak."""

from __future__ import annotations

from allin.voice.speakable import CODE_NOTE, TABLE_NOTE
from allin.voice.tts import LocalTTS, split_sentences


def test_markdown_and_citations_are_stripped() -> None:
    answer = (
        "## Reviews\n\nReview **within one working day** [1]. "
        "Keep PRs *small* [2, 3]. Ask the [owners](http://x/y) [^4]."
    )
    assert split_sentences(answer) == [
        "Reviews.",
        "Review within one working day.",
        "Keep PRs small.",
        "Ask the owners.",
    ]


def test_code_blocks_become_a_note_said_once() -> None:
    answer = "Run this:\n\n```python\nprint('hi')\n```\n\n```bash\nls -la\n```\n\nThen push."
    assert split_sentences(answer) == ["Run this:", CODE_NOTE, "Then push."]


def test_lists_tables_inline_code_and_urls() -> None:
    answer = (
        "Steps:\n\n- run `make test`\n- open a PR\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "Docs at https://example.com/x?y=1 for more."
    )
    assert split_sentences(answer) == [
        "Steps:",
        "run make test.",
        "open a PR.",
        TABLE_NOTE,
        "Docs at the link in the chat for more.",
    ]


def test_abbreviations_do_not_end_sentences() -> None:
    assert split_sentences("Ask Dr. Lee, e.g. on Slack. Then wait! Done?") == [
        "Ask Dr. Lee, e.g. on Slack.",
        "Then wait!",
        "Done?",
    ]


def test_long_sentences_split_at_commas_then_words() -> None:
    long = (
        "When a change touches the database, the cache, the queue and billing, "
        "ask two reviewers, one from each owning team, and wait for both approvals before merging."
    )
    parts = split_sentences(long, max_chars=60)
    assert len(parts) > 2
    assert all(len(p) <= 60 for p in parts)
    assert " ".join(parts) == long  # nothing lost, nothing reordered
    assert parts[0].endswith(",")

    no_commas = " ".join(["word"] * 80)
    parts = split_sentences(no_commas, max_chars=50)
    assert all(len(p) <= 50 for p in parts) and " ".join(parts) == no_commas + "."


def test_nothing_speakable() -> None:
    assert split_sentences("") == []
    assert split_sentences("[1] [2]\n\n---\n\n![](img.png)") == []


def test_available_on_the_tts_class() -> None:
    assert LocalTTS.split_sentences("Hi there. Bye.") == ["Hi there.", "Bye."]


def test_a_trailing_source_list_is_not_read_out() -> None:
    answer = ("From the team docs:\n\nRespond within one business day. [2]\n\n"
              "Sources:\n[2] review_reviewer_speed, p. 1\n[3] review_reviewer_speed, p. 3")
    assert split_sentences(answer) == ["From the team docs:", "Respond within one business day.",
                                       "The sources are in the chat."]
    markdown = "Keep CLs small [1].\n\n**References:**\n\n- [1] Small CLs, p. 2\n- [2] Other, p. 1"
    assert split_sentences(markdown) == ["Keep CLs small.", "The sources are in the chat."]
