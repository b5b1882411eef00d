"""Source files chunk along their definitions; repository walks honour .gitignore."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from allin.knowledge.extract import extract
from allin.knowledge.repo import iter_source_files

MAX_BYTES = 50 * 1024 * 1024

PYTHON = '''"""Billing helpers."""

import math

RATE = 0.2


# Rounds half up, as finance expects.
@staticmethod
def round_cents(value: float) -> float:
    return math.floor(value * 100 + 0.5) / 100


async def fetch_invoice(client, invoice_id: str) -> dict:
    response = await client.get(f"/invoices/{invoice_id}")
    return response.json()


class Invoice:
    """An invoice."""

    def __init__(self, total: float) -> None:
        self.total = total

    def tax(self) -> float:
        return round_cents(self.total * RATE)


if __name__ == "__main__":
    print(Invoice(10).tax())
'''


def _chunks(path: Path):
    return extract(path, ocr=None, max_bytes=MAX_BYTES)


def test_python_chunks_along_definitions_with_line_ranges(tmp_path: Path) -> None:
    path = tmp_path / "billing.py"
    path.write_text(PYTHON, encoding="utf-8")
    doc = _chunks(path)
    assert doc.title == "billing.py" and all(c.kind == "code" for c in doc.chunks)
    spans = [(c.section, c.line_start, c.line_end) for c in doc.chunks]
    assert spans == [
        (None, 1, 5),  # docstring, imports, constants (blank lines trimmed)
        ("round_cents", 8, 11),  # the comment and decorator belong to the function
        ("fetch_invoice", 14, 16),
        ("Invoice", 19, 26),
        (None, 29, 30),  # the main block
    ]
    assert doc.chunks[1].content.startswith("# Rounds half up")
    # Content is exactly those lines of the file.
    lines = PYTHON.split("\n")
    for chunk in doc.chunks:
        assert chunk.content == "\n".join(lines[chunk.line_start - 1 : chunk.line_end])
    assert any('if __name__ == "__main__":' in c.content and c.section is None for c in doc.chunks)


def test_long_python_class_is_split_into_methods(tmp_path: Path) -> None:
    methods = "\n".join(
        f"    def step_{i}(self, x):\n"
        + "".join(f"        x = x + {j}  # step {i}.{j}\n" for j in range(12))
        + "        return x\n"
        for i in range(6)
    )
    path = tmp_path / "pipeline.py"
    path.write_text(f"class Pipeline:\n    name = 'p'\n\n{methods}", encoding="utf-8")
    doc = _chunks(path)
    sections = [c.section for c in doc.chunks]
    assert sections[0] == "Pipeline" and doc.chunks[0].content.startswith("class Pipeline:")
    assert [s for s in sections if s != "Pipeline"] == [f"Pipeline.step_{i}" for i in range(6)]
    assert doc.chunks[1].line_start == 4 and doc.chunks[1].line_end == 17


def test_broken_python_falls_back_to_patterns(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def ok():\n    return 1\n\ndef broken(:\n    pass\n", encoding="utf-8")
    doc = _chunks(path)
    assert [c.section for c in doc.chunks] == ["ok", "broken"]
    assert doc.warnings and "did not parse" in doc.warnings[0]


def test_go_and_typescript_definitions(tmp_path: Path) -> None:
    go = tmp_path / "server.go"
    go.write_text(
        'package main\n\nimport "fmt"\n\n// Serve starts it.\nfunc (s *Server) Serve(port int) error {\n'
        '\treturn nil\n}\n\nfunc main() {\n\tfmt.Println("hi")\n}\n',
        encoding="utf-8",
    )
    doc = _chunks(go)
    named = [(c.section, c.line_start, c.line_end) for c in doc.chunks if c.section]
    assert named == [("Serve", 5, 8), ("main", 10, 12)]  # comment above kept, blank lines trimmed
    ts = tmp_path / "api.ts"
    ts.write_text(
        "import x from 'x';\n\nexport async function load(id: string) {\n  return x(id);\n}\n\n"
        "export default class Client {\n  get() { return 1; }\n}\n",
        encoding="utf-8",
    )
    assert [c.section for c in _chunks(ts).chunks if c.section] == ["load", "Client"]


def test_long_code_is_cut_between_lines_within_the_token_limit(tmp_path: Path) -> None:
    from allin.knowledge.chunk import count_tokens, embedding_text

    path = tmp_path / "config.yaml"
    body = "".join(
        f"service_{i}:\n  image: registry.example.com/team/service-{i}:1.{i}.0\n  replicas: {i % 5 + 1}\n"
        for i in range(120)
    )
    path.write_text(body, encoding="utf-8")
    doc = _chunks(path)
    assert len(doc.chunks) > 3
    lines = body.split("\n")
    for chunk in doc.chunks:
        assert count_tokens(embedding_text(doc.title, chunk)) <= 256
        assert chunk.content == "\n".join(lines[chunk.line_start - 1 : chunk.line_end])  # whole lines
    covered = sorted(ln for c in doc.chunks for ln in range(c.line_start, c.line_end + 1))
    assert covered == list(range(1, len(lines)))  # every line once (the last "line" is empty)


def _make_tree(root: Path) -> None:
    (root / "docs").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "node_modules" / "left-pad").mkdir(parents=True)
    (root / "ignored").mkdir()
    (root / "README.md").write_text("# Demo\n", encoding="utf-8")
    (root / "docs" / "setup.md").write_text("Run make.\n", encoding="utf-8")
    (root / "src" / "app.py").write_text("def main():\n    pass\n", encoding="utf-8")
    (root / "src" / "data.bin").write_bytes(b"\x00\x01\x02" * 100)
    (root / "src" / "fake.py").write_bytes(b"\x7fELF\x00\x00binary")  # binary under a code name
    (root / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n", encoding="utf-8")
    (root / "ignored" / "notes.md").write_text("secret\n", encoding="utf-8")
    (root / "package-lock.json").write_text("{}\n", encoding="utf-8")
    (root / "big.txt").write_text("x" * 5000, encoding="utf-8")
    (root / ".gitignore").write_text("ignored/\nnode_modules/\n", encoding="utf-8")


def test_walk_without_git_skips_dependencies_binaries_and_big_files(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    _make_tree(root)
    found = [p.relative_to(root.resolve()).as_posix() for p in iter_source_files(root, max_bytes=4000)]
    # Without git, .gitignore is not read: "ignored/" is walked; the fixed skip list still applies.
    assert found == ["README.md", "docs/setup.md", "ignored/notes.md", "src/app.py"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_checkout_honours_gitignore(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _make_tree(root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "README.md", "src/app.py"], check=True)
    found = [p.relative_to(root.resolve()).as_posix() for p in iter_source_files(root, max_bytes=4000)]
    assert found == ["README.md", "docs/setup.md", "src/app.py"]  # tracked + untracked, not ignored
