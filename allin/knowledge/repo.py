"""The files worth ingesting from a folder, typically a git checkout."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from allin.knowledge.filetypes import SNIFF_BYTES, is_supported_name, looks_like_text

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
GIT_TIMEOUT_S = 30

SKIP_DIRS = {
    ".git", ".hg", ".svn", "node_modules", "bower_components", ".venv", "venv", "env", ".env",
    "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".hypothesis",
    "build", "dist", "target", "out", ".next", ".nuxt", ".gradle", ".idea", ".vscode",
    "site-packages", ".eggs", "coverage", "htmlcov", ".terraform", "vendor",
}  # fmt: skip
# Generated or lock files: large, and no one asks questions about them.
SKIP_FILES = {
    "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "uv.lock", "Cargo.lock",
    "composer.lock", "Gemfile.lock", "go.sum", "Pipfile.lock",
}  # fmt: skip
BINARY_DOC_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".webp", ".docx"}  # binary on purpose
# Structured files this large are data (fixtures, vocabularies, dumps), not configuration.
DATA_SUFFIXES = {".json", ".yaml", ".yml", ".toml", ".csv"}
MAX_DATA_FILE_BYTES = 256 * 1024


def iter_source_files(root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Path]:
    """READMEs, docs and code under `root`, honouring .gitignore when it is a git checkout.

    Uses `git ls-files` (tracked + untracked-but-not-ignored) when `root` is in
    a work tree and git is installed; otherwise walks the tree, skipping VCS
    folders, dependencies, virtualenvs and build output. Either way: only
    names `detect` can read, no lock/minified files, nothing over
    `max_bytes` (JSON/YAML/TOML over 256 KB count as data and are skipped
    too), and no binary content under a text name. Sorted paths.
    """
    root = root.resolve()
    candidates = _git_files(root)
    if candidates is None:
        candidates = _walk(root)
    for path in sorted(candidates):
        if _wanted(path, max_bytes):
            yield path


def _git_files(root: Path) -> list[Path] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        inside = subprocess.run(
            [git, "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False,
        )  # fmt: skip
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        listed = subprocess.run(
            [git, "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, timeout=GIT_TIMEOUT_S, check=True,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("git ls-files failed in %s (%s): walking the folder instead", root, exc)
        return None
    names = [n for n in listed.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    # Skip dependency/build folders even when someone committed them.
    return [root / n for n in names if not any(part in SKIP_DIRS for part in Path(n).parts[:-1])]


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [
            d for d in dirnames
            if d not in SKIP_DIRS and not d.endswith(".egg-info") and not (here / d / "pyvenv.cfg").exists()
        ]  # fmt: skip
        for name in filenames:
            yield here / name


def _wanted(path: Path, max_bytes: int) -> bool:
    name = path.name
    if name in SKIP_FILES or ".min." in name or not is_supported_name(path):
        return False
    try:
        if path.is_symlink() or not path.is_file():
            return False
        size = path.stat().st_size
        if size == 0 or size > max_bytes:
            return False
        if path.suffix.lower() in DATA_SUFFIXES and size > MAX_DATA_FILE_BYTES:
            return False
        if path.suffix.lower() in BINARY_DOC_SUFFIXES:
            return True
        with path.open("rb") as f:
            return looks_like_text(f.read(SNIFF_BYTES))
    except OSError:
        return False
