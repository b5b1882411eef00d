"""Route classification: the local classifier's accuracy on held-out messages, and the model-backed
classifier's fallback."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda

from allin.models.classify_gemini import ModelRouteClassifier, RouteDecision, route_prompt
from allin.models.classify_local import EXAMPLES, LocalRouteClassifier
from allin.models.context import ROUTES, TurnContext, build_turn_message

# Held out: none of these is one of the classifier's built-in examples.
LABELLED: list[tuple[str, str]] = [
    ("How quickly am I expected to respond to a review request?", "knowledge"),
    ("What makes a small CL?", "knowledge"),
    ("What should the first line of a change description say?", "knowledge"),
    ("How do I handle reviewer comments I disagree with?", "knowledge"),
    ("Can a reviewer approve while leaving comments?", "knowledge"),
    ("What does the reviewer check for in terms of design?", "knowledge"),
    ("How should I review a change across time zones?", "knowledge"),
    ("What is considered an emergency in the review process?", "knowledge"),
    ("Hi, how do I set up the VPN on my laptop?", "knowledge"),
    ("Where do we keep the runbooks?", "knowledge"),
    ("What's the standard for test coverage on new code?", "knowledge"),
    ("Should I interrupt my coding to do a review?", "knowledge"),
    ("How are code review comments supposed to be phrased?", "knowledge"),
    ("Who needs to sign off before a schema migration?", "knowledge"),
    ("Explain the process for rolling back a bad deploy", "knowledge"),
    ("what is a CL", "knowledge"),
    ("How do I get my first change merged?", "knowledge"),
    ("Is it fine to send a huge refactoring as one review?", "knowledge"),
    ("Where is the on-call schedule?", "knowledge"),
    ("What is the coding style for Go?", "knowledge"),
    ("How should I name a test file?", "knowledge"),
    ("Is there a template for design docs?", "knowledge"),
    ("When is it ok to skip a code review?", "knowledge"),
    ("Tell me about the review process", "knowledge"),
    ("```python\nprint(2 + 2)\n```", "code"),
    ("run this: ```\nimport math\nprint(math.pi)\n```", "code"),
    ("Please execute print('hello world')", "code"),
    ("def f(x):\n    return x * 2\nprint(f(21))", "code"),
    ("What does this code output? for i in range(3): print(i)", "code"),
    ("Compute the sum of the squares from 1 to 100", "code"),
    ("Calculate 17 factorial", "code"),
    ("Can you evaluate this snippet and show stdout?", "code"),
    ("Generate a list of the first ten prime numbers", "code"),
    ("Run the following script and tell me if it errors", "code"),
    ("Find the bug: x = [1,2,3]; x[3]", "code"),
    ("Reverse the string 'onboarding' using Python", "code"),
    ("hello", "identity"),
    ("Hey there!", "identity"),
    ("who r u", "identity"),
    ("What is your name?", "identity"),
    ("what can you help me with?", "identity"),
    ("Are you an AI?", "identity"),
    ("Who created you?", "identity"),
    ("good evening", "identity"),
    ("What are you good at?", "identity"),
    ("Introduce yourself please", "identity"),
    ("Can you talk to me out loud?", "identity"),
    ("Do you keep track of our past chats?", "identity"),
    ("thank you so much", "chat"),
    ("I'm on the infrastructure team", "chat"),
    ("what team do I belong to?", "chat"),
    ("What do you know about me?", "chat"),
    ("My name is Jordan", "chat"),
    ("cool, thanks", "chat"),
    ("I prefer answers with examples", "chat"),
    ("bye!", "chat"),
    ("Do you remember where I work?", "chat"),
    ("What's my role?", "chat"),
    ("okay", "chat"),
    ("I'm based in Lisbon", "chat"),
    ("How's it going?", "chat"),
    ("Can you repeat that more briefly?", "chat"),
    ("Explain that again but shorter", "chat"),
    ("That's not what I asked", "chat"),
]

MIN_ACCURACY = 0.9


def test_labelled_set_is_held_out_and_covers_every_route() -> None:
    built_in = {e.lower() for examples in EXAMPLES.values() for e in examples}
    assert not [t for t, _ in LABELLED if t.lower() in built_in]
    assert len(LABELLED) >= 40
    assert {route for _, route in LABELLED} == set(ROUTES)


def test_local_classifier_accuracy(classifier) -> None:
    misses = []
    for text, expected in LABELLED:
        route, confidence = classifier.classify(text)
        assert 0.0 <= confidence <= 1.0
        if route != expected:
            misses.append((text, expected, route))
    accuracy = 1 - len(misses) / len(LABELLED)
    print(f"\nlocal route classifier: {accuracy:.1%} on {len(LABELLED)} held-out messages; misses: {misses}")
    assert accuracy >= MIN_ACCURACY, misses


def test_rules_decide_with_full_confidence(classifier) -> None:
    assert classifier.classify("```\nprint(1)\n```") == ("code", 1.0)
    assert classifier.classify("Who are you?") == ("identity", 1.0)
    assert classifier.classify("Which team am I on?") == ("chat", 1.0)
    assert classifier.classify("   ") == ("chat", 1.0)


async def test_unsure_means_knowledge(embedder, classifier) -> None:
    tiny = {"knowledge": ["How do we deploy?"], "code": ["Run this"], "identity": ["Who are you?"],
            "chat": ["Tell me more"]}
    unsure = LocalRouteClassifier(embedder, margin=1.0, examples=tiny)  # nothing clears a margin of 1
    assert unsure.classify("Tell me more")[0] == "knowledge"
    assert await classifier.aclassify("How big should a CL be?", []) == "knowledge"


class _Scripted(BaseChatModel):
    """A chat model whose structured output is fixed (or that fails), standing in for Gemini."""

    decision: Any = None
    seen: list = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])

    def with_structured_output(self, schema, **kwargs):
        def reply(messages):
            self.seen.append(messages)
            if isinstance(self.decision, Exception):
                raise self.decision
            return self.decision

        return RunnableLambda(reply)


async def test_model_classifier_uses_the_models_decision(embedder) -> None:
    scripted = _Scripted(decision=RouteDecision(route="code", reason="asks to compute"), seen=[])
    history = [HumanMessage(build_turn_message(TurnContext("How fast should reviews be?", "knowledge"))),
               AIMessage("Within one business day.")]
    router = ModelRouteClassifier(scripted, LocalRouteClassifier(embedder))
    assert await router.aclassify("and what is 2**10?", history) == "code"
    prompt = scripted.seen[0][-1].content
    # History reaches the model as plain text: the question, not the whole turn message.
    assert "user: How fast should reviews be?" in prompt and "<passages>" not in prompt
    assert prompt.endswith("<message>\nand what is 2**10?\n</message>")


async def test_model_classifier_falls_back_to_local_on_errors(classifier) -> None:
    local = classifier
    failing = ModelRouteClassifier(_Scripted(decision=TimeoutError("deadline"), seen=[]), local)
    assert await failing.aclassify("Who are you?", []) == "identity"
    malformed = ModelRouteClassifier(_Scripted(decision={"route": "weather"}, seen=[]), local)
    assert await malformed.aclassify("```\nprint(1)\n```", []) == "code"


def test_route_prompt_keeps_only_recent_history() -> None:
    history = [HumanMessage(f"question {i}") for i in range(10)]
    prompt = route_prompt("next", history)[-1].content
    assert "question 9" in prompt and "question 5" not in prompt
