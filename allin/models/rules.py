"""Phrase rules for routing a message, shared by the local classifier and the extractive model.

Each rule is narrow on purpose: a rule that fires wrongly cannot be
overruled, while a message no rule matches still goes to the embedding
classifier (and to `knowledge` when that is unsure).
"""

from __future__ import annotations

import re

from allin.models.context import Route

_I = re.IGNORECASE

_FENCED_CODE = re.compile(r"```|~~~")
_RUN_REQUEST = re.compile(
    r"\b(run|execute|exec|evaluate|eval)\b\s+"
    r"(this|that|it|these|the following|my|the (code|snippet|script|function|program))\b"
    r"|^\s*(please\s+)?(run|execute)\b"
    r"|\bwhat (does|will|would) (this|that|the following) (code|snippet|script|function|program)\b",
    _I,
)
_CODE_LINE = re.compile(
    r"^\s*(def \w+\(|class \w+[(:]|import [\w.]+\s*$|from [\w.]+ import |print\(|for \w+ in .+:\s*$|>>> )", _I | re.M
)

_GREETING = re.compile(
    r"^\s*(hi|hello|hey|hiya|howdy|greetings|yo|good (morning|afternoon|evening|day))\b", _I
)
_GREETING_ONLY = re.compile(
    r"^\s*(hi|hello|hey|hiya|howdy|greetings|yo|good (morning|afternoon|evening|day))"
    r"(\s+(there|allin|all|everyone|team|bot))?[\s!,.?]*$",
    _I,
)
_IDENTITY = re.compile(
    r"\bwho (are|r) (you|u)\b|\bwhat are you\b|\byour name\b|\bwhat (can|do) you do\b"
    r"|\bintroduce yourself\b|\babout yourself\b|\bwho (made|built|created|wrote) you\b"
    r"|\bare you (a |an )?(bot|ai|human|real|person|robot|chatgpt|gemini|llm)\b"
    r"|\b(what|who) is allin\b|\bhow can you help\b|\byour (capabilities|features|purpose)\b"
    r"|\bwhat (are|is) (you|allin) (for|good at|able to do)\b",
    _I,
)

_ABOUT_USER = re.compile(
    r"\b(about me|know about me|remember about me)\b"
    r"|\bdo you (remember|recall|know) (my|me|what i|where i|which|who i|that i)\b"
    r"|\bwhat did i (tell|say|mention)\b|\bdid i (tell|mention)\b"
    r"|\b(what|who|which|where)('s|s| is| are| was)? my (name|team|role|job|title|manager|boss|lead|squad|"
    r"preferences?|favou?rite \w+|language|timezone|time zone|location|city|office|birthday|start date|"
    r"pronouns|email|editor|ide|laptop|stack)\b"
    r"|\b(which|what) \w+ (am|was) i\b|\bwho am i\b|\bwhere (do|did) i (work|live|sit|come from)\b",
    _I,
)
_SELF_FACT = re.compile(
    r"^\s*(fyi,?\s+|btw,?\s+|just so you know,?\s+)?"
    r"(my name is|my name's|call me|i prefer|i like|i love|i hate|i live|i joined|i started|"
    r"i work (on|in|at|with|for|remotely|from)|"
    r"i'm (on|in|from|based|called|the new)\b|i am (on|in|from|based|called|the new)\b|"
    r"i'm an? \w*\s?(engineer|developer|designer|manager|intern|lead|sre|analyst)|"
    r"i am an? \w*\s?(engineer|developer|designer|manager|intern|lead|sre|analyst)|"
    r"i use|remember that|please remember|note that i|my \w+ is)\b",
    _I,
)
_THANKS = re.compile(r"^\s*(thanks|thank you|thx|ty|cheers|much appreciated|appreciate it)\b", _I)
_FAREWELL = re.compile(r"^\s*(bye|goodbye|good night|see you|see ya|later|cya|that's all)\b", _I)
_SMALL_TALK = re.compile(
    r"^\s*(ok|okay|cool|great|nice|awesome|got it|perfect|sounds good|lol|haha|wow|good job|well done|"
    r"how are you|how's it going|how is it going|what's up|whats up)\b",
    _I,
)


def is_code_request(text: str) -> bool:
    return bool(_FENCED_CODE.search(text) or _RUN_REQUEST.search(text) or _CODE_LINE.search(text))


def is_greeting(text: str) -> bool:
    return bool(_GREETING.match(text))


def is_identity_question(text: str) -> bool:
    return bool(_IDENTITY.search(text))


def asks_about_user(text: str) -> bool:
    """A question about the user themself ("which team am I on?"), answered from memories."""
    return bool(_ABOUT_USER.search(text))


def is_self_fact(text: str) -> bool:
    """A first-person statement of fact ("I'm on the payments team")."""
    return bool(_SELF_FACT.match(text)) and not text.rstrip().endswith("?")


def is_thanks(text: str) -> bool:
    return bool(_THANKS.match(text)) and len(text.split()) <= 8


def is_farewell(text: str) -> bool:
    return bool(_FAREWELL.match(text)) and len(text.split()) <= 6


def is_small_talk(text: str) -> bool:
    return is_thanks(text) or is_farewell(text) or (bool(_SMALL_TALK.match(text)) and len(text.split()) <= 6)


def rule_route(text: str) -> Route | None:
    """The route a rule is sure of, or None to let the embedding classifier decide."""
    if is_code_request(text):
        return "code"
    if _GREETING_ONLY.match(text) or is_identity_question(text):
        return "identity"
    if asks_about_user(text) or is_self_fact(text) or is_small_talk(text):
        return "chat"
    return None
