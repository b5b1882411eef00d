"""What a user says about themselves, picked out of a message without a model.

Offline, mem0 stores text verbatim (`infer=False`), so what is stored is
decided here: only first-person statements of lasting facts ("I'm on the
payments team", "my manager is Dana", "I work on the ledger service", "call
me Sam", "I prefer Go"), never questions, requests, passing states ("I'm
stuck") or secrets ("my password is ..."). The patterns are narrow on
purpose: a sentence stored wrongly shows up in later answers, one missed
costs only a repeat.

Keyed, Gemini extracts the facts (mem0 `infer=True`); `mentions_self` spares
that call for turns that say nothing about the user.
"""

from __future__ import annotations

import re

MAX_FACTS_PER_MESSAGE = 3
MIN_CHARS, MAX_CHARS = 6, 240

_I = re.IGNORECASE

_CODE_BLOCK = re.compile(r"(```|~~~).*?(\1|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"https?://\S+")
# Sentence ends: . ! ? ; and line breaks. "e.g." / "i.e." are rare in such statements; a split there only
# shortens what is stored.
_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")

# Openers that wrap a statement: "btw, I'm on ...", "please remember that my ...".
_LEAD_IN = re.compile(
    r"^(?:(?:hi|hello|hey|ok|okay|so|well|also|and|oh|fyi|btw|by the way|just so you know|for the record|"
    r"for context|for your information|quick note|note|allin)\b[\s,:!.-]*)+"
    r"|^(?:(?:please|pls)\s+)?(?:remember|note|keep in mind|know|be aware)\s+(?:that\s+)?"
    r"|^you should know\s+(?:that\s+)?",
    _I,
)

_ROLE = (
    r"(?:engineer|developer|dev|programmer|designer|manager|intern|lead|architect|sre|analyst|scientist|"
    r"tester|qa|pm|product manager|owner|consultant|contractor|student|admin|administrator|"
    r"devops|researcher|writer|cto|ceo|founder|director|head)"
)
_FACT_NOUN = (
    r"(?:name|team|squad|group|department|org|role|title|job|position|level|manager|boss|lead|mentor|buddy|"
    r"onboarding buddy|pronouns|time ?zone|location|office|city|country|desk|start date|first day|birthday|"
    r"email|github|handle|username|slack handle|editor|ide|shell|os|operating system|laptop|machine|"
    r"language|main language|stack|project|main project|service|area|focus|specialty|speciality|background|"
    r"(?:favou?rite|preferred|usual|primary|main) [\w-]+(?: [\w-]+)?)"
)

# Statements about oneself, matched at the start of a sentence (after a lead-in).
_STATEMENT = re.compile(
    r"^(?:"
    # I'm / I am + team, place, role, responsibility: "I'm on the payments team", "I am a backend engineer"
    r"i(?:'m| am)\s+(?:currently\s+|now\s+|still\s+|also\s+)?"
    r"(?:on|in|with|from|at|based|located|part of|working (?:on|in|at|for|with|as)|responsible for|joining|"
    r"leading|managing|maintaining|called|named|the new|new (?:here|to)|a new|"
    r"an? (?:[\w-]+ ){0,2}" + _ROLE + r"|the (?:[\w-]+ ){0,2}" + _ROLE + r")\b"
    # I'm + a capitalised name: "I'm Sam", "I'm Dana Levi, ..."
    r"|i(?:'m| am)\s+(?-i:[A-Z][a-z]+)(?:\s+(?-i:[A-Z][a-z]+))?\s*(?:[,.!]|$)"
    # my X is / are: "my manager is Dana", "my favourite editor is vim"
    r"|my\s+(?:[\w-]+\s+){0,2}?" + _FACT_NOUN + r"(?:'s|\s+is|\s+are|\s+was)\b"
    r"|my name's\s+\w"
    # work, preferences, tools, ownership, history
    r"|i(?:'ve| have)?\s*(?:work|worked|been working)\s+(?:on|in|at|for|with|from|remotely|as|mostly|mainly)\b"
    r"|i\s+(?:mostly\s+|mainly\s+|usually\s+|really\s+|strongly\s+|always\s+)?(?:prefer|like|love|dislike|hate|use)\s+"
    r"(?!to\s+(?:know|ask|see|understand|learn|get|find|try)\b|it\b|this\b|that\b|these\b|those\b|your\b|the answer\b)"
    r"|i(?:'d| would)\s+prefer\b"
    r"|i\s+(?:own|maintain|lead|manage|report to|speak|live in|joined|started (?:on|at|in|last|this)|"
    r"moved to|transferred to|came from|switched to)\b"
    r"|i(?:'ve| have)\s+been\s+(?:at|on|in|with|working|coding|programming|using)\b"
    r"|(?:please\s+)?call me\s+\w"
    r")",
    _I,
)
# A passing state or a problem of the moment, not a fact to keep ("my service is down", "I'm in a hurry").
_TRANSIENT = re.compile(
    r"\b(?:error|exception|fail\w*|broken|crash\w*|stuck|hurry|rush|meeting|down|slow|timeout|timing out|"
    r"not working|doesn't work|isn't working|can't|cannot|today|right now|at the moment)\b",
    _I,
)
_QUESTION_START = re.compile(
    r"^(?:what|which|who|whom|whose|how|where|when|why|do|does|did|can|could|would|should|will|shall|is|are|"
    r"am|was|were|may|might|have|has)\b",
    _I,
)
_SECRET = re.compile(
    r"\b(?:password|passwd|passphrase|pin|token|secret|api[ _-]?key|private key|ssh key|credit card|card number|"
    r"iban|ssn|social security|cvv)\b",
    _I,
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|our|ours|us)\b", _I)
_TRAILING_NOISE = re.compile(r"[\s,;:]*(?:thanks|thank you|thx|cheers|please|pls)?[\s,;:.!]*$", _I)


def self_statements(text: str) -> list[str]:
    """The sentences of `text` where the user states a lasting fact about themselves, cleaned up.

    >>> self_statements("Hi! btw I'm on the payments team. How do I deploy?")
    ["I'm on the payments team."]
    """
    facts: list[str] = []
    for sentence in _sentences(text):
        fact = _as_fact(sentence)
        if fact and fact.lower() not in {f.lower() for f in facts}:
            facts.append(fact)
        if len(facts) == MAX_FACTS_PER_MESSAGE:
            break
    return facts


def mentions_self(text: str) -> bool:
    """Whether any statement (not a question) in `text` speaks in the first person: worth a model's look."""
    return any(
        _FIRST_PERSON.search(s) and not _is_question(s) for s in _sentences(text)
    ) or bool(self_statements(text))


def _sentences(text: str) -> list[str]:
    text = (text or "").replace("\u2019", "'").replace("\u2018", "'")  # typographic apostrophes (phones, macOS)
    text = _URL.sub(" ", _INLINE_CODE.sub(" ", _CODE_BLOCK.sub(" ", text)))
    return [s.strip() for s in _SPLIT.split(text) if s and s.strip()]


def _is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith("?") or bool(_QUESTION_START.match(sentence))


def _as_fact(sentence: str) -> str | None:
    if _is_question(sentence):
        return None
    body = sentence.strip().strip("\"'“”‘’*_ ")
    body = _LEAD_IN.sub("", body).strip()
    if not body or _is_question(body) or not _STATEMENT.match(body):
        return None
    if _SECRET.search(body) or _TRANSIENT.search(body):
        return None
    body = _TRAILING_NOISE.sub("", body).strip()
    if not _STATEMENT.match(body):  # "call me, please" minus its noise is no longer a statement
        return None
    body = re.sub(r"\s+", " ", body)
    body = re.sub(r"\bi\b", "I", body)  # "i'm" → "I'm", "i work" → "I work"
    body = body[0].upper() + body[1:]
    if not MIN_CHARS <= len(body) <= MAX_CHARS:
        return None
    return body + "."


# mem0's extraction prompt writes facts about "User" ("User works on the payments team"); people ask
# in the first person ("which team am I on?"), and MiniLM scores "I"/"I" pairs far higher than
# "User"/"I" ones (0.29 against 0.17 here).
_USER_POSSESSIVE = re.compile(r"\b(?:the\s+)?user's\b", _I)
_USER_SUBJECT = re.compile(r"^(\s*)(?:the\s+)?user\s+(\w+)\b", _I)
_IRREGULAR = {"is": "am", "was": "was", "has": "have", "does": "do", "goes": "go"}


def first_person(text: str) -> str:
    """A fact about "the user" as the user would say it: "User works on X" → "I work on X".

    Used only to embed memories (the stored text stays as written), so rough verb handling is enough.
    """
    def subject(m: re.Match) -> str:
        verb = m.group(2)
        low = verb.lower()
        if low in _IRREGULAR:
            verb = _IRREGULAR[low]
        elif low.endswith("ies") and len(low) > 4:
            verb = verb[:-3] + "y"
        elif low.endswith(("ches", "shes", "sses", "xes")):
            verb = verb[:-2]
        elif low.endswith("s") and not low.endswith("ss"):
            verb = verb[:-1]
        return f"{m.group(1)}I {verb}"

    out = _USER_SUBJECT.sub(subject, text, count=1)
    out = _USER_POSSESSIVE.sub("my", out)
    return out[:1].upper() + out[1:] if out else out
