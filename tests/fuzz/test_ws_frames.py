"""Hypothesis for the /ws frame parser (api/ws/protocol.py), and bad frames on a real socket.

The parser's contract: a JSON text frame becomes a typed client frame, or `FrameError` with a
code from docs/websocket.md (bad_json, bad_frame, unknown_type) — never any other exception,
because the socket loop turns only FrameError into an `error` frame; anything else would close
the connection with 1011.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import websockets
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from api.ws import protocol as p
from tests.support.ws_client import collect_turn, hello, recv_json

DOCS = Path(__file__).resolve().parents[2] / "docs" / "websocket.md"
FRAME_TYPES = ["hello", "text", "audio", "audio_end", "interrupt", "ping"]
PARSER_CODES = {"bad_json", "bad_frame", "unknown_type"}
FRAME_CLASSES = (p.Hello, p.Text, p.Audio, p.AudioEnd, p.Interrupt, p.Ping)


def documented_codes() -> set[str]:
    """The error codes listed in the "Error codes" table of docs/websocket.md."""
    section = DOCS.read_text().split("## Error codes", 1)[1].split("\n## ", 1)[0]
    return {code for row in re.findall(r"^\| (.+?) \|", section, re.M) for code in re.findall(r"`([a-z_]+)`", row)}


def test_the_parser_codes_are_documented() -> None:
    assert PARSER_CODES <= documented_codes()


# --- strategies ------------------------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=50),
)
_json_values = st.recursive(_json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=20)
_field_names = st.sampled_from(["type", "id", "token", "chat_id", "text", "attachments", "data"])
# Objects shaped like frames: a known (or near) type with known fields holding values of any type.
_frame_like = st.builds(
    lambda kind, fields, extra: {**({"type": kind} if kind is not None else {}), **fields, **extra},
    st.one_of(st.sampled_from(FRAME_TYPES), st.none(), _json_scalars, st.text(max_size=60)),
    st.dictionaries(_field_names, _json_values, max_size=4),
    st.dictionaries(st.text(max_size=8), _json_scalars, max_size=2),
)
_huge = st.one_of(
    st.integers(4_000, 6_000).map(lambda n: "9" * n),                                  # over int's digit limit
    st.integers(4_000, 6_000).map(lambda n: '{"type":"ping","id":' + "1" * n + "}"),
    st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),                          # deep nesting
    st.integers(1, 5_000).map(lambda n: '{"type":"text","text":' + "[" * n + "]" * n + "}"),
    st.integers(15_990, 16_010).map(lambda n: json.dumps({"type": "text", "text": "x" * n})),
    st.integers(60, 70).map(lambda n: json.dumps({"type": "ping", "id": "i" * n})),
    st.integers(1_399_990, 1_400_010).map(lambda n: json.dumps({"type": "audio", "data": "A" * n})),
)
raw_frames = st.one_of(
    st.text(),                                                     # any string
    st.binary().map(lambda b: b.decode("utf-8", "replace")),       # any bytes, as a text frame carries them
    _json_values.map(json.dumps),                                  # any JSON value
    _frame_like.map(json.dumps),
    _huge,
)

# Valid text: no lone surrogates (JSON can spell them, but they are not text; a test below refuses them).
_chars = st.characters(exclude_categories=["Cs"])
_no_nul = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")  # NUL is refused in stored fields
_ids = st.one_of(st.none(), st.text(_no_nul, max_size=64))
valid_frames = st.one_of(
    st.fixed_dictionaries({"type": st.just("hello"), "token": st.text(_chars, min_size=1, max_size=200)},
                          optional={"chat_id": st.uuids().map(str), "id": _ids}),
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(_no_nul, min_size=1, max_size=300)},
                          optional={"attachments": st.lists(st.uuids().map(str), max_size=5), "id": _ids}),
    st.fixed_dictionaries({"type": st.just("audio"), "data": st.text(_chars, max_size=300)}, optional={"id": _ids}),
    st.fixed_dictionaries({"type": st.sampled_from(["audio_end", "interrupt", "ping"])}, optional={"id": _ids}),
)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])


def _outcome(raw: str):
    """The parsed frame, or the FrameError; any other exception fails the test."""
    try:
        return p.parse_client_frame(raw)
    except p.FrameError as exc:
        return exc


# --- the parser ------------------------------------------------------------------------------

@PROPS
@given(raw=raw_frames)
def test_any_text_frame_parses_or_gets_a_documented_error(raw: str) -> None:
    out = _outcome(raw)
    if isinstance(out, p.FrameError):
        assert out.code in PARSER_CODES, out.code
        assert out.message and len(out.message) < 1_000  # the message names the problem, never echoes a huge input
        assert out.frame_id is None or isinstance(out.frame_id, str)
    else:
        assert isinstance(out, FRAME_CLASSES)
        assert out.type in FRAME_TYPES


@PROPS
@given(frame=valid_frames)
def test_valid_frames_round_trip(frame: dict) -> None:
    parsed = p.parse_client_frame(json.dumps(frame))
    assert parsed.type == frame["type"]
    assert {k: v for k, v in parsed.model_dump(mode="json").items() if k in frame} == frame
    # ...and again from the typed frame itself.
    assert p.parse_client_frame(parsed.model_dump_json()) == parsed


@PROPS
@given(frame=_frame_like)
def test_error_frames_answer_the_frame_id(frame: dict) -> None:
    out = _outcome(json.dumps(frame))
    if isinstance(out, p.FrameError) and isinstance(frame.get("id"), str):
        sendable = not re.search("[\ud800-\udfff]", frame["id"])
        assert out.frame_id == (frame["id"] if sendable else None)
        assert p.error_frame(out.code, out.message, out.frame_id).get("reply_to") == (frame["id"] or None)


@pytest.mark.parametrize("raw, code", [
    ("9" * 5000, "bad_json"),                      # ValueError from int(), not a JSONDecodeError
    ("[" * 100_000 + "]" * 100_000, "bad_json"),   # RecursionError
    ('{"type": "text", "text": "\\ud800"}', "bad_frame"),  # a lone surrogate is not text
    ('{"type": "text", "text": ""}', "bad_frame"),
    ('{"type": "text", "text": "hi", "attachments": ["x"]}', "bad_frame"),
    ('{"type": "ping", "extra": 1}', "bad_frame"),
    ('{"type": "text", "text": "a\\u0000b"}', "bad_frame"),
    ('{"type": "ping", "id": "\\u0000"}', "bad_frame"),
    ('{"type": 7}', "bad_frame"),
    ('{"type": "dance"}', "unknown_type"),
    ("[]", "bad_frame"),
])
def test_known_bad_frames(raw: str, code: str) -> None:
    out = _outcome(raw)
    assert isinstance(out, p.FrameError) and out.code == code


# --- a real socket ---------------------------------------------------------------------------

def _sample(strategy, n: int) -> list:
    """n values drawn by Hypothesis (generation only: this is input for the socket test below)."""
    drawn: list = []

    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(value) -> None:
        drawn.append(value)

    draw()
    return drawn


_socket_bad_frames = st.one_of(raw_frames.filter(lambda r: len(r) < 200_000), _frame_like.map(json.dumps)).filter(
    lambda raw: isinstance(_outcome(raw), p.FrameError))


async def test_bad_frames_on_a_real_socket_get_errors_and_the_session_goes_on(live_server, users) -> None:
    frames = ["9" * 5000, '{"type": "text", "text": "\\ud800", "id": "s"}',
              '{"type": "ping", "id": "\\udc00"}',  # an id that cannot be echoed back as text
              *_sample(_socket_bad_frames, 12)]
    async with websockets.connect(live_server.ws_url, max_size=None) as ws:
        ready = await hello(ws, users.alice.token)
        assert ready["type"] == "ready"
        for raw in frames:
            expected = _outcome(raw)
            await ws.send(raw)
            err = await recv_json(ws, timeout=10)
            assert err["type"] == "error" and err["code"] == expected.code, (raw[:200], err)
            assert err.get("reply_to") == (expected.frame_id or None)
            # Still open and answering.
            await ws.send(json.dumps({"type": "ping", "id": "alive"}))
            assert await recv_json(ws, timeout=10) == {"type": "pong", "reply_to": "alive"}
        # A normal turn still works after all of that.
        await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "q"}))
        turn = await collect_turn(ws)
    assert [f["type"] for f in turn][-2:] == ["message", "turn_complete"], turn[-2:]
    assert "Allin" in turn[-2]["content"]


async def test_a_text_frame_with_a_nul_character_is_refused_without_losing_the_session(live_server, users) -> None:
    """Postgres text cannot hold U+0000: the frame must be refused up front, not fail in storage."""
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "a\u0000b", "id": "nul"}))
        err = await recv_json(ws, timeout=30)
        assert err["type"] == "error" and err["code"] == "bad_frame" and err["reply_to"] == "nul", err
        await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "q"}))
        turn = await collect_turn(ws)
    assert turn[-1]["type"] == "turn_complete"
    assert str(uuid.UUID(turn[-1]["turn_id"]))
