"""Wire helpers shared by REST and Live: key casing, schemas, embeddings, audio."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

# Values under these keys are the user's own maps/values: keep their keys as sent.
USER_MAPS = {"args", "response", "properties", "$defs", "definitions", "default",
             "example", "const", "enum", "labels", "metadata", "patternProperties"}


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest) if rest and head else key


def normalize(value: Any) -> Any:
    """snake_case → camelCase keys, recursively, leaving user maps alone.

    Inside `properties`/`$defs` the property names stay, but each property's
    schema is normalised again.
    """
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, val in value.items():
        name = camel(key)
        if name in ("properties", "$defs", "definitions", "patternProperties") and isinstance(val, dict):
            out[name] = {k: normalize(v) for k, v in val.items()}
        elif name in USER_MAPS:
            out[name] = val
        else:
            out[name] = normalize(val)
    return out


def stamp(moment: datetime) -> str:
    """Google's timestamp format, always UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> datetime:
    return datetime.now(UTC)


def parse_duration(text: str) -> timedelta:
    """'3600s' / '1.5s' → timedelta."""
    return timedelta(seconds=float(text.rstrip("s")))


def model_id(name: str) -> str:
    return name.split("/", 1)[1] if name.startswith(("models/", "tunedModels/")) else name


# Models the fake knows: family prefixes, with the method each one serves.
_MODEL = re.compile(r"^(gemini|gemma|learnlm|text-embedding|embedding)-[a-z0-9.\-]+$")


def model_method(model: str) -> str | None:
    """'generate' | 'embed' | 'live' for a known model id, None for an unknown one."""
    if not _MODEL.match(model):
        return None
    if "embedding" in model:
        return "embed"
    if "live" in model or "native-audio" in model:
        return "live"
    return "generate"


def not_found_message(model: str, method: str, version: str = "v1beta") -> str:
    return (f"models/{model} is not found for API version {version}, or is not supported for "
            f"{method}. Call ListModels to see the list of available models and their supported methods.")


def function_results(responses: list[dict]) -> str:
    """Default answer after function responses: say what they returned."""
    return "; ".join(f"Function {r.get('name')} returned: {json.dumps(r.get('response'))}"
                     for r in responses)


def echo_text(contents: list[dict]) -> str:
    """Default answer: echo the last user turn (or report a function result)."""
    last = next((c for c in reversed(contents) if c.get("role", "user") == "user"), {})
    parts = last.get("parts", [])
    responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
    if responses:
        return function_results(responses)
    return "Echo: " + " ".join(p["text"] for p in parts if "text" in p)


# --- structured output ---------------------------------------------------------


def instance(schema: dict, root: dict | None = None) -> Any:
    """A small instance valid against a Gemini `Schema` or a JSON Schema.

    Every declared property is filled (not only the required ones) so pydantic
    models parse; enums take their first value; sizes honour min* bounds.
    """
    root = root or schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return instance(target, root)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combo in ("anyOf", "oneOf"):
        if schema.get(combo):
            options = [s for s in schema[combo] if str(s.get("type", "")).lower() != "null"]
            return instance((options or schema[combo])[0], root)
    if schema.get("allOf"):
        return instance({k: v for s in schema["allOf"] for k, v in s.items()}, root)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    kind = str(kind).lower()
    if kind == "object":
        return {name: instance(sub, root) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [instance(schema.get("items") or {}, root) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(0, low + (1 if "exclusiveMinimum" in schema else 0))
        value = min(value, schema.get("maximum", value))
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if schema.get("format") == "date-time":
        return "2025-01-01T00:00:00Z"
    if schema.get("format") == "date":
        return "2025-01-01"
    return "x" * int(schema.get("minLength", 0))


# --- embeddings and token counts -------------------------------------------------


@lru_cache(maxsize=20_000)
def _word_vector(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim)


def embed(text: str, dim: int = 3072) -> list[float]:
    """Deterministic unit vector: the normalised sum of per-word seeded vectors.

    Equal texts give equal vectors; texts sharing words have positive cosine.
    """
    words = re.findall(r"\w+", text.lower()) or [text]
    vector = np.sum([_word_vector(w, dim) for w in words], axis=0)
    return [round(float(x), 7) for x in vector / np.linalg.norm(vector)]


def count_tokens(texts: list[str]) -> int:
    """About four characters a token, like the real tokenizer on English."""
    return sum(math.ceil(len(t) / 4) for t in texts if t)


# --- audio -----------------------------------------------------------------------


def tone(duration_ms: int, rate: int = 24000) -> bytes:
    """A 440 Hz PCM16 little-endian mono tone (not silence, so VADs hear it)."""
    t = np.arange(rate * duration_ms // 1000) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


def audio_ms(text: str) -> int:
    """Default length of spoken replies: 50 ms a character, at least 200 ms."""
    return max(200, 50 * len(text))
