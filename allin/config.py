"""All configuration in one place: environment variables and a `.env` file.

Nothing reads the environment anywhere else. `Settings()` validates on
construction, so a bad value fails at startup with the variable's name.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RetrievalMode = Literal["chunks", "files"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    # --- Gemini (offline mode when no key) ---
    google_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GOOGLE_API_KEY", "GEMINI_API_KEY")
    )
    google_gemini_base_url: str | None = Field(
        default=None, description="Override the Gemini endpoint (tests, proxies)."
    )
    chat_model: str = "gemini-2.5-flash"
    classify_model: str = "gemini-2.5-flash-lite"
    live_model: str = "gemini-live-2.5-flash-preview"
    gemini_embedding_model: str = "gemini-embedding-001"
    embedding_provider: Literal["local", "gemini"] = "local"
    embedding_dim: int = Field(default=384, ge=8, le=2000)
    model_timeout_s: float = Field(default=60.0, gt=0, le=600)
    model_max_retries: int = Field(default=3, ge=0, le=10)

    # --- storage ---
    database_url: str | None = Field(
        default=None, description="Postgres with pgvector; unset = embedded Postgres."
    )
    data_dir: Path = Field(default=Path("data"), validation_alias="ALLIN_DATA_DIR")
    knowledge_dir: Path = Field(default=Path("knowledge"), validation_alias="ALLIN_KNOWLEDGE_DIR")
    db_pool_min: int = Field(default=1, ge=0, le=100)
    db_pool_max: int = Field(default=10, ge=1, le=200)
    db_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="Wait for a pooled connection before answering 503."
    )

    # --- raw files (uploads, attachments, voice audio) ---
    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"

    # --- HTTP ---
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("ALLIN_HOST", "HOST"))
    port: int = Field(default=8000, ge=1, le=65535, validation_alias=AliasChoices("ALLIN_PORT", "PORT"))
    public_url: str | None = Field(
        default=None, description="Base URL printed in the login link (default http://HOST:PORT)."
    )
    cors_origins: list[str] = Field(default_factory=list)
    metrics_token: SecretStr | None = Field(default=None, validation_alias="ALLIN_METRICS_TOKEN")
    max_upload_mb: int = Field(default=50, ge=1, le=2048)

    # --- /ws ---
    ws_max_frame_kb: int = Field(default=1024, ge=16, le=65536, description="Larger frames close with 1009.")
    ws_auth_timeout_s: float = Field(default=10.0, gt=0, le=120)
    ws_idle_timeout_s: float = Field(default=300.0, gt=0, le=86400, description="Close after this long without a frame.")
    ws_ping_interval_s: float = Field(default=20.0, gt=0, le=600, description="Protocol pings to find dead peers.")
    ws_send_timeout_s: float = Field(default=10.0, gt=0, le=120, description="A client this slow to read is closed.")
    turns_per_minute: int = Field(default=30, ge=1, le=10000, description="Per-user turn rate limit.")

    # --- assistant ---
    retrieval_mode: RetrievalMode = "chunks"
    top_k: int = Field(default=6, ge=1, le=50)
    history_max_tokens: int = Field(default=6000, ge=500, le=1_000_000)
    history_max_turns: int = Field(
        default=20, ge=1, le=1000,
        description="Earlier exchanges the model sees (within history_max_tokens). The chat's thread keeps "
        "only those; the whole chat stays in chat_turns (history, search, export).",
    )
    # "exit": one checkpoint per turn, when the run ends (also when it fails or is cancelled). The
    # question is in chat_turns before the graph starts, and a turn a crash cut short is answered
    # "interrupted", never resumed, so per-node checkpoints would cost 2.5x the CPU for nothing
    # (bench/turn_overhead.py). "sync" checkpoints after every node, for resuming runs by hand.
    langgraph_durability: Literal["sync", "async", "exit"] = "exit"
    turn_timeout_s: float = Field(
        default=300, gt=0, le=3600,
        description="A whole turn's limit; a question a crashed server left unanswered gets an "
        "'interrupted' reply once this has passed.",
    )
    checkpoint_pool_max: int = Field(
        default=6, ge=1, le=100, description="Connections for graph checkpoints (a pool of their own)."
    )
    checkpoint_async_commit: bool = Field(
        default=True,
        description="Checkpoint commits skip the WAL flush wait (about half of a turn's overhead). An app "
        "crash loses nothing; a crash of Postgres itself may lose the last ~0.6 s of checkpoints.",
    )

    # --- knowledge jobs ---
    knowledge_sync_interval_min: float = Field(
        default=0, ge=0, le=10080, description="Sync the knowledge folder this often (0 = only on request); "
        "every replica's timer asks, one sync runs.",
    )
    job_stale_s: float = Field(
        default=60, ge=2, le=3600, description="A sync job with no heartbeat this long is taken as dead.",
    )

    # --- code sandbox (offline code execution) ---
    sandbox_backend: Literal["auto", "bwrap", "unshare-userns", "unshare-root", "rlimits"] = "auto"
    sandbox_max_concurrency: int = Field(default=2, ge=1, le=32)
    sandbox_python: str | None = Field(default=None, description="Interpreter for snippets (default: system python3).")
    sandbox_wall_s: float = Field(default=10.0, gt=0, le=30)
    sandbox_memory_mb: int = Field(default=256, ge=32, le=8192)

    # --- voice ---
    voice_vad: Literal["silero", "energy"] = "silero"
    voice_end_silence_ms: int = Field(default=600, ge=100, le=5000)
    voice_early_stt_ms: int = Field(default=150, ge=0, le=5000, description=(
        "Silence after speech that starts transcribing before the utterance ends (0: off). Saves the "
        "transcription time when the user has finished; costs one wasted transcription per mid-sentence pause."))
    voice_max_utterance_s: float = Field(default=30.0, gt=1, le=120)
    voice_stt_threads: int = Field(default=2, ge=1, le=16)
    voice_stt_prompt: str = Field(default="Allin, Team 8, pull request, code review, onboarding.", max_length=500)
    voice_tts_speed: float = Field(default=1.0, ge=0.5, le=2.0)
    voice_warm_up: bool = Field(default=False, description="Load the speech models at startup (cold start 15-25 s).")

    live_voice_name: str | None = Field(default=None, max_length=64)
    live_max_reconnects: int = Field(default=3, ge=0, le=20)
    live_stable_after_s: float = Field(default=60.0, gt=0, le=3600)

    # --- long-term memory (mem0 on the same Postgres) ---
    memory_enabled: bool = True
    memory_min_score: float = Field(default=0.35, ge=0, le=1)
    memory_lexical_min_score: float = Field(default=0.2, ge=0, le=1)
    memory_model: str | None = Field(default=None, description="Fact-extraction model (default: CHAT_MODEL).")
    memory_pool_max: int = Field(default=4, ge=1, le=50)

    # --- logging / tracing ---
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    langsmith_api_key: SecretStr | None = None
    langsmith_project: str = "allin"
    langsmith_endpoint: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        # SQLAlchemy-style driver suffixes are common in copied URLs; psycopg wants plain ones.
        v = v.replace("postgresql+psycopg://", "postgresql://").replace("postgres://", "postgresql://")
        if not v.startswith("postgresql://"):
            raise ValueError("must be a postgresql:// URL")
        return v

    @field_validator("db_pool_max")
    @classmethod
    def _pool_bounds(cls, v: int, info) -> int:
        lo = info.data.get("db_pool_min", 0)
        if v < lo:
            raise ValueError(f"must be >= DB_POOL_MIN ({lo})")
        return v

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("S3_BUCKET is required when STORAGE_BACKEND=s3")
        return self

    @property
    def gemini_enabled(self) -> bool:
        return self.google_api_key is not None

    @property
    def mode(self) -> Literal["offline", "gemini"]:
        return "gemini" if self.gemini_enabled else "offline"

    @cached_property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @cached_property
    def knowledge_path(self) -> Path:
        return self.knowledge_dir.expanduser().resolve()

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class ConfigError(RuntimeError):
    """A setting is invalid; the message names the variable."""


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's error into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if err["loc"]:
                lines.append(f"{str(err['loc'][0]).upper()}: {err['msg']} (got {err.get('input')!r})")
            else:
                lines.append(str(err["msg"]).removeprefix("Value error, "))
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None
