"""The offline route classifier: phrase rules first, then the nearest centroid of example questions.

Unsure means `knowledge`: a question that is neither clearly code, identity
nor small talk is most usefully answered from the team's documents.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
from langchain_core.messages import BaseMessage

from allin.models.context import ROUTES, Route
from allin.models.rules import rule_route
from allin.models.text import Embedder, embed_texts

# A few dozen typical messages per route; their mean embedding is the route's centroid.
EXAMPLES: dict[Route, tuple[str, ...]] = {
    "knowledge": (
        "How do I get my code reviewed?",
        "What is our process for deploying to production?",
        "How should I write a good commit message?",
        "What should a CL description contain?",
        "How long should I wait for a code review?",
        "What do reviewers look for in a change?",
        "How do we handle an emergency fix?",
        "What is the policy for on-call handoffs?",
        "Where is the documentation for the build system?",
        "How do I request access to the staging database?",
        "What are the coding standards for Python here?",
        "How big should a pull request be?",
        "What counts as an emergency change?",
        "How do I resolve a disagreement with my reviewer?",
        "When should I split a change into smaller ones?",
        "What is the release schedule?",
        "How do we name branches?",
        "Which testing framework does the team use?",
        "What does LGTM mean in a review?",
        "How do I set up my development environment?",
        "What are the steps to onboard onto the payments service?",
        "Who approves changes to the public API?",
        "How should review comments be written?",
        "What is the team's approach to technical debt?",
        "How do I navigate a large change as a reviewer?",
        "Is it ok to approve a change with unresolved comments?",
        "What's the expected response time for reviews?",
        "How are incidents reported and tracked?",
        "What should I do if the author pushes back on my feedback?",
        "Where can I find the architecture overview?",
    ),
    "code": (
        "Run this Python snippet for me",
        "What does this code print?",
        "Execute the following and show me the output",
        "Can you run print(sum(range(10)))?",
        "Calculate the factorial of 20",
        "Compute the average of 3, 7 and 12",
        "What is 2 to the power of 64?",
        "Why does this function raise a KeyError?",
        "Test this regex against a few strings",
        "Write and run a script that reverses a string",
        "Fix this traceback: TypeError: unsupported operand type",
        "Evaluate this expression: len('hello') * 3",
        "Sort this list in Python: [5, 2, 9, 1]",
        "How many days are between 2024-01-01 and 2024-03-15? compute it",
        "Parse this JSON and tell me the keys",
        "Generate the first 15 Fibonacci numbers",
        "Check whether 7919 is prime",
        "Convert 1500 seconds to minutes with code",
        "Debug this loop, it never ends",
        "Try this snippet and tell me what happens",
        "Run my unit test function",
        "Show me the output of this script",
        "Benchmark these two implementations",
        "What's the result of this SQL-like pandas filter?",
        "Count the words in this text with Python",
    ),
    "identity": (
        "Hello!",
        "Hi there",
        "Who are you?",
        "What's your name?",
        "What can you do?",
        "What are you able to help me with?",
        "Are you a bot?",
        "Who built you?",
        "Introduce yourself",
        "Tell me about yourself",
        "What is Allin?",
        "Good morning!",
        "How can you help a new engineer?",
        "Which team made you?",
        "Can you talk with voice?",
        "Do you have a memory?",
        "What are your capabilities?",
        "Hey, what do you do?",
        "Are you ChatGPT?",
        "Which model are you running on?",
    ),
    "chat": (
        "Thanks!",
        "Thank you, that helps",
        "Ok cool",
        "I'm on the payments team",
        "My name is Priya",
        "Which team am I on?",
        "What do you remember about me?",
        "Do you remember my name?",
        "I prefer short answers",
        "I joined last Monday",
        "Bye for now",
        "How are you today?",
        "That was helpful",
        "Can you say that more simply?",
        "Tell me more",
        "What did I tell you earlier?",
        "I work from the Berlin office",
        "Great, got it",
        "Sorry, I meant the other one",
        "Nice, you're fast",
        "Remember that I use VS Code",
        "Where do I work?",
        "I'm a backend engineer",
        "Never mind",
        "Lol",
    ),
}


class LocalRouteClassifier:
    """Rules, then nearest centroid (cosine) with a margin; knowledge when unsure."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        margin: float = 0.03,
        min_similarity: float = 0.3,
        examples: dict[Route, Sequence[str]] | None = None,
    ) -> None:
        self._embedder = embedder
        self._margin = margin
        self._min_similarity = min_similarity
        self._examples = examples or EXAMPLES
        self._centroids: np.ndarray | None = None  # rows in ROUTES order; built on first use
        self._lock = threading.Lock()

    def _route_centroids(self) -> np.ndarray:
        with self._lock:
            if self._centroids is None:
                rows = []
                for route in ROUTES:
                    mean = embed_texts(self._embedder, list(self._examples[route])).mean(axis=0)
                    rows.append(mean / (np.linalg.norm(mean) or 1.0))
                self._centroids = np.stack(rows).astype(np.float32)
            return self._centroids

    def classify(self, text: str) -> tuple[Route, float]:
        """The route and a confidence in [0, 1] (1.0 when a rule decided)."""
        if not text.strip():
            return "chat", 1.0
        if (ruled := rule_route(text)) is not None:
            return ruled, 1.0
        q = np.asarray(self._embedder.embed_query(text), dtype=np.float32)
        sims = self._route_centroids() @ q
        order = np.argsort(-sims)
        best, second = int(order[0]), int(order[1])
        # Softmax over cosines (temperature 0.05) as a rough, comparable confidence.
        probs = np.exp((sims - sims.max()) / 0.05)
        probs /= probs.sum()
        route = ROUTES[best]
        if route != "knowledge" and (
            sims[best] - sims[second] < self._margin or sims[best] < self._min_similarity
        ):
            route = "knowledge"
        return route, float(probs[ROUTES.index(route)])

    async def aclassify(self, text: str, history: Sequence[BaseMessage] = ()) -> Route:
        """Async form used by the graph (history is not needed offline)."""
        route, _ = await asyncio.to_thread(self.classify, text)
        return route
