"""`allin eval --langsmith`: the run recorded as a LangSmith experiment.

The dataset is mirrored in LangSmith (`allin-<name>`, one example per case,
found again by its `case_id`), the run is a project that references it (what
LangSmith calls an experiment), every case's root run is linked to its example
(`LangChainTracer(example_id=...)`) and carries our scores as feedback, and
the summary figures go into the experiment's metadata. The calls are
synchronous HTTP: the engine runs them in a worker thread.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID, uuid4

from allin.tracing import Tracing
from graphs.evals.dataset import Dataset, EvalCase
from graphs.evals.report import misses


def _scores(record: dict) -> dict[str, float]:
    """The case's checks as numbers, named like the report's summary."""
    scores: dict[str, float] = {"latency_ms": record["latency_ms"]}
    if record["route_ok"] is not None:
        scores["route_correct"] = float(record["route_ok"])
    if "retrieval" in record:
        scores["reciprocal_rank"] = record["retrieval"]["rr"]
        scores.update({f"hit@{k}": float(v) for k, v in record["retrieval"]["hits"].items()})
    if "phrases" in record:
        scores["phrase_match"] = record["phrases"]["score"]
    checked = record["citation_check"]["checked"]
    if checked:
        scores["citation_support"] = record["citation_check"]["supported"] / checked
    for key in ("identity_ok", "injection_refused"):
        if key in record:
            scores[key] = float(record[key])
    return scores


class Experiment:
    def __init__(self, tracing: Tracing, *, prefix: str | None = None) -> None:
        self.tracing = tracing
        self.client = tracing.client
        self.prefix = prefix
        self.name = ""
        self.project_id: UUID | None = None
        self.dataset_id: UUID | None = None
        self.example_ids: dict[str, UUID] = {}
        self.metadata: dict[str, Any] = {}

    def start(self, dataset: Dataset, metadata: dict) -> None:
        ls_name = f"allin-{dataset.name}"
        if self.client.has_dataset(dataset_name=ls_name):
            ls_dataset = self.client.read_dataset(dataset_name=ls_name)
            self.example_ids = {(e.metadata or {}).get("case_id"): e.id
                                for e in self.client.list_examples(dataset_id=ls_dataset.id)}
        else:
            ls_dataset = self.client.create_dataset(ls_name, description=dataset.description or f"Allin eval {dataset.name}")
        self.dataset_id = ls_dataset.id
        missing = [c for c in dataset.cases if c.id not in self.example_ids]
        if missing:
            examples = [_example(c) for c in missing]  # ids chosen here: the server's answer is unordered
            self.client.create_examples(dataset_id=ls_dataset.id, examples=examples)
            self.example_ids.update({c.id: e["id"] for c, e in zip(missing, examples, strict=True)})
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        self.name = f"{self.prefix or 'allin-' + dataset.name}-{metadata['mode']}-{stamp}"
        self.metadata = {**metadata, "dataset": dataset.name}
        project = self.client.create_project(self.name, reference_dataset_id=ls_dataset.id, metadata=self.metadata,
                                             description=f"allin eval {dataset.path.name}")
        self.project_id = project.id

    def tracing_for(self, case: EvalCase) -> Tracing:
        return self.tracing.derive(project=self.name, example_id=self.example_ids.get(case.id),
                                   metadata={"eval_case": case.id, "experiment": self.name}, tags=("eval",))

    def record(self, case: EvalCase, record: dict, run_id: UUID | None) -> str | None:
        """Our scores as feedback on the case's root run (batched with the traces)."""
        if run_id is None:
            return None
        for key, score in _scores(record).items():
            self.client.create_feedback(run_id, key=key, score=score, trace_id=run_id, session_id=self.project_id,
                                        comment="; ".join(misses(record)) or None)
        return str(run_id)

    def finish(self, summary: dict) -> dict[str, Any]:
        figures = {
            "route_accuracy": summary["route_accuracy"]["rate"],
            **{k: v for k, v in summary["retrieval"].items() if k != "n"},
            "citation_support": summary["citations"]["support_rate"],
            "phrase_match": summary["phrase_match"]["mean"],
            "identity": summary["identity"]["rate"],
            "injection_refusal": summary["injection_refusal"]["rate"],
            "latency_p50_ms": summary["latency_ms"]["p50"], "latency_p95_ms": summary["latency_ms"]["p95"],
        }
        self.client.update_project(self.project_id, end_time=datetime.now(timezone.utc),
                                   metadata={**self.metadata, "summary": figures})
        self.client.flush(timeout=30)
        return {"experiment": self.name, "project_id": str(self.project_id), "dataset_id": str(self.dataset_id),
                "summary": figures}


def _example(case: EvalCase) -> dict:
    outputs: dict[str, Any] = {}
    for key in ("route", "expected_docs", "expected_phrases", "reference", "check", "forbidden_phrases"):
        value = getattr(case, key)
        if value:
            outputs[key] = value
    return {"id": uuid4(), "inputs": {"question": case.question}, "outputs": outputs,
            "metadata": {"case_id": case.id, "tags": list(case.tags)}}
