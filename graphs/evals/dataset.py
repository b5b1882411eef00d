"""Evaluation datasets: JSONL, one case per line, plus an optional header line.

A case (all fields but `id` and `question` optional):

    {"id": "speed-1", "question": "How quickly should I answer a review request?",
     "route": "knowledge", "expected_docs": ["review_reviewer_speed"],
     "expected_phrases": ["one business day"], "reference": "Within one business day.",
     "check": "identity" | "injection", "forbidden_phrases": ["PWNED"], "tags": ["speed"]}

`expected_docs` are file stems (a document matches whatever its extension or folder);
`expected_phrases` must all appear in the answer (case and spacing ignored);
`forbidden_phrases` must not. The header line, when present, is first and has
`"dataset"` instead of `"question"`:

    {"dataset": "eng_practices", "documents": ["../../shared/corpus/eng-practices/pdf"]}

Its `documents` (files or folders, relative to the dataset file) are what the
eval ingests unless told otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Route = Literal["knowledge", "code", "chat", "identity"]
Check = Literal["identity", "injection"]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Short = Annotated[str, Field(min_length=1, max_length=300)]


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
    question: Text
    route: Route | None = None
    expected_docs: list[Short] = []
    expected_phrases: list[Short] = []
    reference: Annotated[str, Field(max_length=4000)] | None = None
    check: Check | None = None
    forbidden_phrases: list[Short] = []
    tags: list[Short] = []
    source: dict | None = None  # where a drafted case came from (`allin eval --from-feedback`)

    @field_validator("expected_docs")
    @classmethod
    def _stems(cls, docs: list[str]) -> list[str]:
        # Accept "review_reviewer_speed.pdf" too: documents are matched by stem.
        return [Path(d).stem if "." in Path(d).name else d for d in docs]


class DatasetHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    description: Annotated[str, Field(max_length=2000)] | None = None
    documents: list[Annotated[str, Field(min_length=1, max_length=1000)]] = []


@dataclass
class Dataset:
    name: str
    path: Path
    cases: list[EvalCase]
    documents: list[Path] = field(default_factory=list)  # resolved; may not exist (checked at ingest)
    description: str | None = None


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file and line."""


def load_dataset(path: Path) -> Dataset:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    header: DatasetHeader | None = None
    cases: list[EvalCase] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}:{number}: expected a JSON object")
        try:
            if "dataset" in record and "question" not in record:
                if header is not None or cases:
                    raise DatasetError(f"{path}:{number}: the dataset header must be the first line")
                header = DatasetHeader.model_validate(record)
                continue
            case = EvalCase.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise DatasetError(f"{path}:{number}: {where}: {first['msg']}") from None
        if case.id in seen:
            raise DatasetError(f"{path}:{number}: duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise DatasetError(f"{path}: no cases")
    documents = [(path.parent / d).resolve() for d in (header.documents if header else [])]
    return Dataset(name=header.dataset if header else path.stem, path=path.resolve(), cases=cases,
                   documents=documents, description=header.description if header else None)


def write_cases(path: Path, cases: list[dict], *, header: dict | None = None) -> int:
    """Write a dataset file (used by the feedback export); every case is validated first."""
    lines = [json.dumps(header, ensure_ascii=False)] if header else []
    for case in cases:
        EvalCase.model_validate(case)
        lines.append(json.dumps(case, ensure_ascii=False, default=str))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(cases)
