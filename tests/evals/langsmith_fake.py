"""A tiny local LangSmith API for tests: it stores what the langsmith client sends.

Enough of the API for tracing (`/runs/multipart`, `/runs/batch`, `/runs`),
datasets and examples, projects (`/sessions`) and feedback, on 127.0.0.1 in a
thread. `runs` merges every post/patch (and their `.inputs`/`.outputs`/`.extra`
parts) by run id; `requests` keeps each request's method, path and headers.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TENANT = str(uuid.UUID(int=8))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class FakeLangSmith:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.runs: dict[str, dict] = {}
        self.datasets: dict[str, dict] = {}
        self.examples: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.feedback: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="fake-langsmith")

    def __enter__(self) -> FakeLangSmith:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what arrived ----------------------------------------------------------------
    def root_runs(self) -> list[dict]:
        return [r for r in self.runs.values() if not r.get("parent_run_id")]

    def _run_op(self, op: str, run: dict) -> None:
        run_id = str(run.get("id"))
        with self.lock:
            merged = self.runs.setdefault(run_id, {})
            merged.update(run)
            merged.setdefault("ops", []).append(op)

    def _multipart(self, content_type: str, body: bytes) -> None:
        message = BytesParser(policy=email_policy).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition") or ""
            payload = part.get_payload(decode=True) or b""
            data = json.loads(payload) if payload.strip() else None
            op, _, rest = name.partition(".")
            run_id, _, field = rest.partition(".")
            if op == "feedback":
                with self.lock:
                    self.feedback.append(data)
            elif field:  # post.<id>.inputs / .outputs / .extra ...
                self._run_op(op, {"id": run_id, field: data})
            elif isinstance(data, dict):
                self._run_op(op, data)

    # --- HTTP ------------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return None

            def _reply(self, obj, status: int = 200) -> None:
                data = json.dumps(obj, default=str).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                n = int(self.headers.get("content-length") or 0)
                return self.rfile.read(n) if n else b""

            def _record(self, body: bytes) -> tuple[str, dict]:
                parts = urlsplit(self.path)
                fake.requests.append({"method": self.command, "path": parts.path, "headers": dict(self.headers),
                                      "size": len(body)})
                return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}

            def do_GET(self) -> None:
                path, query = self._record(b"")
                if path == "/info":
                    return self._reply({"version": "fake", "instance_flags": {}, "tenant_handle": "t"})
                if path == "/datasets":
                    found = [d for d in fake.datasets.values() if d["name"] == query.get("name", d["name"])]
                    return self._reply(found)
                if path == "/examples":
                    found = [e for e in fake.examples.values() if e["dataset_id"] == query.get("dataset")]
                    offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
                    return self._reply(found[offset:offset + limit])
                if path == "/sessions":
                    return self._reply(list(fake.sessions.values())[:1])
                return self._reply({})

            def do_POST(self) -> None:
                body = self._body()
                path, _ = self._record(body)
                if path == "/runs/multipart":
                    fake._multipart(self.headers["content-type"], body)
                    return self._reply({})
                data = json.loads(body) if body else {}
                if path == "/runs/batch":
                    for op in ("post", "patch"):
                        for run in data.get(op) or []:
                            fake._run_op(op, run)
                    return self._reply({})
                if path == "/runs":
                    fake._run_op("post", data)
                    return self._reply({})
                if path == "/datasets":
                    ds = {"id": str(uuid.uuid4()), "name": data["name"], "description": data.get("description"),
                          "created_at": _now(), "tenant_id": TENANT, "data_type": data.get("data_type", "kv")}
                    fake.datasets[ds["id"]] = ds
                    return self._reply(ds)
                if path == "/examples/bulk":
                    out = []
                    for ex in data:
                        ex = {**ex, "id": str(ex.get("id") or uuid.uuid4()), "created_at": _now()}
                        fake.examples[ex["id"]] = ex
                        out.append(ex)
                    return self._reply(out)
                if path == "/sessions":
                    session = {"id": str(uuid.uuid4()), "tenant_id": TENANT, "start_time": _now(), **data}
                    fake.sessions[session["id"]] = session
                    return self._reply(session)
                if path == "/feedback":
                    fake.feedback.append(data)
                    return self._reply({"id": data.get("id") or str(uuid.uuid4())})
                return self._reply({})

            def do_PATCH(self) -> None:
                body = self._body()
                path, _ = self._record(body)
                data = json.loads(body) if body else {}
                if path.startswith("/runs/"):
                    fake._run_op("patch", {"id": path.rsplit("/", 1)[1], **data})
                    return self._reply({})
                if path.startswith("/sessions/"):
                    session = fake.sessions.setdefault(path.rsplit("/", 1)[1], {})
                    session.update({k: v for k, v in data.items() if v is not None})
                    session.setdefault("patches", []).append(data)
                    return self._reply(session)
                return self._reply({})

        return Handler
