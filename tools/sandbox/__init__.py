"""Local code sandbox: runs untrusted Python (and Bash) snippets offline, isolated and limited.

The graph's `code_execute` node calls `run_code`; `allin doctor` shows
`sandbox_report()`. See docs/sandbox.md.
"""

from .blocks import extract_code_blocks
from .models import CodeResult, SandboxLimits
from .sandbox import Sandbox, asandbox_report, default_sandbox, run_code, sandbox_report, set_default_sandbox

__all__ = [
    "CodeResult",
    "Sandbox",
    "SandboxLimits",
    "asandbox_report",
    "default_sandbox",
    "extract_code_blocks",
    "run_code",
    "sandbox_report",
    "set_default_sandbox",
]
