"""The app's own route table as test data: every operation, who may call it, the ids it takes.

The sweeps in this folder read the routes from the app (FastAPI's route
contexts and its OpenAPI document), never from a hand-kept list, so a route
added tomorrow is swept tomorrow.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts

from api.deps import get_admin, get_current_user

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def is_id_name(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "_ids"))


@dataclass(frozen=True)
class IdParam:
    name: str
    where: str  # path | query | json | form


@dataclass
class Operation:
    method: str
    path: str  # the template: /chat/history/{chat_id}
    admin: bool  # depends on get_admin
    authenticated: bool  # depends on get_current_user (directly or through get_admin)
    id_params: list[IdParam] = field(default_factory=list)
    body_kind: str | None = None  # json | form
    body_schema: dict | None = None  # resolved

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _calls(dependant) -> set:
    out = set()
    for sub in dependant.dependencies:
        out.add(sub.call)
        out |= _calls(sub)
    return out


def resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _non_null(schema: dict, spec: dict) -> dict:
    schema = resolve(schema, spec)
    for option in schema.get("anyOf", []):
        if resolve(option, spec).get("type") != "null":
            return resolve(option, spec)
    return schema


def operations(app) -> list[Operation]:
    """Every HTTP operation of the app, with its auth requirements and id parameters."""
    spec = app.openapi()
    ops = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute):
            continue
        calls = _calls(route.dependant)
        for method in sorted(set(ctx.methods or ()) & set(HTTP_METHODS)):
            op = Operation(method, ctx.path, admin=get_admin in calls,
                           authenticated=bool({get_admin, get_current_user} & calls))
            described = spec["paths"].get(ctx.path, {}).get(method.lower())
            if described is None:
                # Left out of the schema (the web page, /metrics): it must take nothing we would sweep.
                names = [p.name for p in (*route.dependant.path_params, *route.dependant.query_params,
                                          *route.dependant.body_params)]
                assert not [n for n in names if is_id_name(n)], f"{op} takes ids but is not in the OpenAPI schema"
                ops.append(op)
                continue
            for p in described.get("parameters", []):
                if p["in"] in ("path", "query") and (is_id_name(p["name"]) or p["in"] == "path"):
                    op.id_params.append(IdParam(p["name"], p["in"]))
            body = described.get("requestBody", {}).get("content", {})
            for media, kind in (("application/json", "json"), ("multipart/form-data", "form"),
                                ("application/x-www-form-urlencoded", "form")):
                if media in body:
                    op.body_kind, op.body_schema = kind, resolve(body[media]["schema"], spec)
                    for name in op.body_schema.get("properties", {}):
                        if is_id_name(name):
                            op.id_params.append(IdParam(name, kind))
            ops.append(op)
    return ops


def websocket_paths(app) -> list[str]:
    return [ctx.path for ctx in iter_route_contexts(app.routes) if isinstance(ctx.original_route, APIWebSocketRoute)]


# --- requests -----------------------------------------------------------------------------


def sample(schema: dict, spec: dict) -> Any:
    """A small valid value for a JSON schema (what a well-behaved client would send)."""
    schema = _non_null(schema, spec)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return "sweep"[: schema.get("maxLength", 5)].ljust(schema.get("minLength", 1), "s")
    if kind in ("integer", "number"):
        return int(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return [sample(schema.get("items", {}), spec) for _ in range(schema.get("minItems", 0))]
    if kind == "object" or "properties" in schema:
        return {k: sample(v, spec) for k, v in schema.get("properties", {}).items() if k in schema.get("required", [])}
    return None


def request_kwargs(op: Operation, ids: dict[str, str], spec: dict) -> tuple[str, dict]:
    """(url, httpx kwargs) for `op` with the given ids and sample values for everything else."""
    path = op.path
    params: dict[str, str] = {}
    for p in op.id_params:
        if p.where == "path":
            path = path.replace("{" + p.name + "}", ids[p.name])
        elif p.where == "query":
            params[p.name] = ids[p.name]
    assert "{" not in path, f"{op}: a path parameter without a value"
    kwargs: dict[str, Any] = {"params": params} if params else {}
    if op.body_kind is not None:
        schema = op.body_schema or {}
        required = set(schema.get("required", []))
        fields = {}
        for name, prop in schema.get("properties", {}).items():
            if is_id_name(name):
                fields[name] = ids[name]
            elif name in required:
                fields[name] = sample(prop, spec)
        if op.body_kind == "json":
            kwargs["json"] = fields
        else:
            binary = {n for n, prop in schema.get("properties", {}).items() if _is_binary(_non_null(prop, spec))}
            kwargs["files"] = {n: ("note.txt", b"a note from the sweep\n", "text/plain") for n in binary}
            kwargs["data"] = {k: v for k, v in fields.items() if k not in binary}
    return path, kwargs


def _is_binary(schema: dict) -> bool:
    return schema.get("format") == "binary" or schema.get("contentMediaType") == "application/octet-stream"
