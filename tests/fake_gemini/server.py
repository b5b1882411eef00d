"""REST side of the fake Gemini API: models, Files (resumable upload), cachedContents."""

from __future__ import annotations

import asyncio

import base64
import hashlib
import json
import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse

from . import live
from .script import (Delay, Embedding, Entry, Error, Json, Reply, Text, file_uris, system_text,
                     texts_of)
from .wire import (count_tokens, echo_text, embed, instance, model_id, model_method, normalize,
                   not_found_message, stamp)

if TYPE_CHECKING:
    from .fake import FakeGemini

VERSIONS = ("v1beta", "v1alpha", "v1")
METHOD_KINDS = {"generateContent": "generate", "streamGenerateContent": "generate",
                "embedContent": "embed", "batchEmbedContents": "embed", "countTokens": "count_tokens"}


class ApiError(Exception):
    """Raised inside handlers; rendered as Google's error JSON."""

    def __init__(self, error: Error, headers: dict[str, str] | None = None) -> None:
        self.error, self.headers = error, headers or {}


def missing_file(file_id: str) -> ApiError:
    return ApiError(Error(403, f"You do not have permission to access the File {file_id} or it "
                          "may not exist.", "PERMISSION_DENIED"))


def missing_cache() -> ApiError:
    return ApiError(Error(403, "CachedContent not found (or permission denied)", "PERMISSION_DENIED"))


class CollapseSlashes:
    """ASGI wrapper: a base_url ending in '/' makes the SDK ask for '//ws/...'."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and "//" in scope["path"]:
            path = re.sub("/{2,}", "/", scope["path"])
            scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)


def default_reply(body: dict) -> Reply:
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if config.get("responseMimeType") == "application/json":
        return Json(instance(schema) if schema else {})
    if config.get("responseMimeType") == "text/x.enum" and schema:
        return Text(str(instance(schema)))
    return Text(echo_text(body.get("contents") or []))


def build_app(fake: FakeGemini) -> Any:
    app = FastAPI(title="fake-gemini", openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(ApiError)
    async def render_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.error.body(), status_code=exc.error.code, headers=exc.headers)

    async def record(request: Request, kind: str, model: str | None = None) -> Entry:
        raw_bytes = await request.body()
        raw = None
        if raw_bytes and "upload_id" not in request.query_params:  # chunks are file bytes
            try:
                raw = json.loads(raw_bytes)
            except ValueError:
                raw = None
        return fake.log.add(Entry(
            kind=kind, method=request.method, path=request.url.path, model=model,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=normalize(raw), raw=raw, query=dict(request.query_params)))

    def check(request: Request, version: str) -> None:
        if version not in VERSIONS:
            raise ApiError(Error(404, f"Unknown API version {version}.", "NOT_FOUND"))
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            raise ApiError(Error(403, "Method doesn't allow unregistered callers (callers without "
                                 "established identity). Please use API Key or other form of API "
                                 "consumer identity to call this API.", "PERMISSION_DENIED"))
        if key != fake.api_key:
            raise ApiError(Error(400, "API key not valid. Please pass a valid API key."))

    def check_model(model: str, method: str, version: str, wants: str) -> None:
        if model_method(model) != wants:
            raise ApiError(Error(404, not_found_message(model, method, version), "NOT_FOUND"))

    async def scripted(kind: str, headers: dict[str, str] | None = None) -> Reply | None:
        """Pop the next reply of this kind, sleeping through Delays; raise Errors."""
        epoch = fake.epoch
        while (reply := fake.script.pop(kind)) is not None:
            if isinstance(reply, Delay):
                if not await fake.sleep(reply.seconds, epoch):
                    return None  # reset during the delay: the script belongs to the next test
                continue
            if isinstance(reply, Error):
                raise ApiError(reply, headers)
            return reply
        return None

    def check_references(body: dict) -> None:
        """Missing or expired files / caches are refused like the real service does."""
        for uri in file_uris(body):
            file_id = uri.rstrip("/").rsplit("/", 1)[-1]
            if "/files/" in uri and fake.file(file_id) is None:
                raise missing_file(file_id)
        cache = body.get("cachedContent")
        if cache and fake.cache(cache.rsplit("/", 1)[-1]) is None:
            raise missing_cache()

    # --- models ------------------------------------------------------------------

    @app.post("/{version}/models/{target}")
    async def model_call(version: str, target: str, request: Request) -> Response:
        model, _, method = target.partition(":")
        kind = METHOD_KINDS.get(method)
        entry = await record(request, kind or "unknown", model)
        check(request, version)
        if kind is None:
            raise ApiError(Error(404, f"Method {method} not found.", "NOT_FOUND"))
        body = entry.body or {}
        if kind == "embed":
            check_model(model, method, version, "embed")
            return JSONResponse(await embed_reply(model, method, body))
        check_model(model, method, version, "generate")
        texts = entry.texts + ([entry.system_text] if entry.system_text else [])
        if kind == "count_tokens":
            await scripted("count_tokens")
            inner = body.get("generateContentRequest", body)
            return JSONResponse({"totalTokens": count_tokens(texts_of(inner) + [system_text(inner)])})
        check_references(body)
        reply = await scripted("generate") or default_reply(body)
        if not hasattr(reply, "parts"):
            raise ApiError(Error(500, f"fake_gemini: {reply!r} cannot answer {method}"))
        prompt_tokens = count_tokens(texts)
        response_id = secrets.token_hex(8)

        def payload(parts: list[dict], final: bool) -> dict:
            candidate: dict = {"content": {"role": "model", "parts": parts}, "index": 0}
            out: dict = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
            if final:
                candidate["finishReason"] = reply.finish_reason
                reply_tokens = count_tokens([p.get("text", "") for p in reply.parts()])
                out["usageMetadata"] = {"promptTokenCount": prompt_tokens,
                                        "candidatesTokenCount": reply_tokens,
                                        "totalTokenCount": prompt_tokens + reply_tokens}
            return out

        if method == "generateContent":
            parts = reply.parts()
            if isinstance(reply, Text):  # one text part, like the real non-streamed reply
                parts = [{"text": reply.text}]
            return JSONResponse(payload(parts, final=True))

        chunks = reply.stream_chunks()

        delay = getattr(reply, "chunk_delay_s", 0.0)

        async def events() -> Any:
            for i, chunk in enumerate(chunks):
                if i and delay:
                    await asyncio.sleep(delay)  # a model writing: the chunks reach the client apart
                yield f"data: {json.dumps(payload(chunk, final=i == len(chunks) - 1))}\r\n\r\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def embed_reply(model: str, method: str, body: dict) -> dict:
        requests = body.get("requests") if method == "batchEmbedContents" else [body]
        reply = await scripted("embed")
        default_dim = 768 if model in ("text-embedding-004", "embedding-001") else 3072
        vectors = []
        for i, req in enumerate(requests or []):
            dim = int(req.get("outputDimensionality") or default_dim)
            if not 1 <= dim <= 3072:
                raise ApiError(Error(400, f"outputDimensionality must be in [1, 3072], got {dim}."))
            text = " ".join(p.get("text", "") for p in (req.get("content") or {}).get("parts", []))
            vectors.append(reply.vectors[i] if isinstance(reply, Embedding) else embed(text, dim))
        if method == "embedContent":
            return {"embedding": {"values": vectors[0]}}
        return {"embeddings": [{"values": v} for v in vectors]}

    @app.get("/{version}/models")
    async def list_models(version: str, request: Request) -> JSONResponse:
        await record(request, "models")
        check(request, version)
        return JSONResponse({"models": [model_info(m) for m in fake.listed_models]})

    @app.get("/{version}/models/{model}")
    async def get_model(version: str, model: str, request: Request) -> JSONResponse:
        await record(request, "models", model)
        check(request, version)
        if model_method(model) is None:
            raise ApiError(Error(404, not_found_message(model, "get", version), "NOT_FOUND"))
        return JSONResponse(model_info(model))

    # --- Files API ---------------------------------------------------------------

    def upload_error(code: int, message: str) -> ApiError:
        # Without a final status the SDK retries the chunk 3 times, sleeping 1/2/4 s.
        return ApiError(Error(code, message), {"x-goog-upload-status": "final"})

    @app.post("/upload/{version}/files")
    async def upload(version: str, request: Request) -> Response:
        upload_id = request.query_params.get("upload_id")
        entry = await record(request, "upload")
        command = request.headers.get("x-goog-upload-command", "")
        if upload_id is None:  # start: the key is checked here only
            if command != "start" or request.headers.get("x-goog-upload-protocol") != "resumable":
                raise upload_error(400, "Expected a resumable upload start.")
            try:
                check(request, version)
            except ApiError as exc:
                raise upload_error(exc.error.code, exc.error.body()["error"]["message"]) from None
            await scripted("upload", {"x-goog-upload-status": "final"})
            meta = (entry.body or {}).get("file") or {}
            new_id = secrets.token_hex(8)
            fake.uploads[new_id] = {
                "meta": meta, "data": bytearray(),
                "size": int(request.headers.get("x-goog-upload-header-content-length")
                            or meta.get("sizeBytes") or -1),
                "mime": request.headers.get("x-goog-upload-header-content-type")
                or meta.get("mimeType") or "application/octet-stream",
            }
            url = f"{fake.base_url}/upload/{version}/files?upload_id={new_id}&upload_protocol=resumable"
            return Response(headers={"x-goog-upload-url": url, "x-goog-upload-status": "active",
                                     "x-goog-upload-chunk-granularity": "8388608"})
        pending = fake.uploads.get(upload_id)
        if pending is None:
            raise upload_error(404, f"Upload {upload_id} not found.")
        offset = int(request.headers.get("x-goog-upload-offset", "-1"))
        if offset != len(pending["data"]):
            raise upload_error(400, f"Offset {offset} does not match {len(pending['data'])} bytes received.")
        pending["data"] += await request.body()
        if "finalize" not in command:
            return Response(headers={"x-goog-upload-status": "active"})
        del fake.uploads[upload_id]
        data = bytes(pending["data"])
        if pending["size"] >= 0 and pending["size"] != len(data):
            raise upload_error(400, f"Declared {pending['size']} bytes, received {len(data)}.")
        file = fake.add_file(data, pending["mime"], pending["meta"].get("displayName"))
        return JSONResponse({"file": file}, headers={"x-goog-upload-status": "final"})

    @app.get("/{version}/files/{file_id}")
    async def get_file(version: str, file_id: str, request: Request) -> JSONResponse:
        await record(request, "files")
        check(request, version)
        await scripted("files")
        if (file := fake.file(file_id)) is None:
            raise missing_file(file_id)
        return JSONResponse(file)

    @app.delete("/{version}/files/{file_id}")
    async def delete_file(version: str, file_id: str, request: Request) -> JSONResponse:
        await record(request, "files")
        check(request, version)
        await scripted("files")
        if fake.file(file_id) is None:
            raise missing_file(file_id)
        fake.files.pop(file_id, None)
        return JSONResponse({})

    @app.get("/{version}/files")
    async def list_files(version: str, request: Request) -> JSONResponse:
        await record(request, "files")
        check(request, version)
        await scripted("files")
        files = sorted((f for i in list(fake.files) if (f := fake.file(i))),
                       key=lambda f: f["createTime"], reverse=True)
        return JSONResponse(page(files, "files", request))

    # --- cachedContents ------------------------------------------------------------

    @app.post("/{version}/cachedContents")
    async def create_cache(version: str, request: Request) -> JSONResponse:
        entry = await record(request, "caches")
        check(request, version)
        body = entry.body or {}
        model = model_id(body.get("model", ""))
        check_model(model, "createCachedContent", version, "generate")
        await scripted("caches")
        check_references(body)
        return JSONResponse(fake.add_cache(body, model, count_tokens(entry.texts)))

    @app.get("/{version}/cachedContents")
    async def list_caches(version: str, request: Request) -> JSONResponse:
        await record(request, "caches")
        check(request, version)
        caches = [c for i in list(fake.caches) if (c := fake.cache(i))]
        return JSONResponse(page(caches, "cachedContents", request))

    @app.api_route("/{version}/cachedContents/{cache_id}", methods=["GET", "PATCH", "DELETE"])
    async def one_cache(version: str, cache_id: str, request: Request) -> JSONResponse:
        entry = await record(request, "caches")
        check(request, version)
        await scripted("caches")
        if (cache := fake.cache(cache_id)) is None:
            raise missing_cache()
        if request.method == "DELETE":
            fake.caches.pop(cache_id, None)
            return JSONResponse({})
        if request.method == "PATCH":
            fake.set_cache_expiry(cache_id, entry.body or {})
            cache = fake.cache(cache_id)
        return JSONResponse(cache)

    @app.websocket("/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent")
    async def bidi(websocket: WebSocket, version: str) -> None:
        await live.serve(fake, websocket, version)

    return CollapseSlashes(app)


def page(items: list[dict], key: str, request: Request) -> dict:
    size = min(int(request.query_params.get("pageSize") or 10), 100)
    start = int(request.query_params.get("pageToken") or 0)
    out: dict = {key: items[start:start + size]}
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    return out


def model_info(model: str) -> dict:
    methods = {"generate": ["generateContent", "streamGenerateContent", "countTokens",
                            "createCachedContent"],
               "embed": ["embedContent", "batchEmbedContents"],
               "live": ["bidiGenerateContent"]}[model_method(model) or "generate"]
    return {"name": f"models/{model}", "version": "001", "displayName": model,
            "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
            "supportedGenerationMethods": methods}


def file_record(file_id: str, data: bytes, mime: str, display_name: str | None,
                base_url: str, created: datetime, expires: datetime) -> dict:
    record = {
        "name": f"files/{file_id}", "mimeType": mime, "sizeBytes": str(len(data)),
        "createTime": stamp(created), "updateTime": stamp(created),
        "expirationTime": stamp(expires),
        "sha256Hash": base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode(),
        "uri": f"{base_url}/v1beta/files/{file_id}", "state": "ACTIVE", "source": "UPLOADED",
    }
    return record | ({"displayName": display_name} if display_name else {})
