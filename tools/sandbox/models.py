"""What a sandbox run takes (limits) and gives back (a result the `code` frame carries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["ok", "error", "timeout", "memory", "output_limit", "killed", "unavailable"]

MAX_WALL_S = 30.0


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 10.0  # max 30
    cpu_s: float = 10.0
    memory_mb: int = 256
    max_procs: int = 32
    max_open_files: int = 64
    max_output_bytes: int = 64_000  # per stream; truncated with a marker line
    max_file_bytes: int = 10_000_000

    def __post_init__(self) -> None:
        if not 0 < self.wall_s <= MAX_WALL_S:
            raise ValueError(f"wall_s must be in (0, {MAX_WALL_S:g}], got {self.wall_s}")
        if self.cpu_s <= 0:
            raise ValueError(f"cpu_s must be > 0, got {self.cpu_s}")
        # Below ~32 MB of address space the interpreter cannot even start.
        if self.memory_mb < 32:
            raise ValueError(f"memory_mb must be >= 32, got {self.memory_mb}")
        # The launcher and the interpreter need a few processes and descriptors of their own.
        if self.max_procs < 2:
            raise ValueError(f"max_procs must be >= 2, got {self.max_procs}")
        if self.max_open_files < 16:
            raise ValueError(f"max_open_files must be >= 16, got {self.max_open_files}")
        if self.max_output_bytes < 1:
            raise ValueError(f"max_output_bytes must be >= 1, got {self.max_output_bytes}")
        if self.max_file_bytes < 1:
            raise ValueError(f"max_file_bytes must be >= 1, got {self.max_file_bytes}")

    @property
    def scratch_bytes(self) -> int:
        """Size of each private tmpfs (work dir, /tmp): room for a few files at the size limit."""
        return 4 * self.max_file_bytes + (1 << 20)


@dataclass
class CodeResult:
    language: str
    code: str
    stdout: str
    stderr: str
    outcome: Outcome
    exit_code: int | None
    duration_ms: int
    truncated: bool
    message: str  # a human sentence, e.g. "Stopped after 10 s (time limit)."

    def to_frame(self) -> dict:
        """The payload of DESIGN's `code` frame."""
        return {
            "language": self.language,
            "code": self.code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
        }
