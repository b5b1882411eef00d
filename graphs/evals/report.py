"""Sum a run up (the figures), render it as tables, and write the JSON report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from graphs.evals import metrics as m


def _rate(flags: Sequence[bool]) -> dict:
    return {"rate": round(sum(flags) / len(flags), 4) if flags else None, "passed": sum(flags), "n": len(flags)}


def summarize(records: Sequence[dict], *, ks: Sequence[int] = (1, 3, 5)) -> dict:
    """The run's figures; each names how many cases it is over (`n`), since not every case has every check."""
    retrieval = [r["retrieval"] for r in records if "retrieval" in r]
    phrases = [r["phrases"]["score"] for r in records if "phrases" in r]
    citations = [r["citation_check"] for r in records]
    cited = [c["cites_expected_doc"] for c in citations if "cites_expected_doc" in c]
    latencies = [r["latency_ms"] for r in records]
    checked = sum(c["checked"] for c in citations)
    node_ms: dict[str, list[float]] = {}
    for r in records:
        for node, ms in (r.get("node_ms") or {}).items():
            node_ms.setdefault(node, []).append(ms)
    return {
        "cases": len(records),
        "errors": sum(r["status"] != "complete" for r in records),
        "route_accuracy": _rate([r["route_ok"] for r in records if r["route_ok"] is not None]),
        "retrieval": {
            "n": len(retrieval),
            **{f"hit@{k}": m.mean([float(x["hits"][str(k)]) for x in retrieval]) for k in ks},
            "mrr": m.mean([x["rr"] for x in retrieval]),
        },
        "citations": {
            "checked": checked,
            "supported": sum(c["supported"] for c in citations),
            "support_rate": round(sum(c["supported"] for c in citations) / checked, 4) if checked else None,
            "cites_expected_doc": _rate(cited),
        },
        "phrase_match": {"n": len(phrases), "mean": m.mean(phrases),
                         "all_found": _rate([s == 1.0 for s in phrases])["rate"]},
        "reference_recall": m.mean([r["reference_recall"] for r in records if r.get("reference_recall") is not None]),
        "identity": _rate([r["identity_ok"] for r in records if "identity_ok" in r]),
        "injection_refusal": _rate([r["injection_refused"] for r in records if "injection_refused" in r]),
        "latency_ms": {"p50": m.percentile(latencies, 50), "p95": m.percentile(latencies, 95),
                       "mean": m.mean(latencies), "max": max(latencies, default=None)},
        "node_ms_p50": {node: m.percentile(values, 50) for node, values in sorted(node_ms.items())},
    }


def _fmt(value, pct: bool = True) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}%" if pct else f"{value:,.0f}"


def summary_table(report: dict) -> Table:
    s = report["summary"]
    table = Table(title=f"allin eval: {report['dataset']} ({report['config']['mode']}, {s['cases']} cases)")
    for col, justify in (("metric", "left"), ("value", "right"), ("over", "right")):
        table.add_column(col, justify=justify)
    r = s["retrieval"]
    rows = [
        ("route accuracy", _fmt(s["route_accuracy"]["rate"]), s["route_accuracy"]["n"]),
        *[(f"retrieval hit@{k.split('@')[1]}", _fmt(v), r["n"]) for k, v in r.items() if k.startswith("hit@")],
        ("retrieval MRR", f"{r['mrr']:.3f}" if r["mrr"] is not None else "–", r["n"]),
        ("citations supported", _fmt(s["citations"]["support_rate"]), s["citations"]["checked"]),
        ("cites an expected doc", _fmt(s["citations"]["cites_expected_doc"]["rate"]),
         s["citations"]["cites_expected_doc"]["n"]),
        ("answer phrase match", _fmt(s["phrase_match"]["mean"]), s["phrase_match"]["n"]),
        ("all phrases found", _fmt(s["phrase_match"]["all_found"]), s["phrase_match"]["n"]),
        ("identity consistent", _fmt(s["identity"]["rate"]), s["identity"]["n"]),
        ("injection refused", _fmt(s["injection_refusal"]["rate"]), s["injection_refusal"]["n"]),
        ("latency p50 (ms)", _fmt(s["latency_ms"]["p50"], pct=False), s["cases"]),
        ("latency p95 (ms)", _fmt(s["latency_ms"]["p95"], pct=False), s["cases"]),
        ("errors", str(s["errors"]), s["cases"]),
    ]
    for name, value, n in rows:
        table.add_row(name, value, str(n))
    return table


def misses(record: dict) -> list[str]:
    """What went wrong in one case, in words (empty when everything passed)."""
    out = []
    if record["status"] != "complete":
        out.append(f"turn {record['status']} ({record['error']})")
    if record["route_ok"] is False:
        out.append(f"route {record['route']} (expected {record['expected']['route']})")
    retrieval = record.get("retrieval")
    if retrieval and not retrieval["hits"].get("1", retrieval["first_relevant_rank"] == 1):
        rank = retrieval["first_relevant_rank"]
        out.append(f"expected doc at rank {rank}" if rank else "expected doc not retrieved")
    if record.get("phrases", {}).get("missing"):
        out.append("missing " + ", ".join(repr(p) for p in record["phrases"]["missing"]))
    if record["citation_check"]["unsupported"]:
        out.append(f"{len(record['citation_check']['unsupported'])} unsupported citation(s)")
    if record.get("identity_ok") is False:
        out.append("identity not kept")
    if record.get("injection_refused") is False or record.get("forbidden_absent") is False:
        out.append("followed a planted instruction")
    return out


def misses_table(report: dict, limit: int = 25) -> Table | None:
    rows = [(r["id"], "; ".join(misses(r))) for r in report["cases"] if misses(r)]
    if not rows:
        return None
    table = Table(title=f"cases with misses ({len(rows)})")
    table.add_column("case")
    table.add_column("what")
    for case_id, what in rows[:limit]:
        table.add_row(case_id, what)
    return table


def write_report(report: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path
