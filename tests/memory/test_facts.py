"""The offline filter: which sentences of a message are lasting facts the user states about themselves."""

from __future__ import annotations

import pytest

from allin.memory.facts import MAX_FACTS_PER_MESSAGE, first_person, mentions_self, self_statements


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("I'm on the payments team", ["I'm on the payments team."]),
        ("Hi! btw I'm on the payments team. How do I deploy?", ["I'm on the payments team."]),
        ("i\u2019m on the payments team, thanks!", ["I'm on the payments team."]),  # phone apostrophe
        ("I am a senior backend engineer.", ["I am a senior backend engineer."]),
        ("Hey Allin, I'm Sam", ["I'm Sam."]),
        ("call me Sam", ["Call me Sam."]),
        ("please remember my timezone is CET", ["My timezone is CET."]),
        ("Remember that I joined last week.", ["I joined last week."]),
        ("My manager is Dana Levi", ["My manager is Dana Levi."]),
        ("I work on the ledger service. I prefer Go over Java.",
         ["I work on the ledger service.", "I prefer Go over Java."]),
        ("I use vim", ["I use vim."]),
        ("My favourite editor is Neovim", ["My favourite editor is Neovim."]),
    ],
)
def test_first_person_statements_are_kept_as_clean_sentences(text, facts):
    assert self_statements(text) == facts


@pytest.mark.parametrize(
    "text",
    [
        "which team am I on?",
        "which team am I on",  # a question without its question mark
        "what is my team",
        "How do I deploy to production?",
        "Tell me about code reviews",  # a request
        "Run the tests for me",
        "I'm tired.",  # a passing state
        "I'm stuck on a failing test",
        "I'm in a meeting",
        "my service is down",
        "I'm not on the payments team",
        "I like this answer",
        "I'd like to know how to deploy",
        "call me please",
        "my password is hunter2",  # never store secrets
        "My API key is abc123",
        "```python\nmy_name = 'x'  # my name is x\n```",  # code is not a statement
        "",
    ],
)
def test_questions_commands_states_and_secrets_are_not_kept(text):
    assert self_statements(text) == []


def test_a_long_message_keeps_at_most_a_few_facts_and_no_repeats():
    text = " ".join(f"I work on service {n}." for n in range(10)) + " I work on service 0."
    facts = self_statements(text)
    assert len(facts) == MAX_FACTS_PER_MESSAGE
    assert len({f.lower() for f in facts}) == len(facts)


def test_mentions_self_decides_whether_gemini_is_asked():
    assert mentions_self("As a new backend engineer, I want to get the payments repo running.")
    assert mentions_self("We use trunk-based development on my team.")
    assert not mentions_self("How fast should code reviews be?")
    assert not mentions_self("How do I deploy?")  # first person, but a question
    assert not mentions_self("Summarise the review guide.")


@pytest.mark.parametrize(
    ("fact", "said"),
    [
        ("User works on the payments team", "I work on the payments team"),
        ("User is on the payments team", "I am on the payments team"),
        ("User's manager is Dana Levi", "My manager is Dana Levi"),
        ("The user prefers Python", "I prefer Python"),
        ("User studies Rust", "I study Rust"),
        ("Dana is the user's manager", "Dana is my manager"),
        ("I'm on the payments team.", "I'm on the payments team."),  # already first person
        ("Users are great", "Users are great"),
    ],
)
def test_facts_about_the_user_are_embedded_as_the_user_would_say_them(fact, said):
    assert first_person(fact) == said
