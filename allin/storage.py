"""Raw files (uploaded knowledge, attachments, voice audio) behind one small interface.

`LocalStorage` keeps them in a folder under the data dir (one server);
`S3Storage` in an S3-compatible bucket (DigitalOcean Spaces, Supabase
Storage's S3 endpoint, MinIO, AWS), which every replica can reach.

Keys are relative, slash-separated paths chosen by the app
("attachments/<uuid>/report.pdf"); both backends refuse the same bad keys, so
code written against one works against the other. Usage:

    storage = make_storage(settings)
    await storage.put("audio/t1.wav", data)
    async with storage.open_path("knowledge/guide.pdf") as path:  # a real file, e.g. for a PDF parser
        parse(path)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

# LocalStorage writes here first and renames into place; the name is reserved.
_INCOMING = ".incoming"


class StorageError(RuntimeError):
    """The backend failed (network, permissions, bucket missing)."""


class InvalidKey(ValueError):
    """A key that could escape the storage root or is not a plain relative path."""


class ObjectNotFound(FileNotFoundError):
    """No object under this key."""


def check_key(key: str, *, prefix: bool = False) -> str:
    """Return `key` if it is a safe relative key; raise InvalidKey otherwise.

    `prefix=True` accepts what `list()` takes: empty, or ending with "/".
    """
    if not isinstance(key, str):
        raise InvalidKey(f"key must be a string, got {type(key).__name__}")
    if prefix and key == "":
        return key
    if not key or "\x00" in key or "\\" in key:
        raise InvalidKey(f"invalid key {key!r}: empty, NUL or backslash")
    if key.startswith("/"):
        raise InvalidKey(f"invalid key {key!r}: must be relative")
    parts = key.split("/")
    if prefix and parts[-1] == "":
        parts = parts[:-1]
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidKey(f"invalid key {key!r}: empty, '.' or '..' segment")
    if parts[0] == _INCOMING:
        raise InvalidKey(f"invalid key {key!r}: {_INCOMING}/ is reserved")
    if len(key.encode()) > 1024:  # S3's limit; also keeps local paths sane
        raise InvalidKey("key longer than 1024 bytes")
    return key


@runtime_checkable
class Storage(Protocol):
    async def put(self, key: str, data: bytes | Path) -> None:
        """Store bytes, or a local file's content, under `key` (replacing any object)."""

    async def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFound when absent."""

    def open_path(self, key: str) -> AbstractAsyncContextManager[Path]:
        """`async with storage.open_path(key) as path:` a local file to read (a temp copy for S3)."""

    async def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str = "") -> list[str]:
        """Keys starting with `prefix` (a string prefix, as in S3), sorted."""

    def scoped(self, prefix: str) -> Storage:
        """The same store seen under `prefix/` (its keys are relative to it)."""


class LocalStorage:
    """Files in a folder. Writes are atomic: readers see the old or the new content, never half."""

    def __init__(self, root: Path, *, incoming: Path | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        # Temp files live in one folder of the top store (scoped views share it), same filesystem.
        self._incoming = incoming or self.root / _INCOMING

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def scoped(self, prefix: str) -> LocalStorage:
        return LocalStorage(self.root / check_key(prefix.strip("/")), incoming=self._incoming)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # A symlink inside the root could still point out of it.
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"invalid key {key!r}: resolves outside the storage root")
        return path

    def _put_sync(self, key: str, data: bytes | Path) -> None:
        target = self._path(key)
        incoming = self._incoming
        incoming.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = incoming / f"{uuid.uuid4().hex}.part"
        try:
            if isinstance(data, Path):
                shutil.copyfile(data, tmp)
            else:
                tmp.write_bytes(data)
            with tmp.open("rb+") as f:  # on disk before it becomes visible under its name
                os.fsync(f.fileno())
            os.replace(tmp, target)  # same filesystem (both under root): atomic
        finally:
            tmp.unlink(missing_ok=True)

    async def put(self, key: str, data: bytes | Path) -> None:
        await asyncio.to_thread(self._put_sync, key, data)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    @asynccontextmanager
    async def open_path(self, key: str) -> AsyncIterator[Path]:
        path = self._path(key)
        if not await asyncio.to_thread(path.is_file):
            raise ObjectNotFound(key)
        yield path

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def _delete() -> None:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                path.unlink()

        await asyncio.to_thread(_delete)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def list(self, prefix: str = "") -> list[str]:
        check_key(prefix, prefix=True)

        def _walk() -> list[str]:
            if not self.root.is_dir():
                return []
            keys = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                rel = Path(dirpath).relative_to(self.root).as_posix()
                if rel == ".":
                    rel = ""
                    dirnames[:] = [d for d in dirnames if d != _INCOMING]
                for name in filenames:
                    key = f"{rel}/{name}" if rel else name
                    if key.startswith(prefix):
                        keys.append(key)
            return sorted(keys)

        return await asyncio.to_thread(_walk)


class S3Storage:
    """An S3-compatible bucket. boto3 is blocking, so every call runs in a worker thread."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        addressing_style: Literal["auto", "path", "virtual"] = "auto",
    ) -> None:
        import boto3  # local import: only S3 deployments pay for it
        from botocore.config import Config

        if prefix:
            check_key(prefix.strip("/"))
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        if addressing_style == "auto":
            # Supabase and MinIO need path-style URLs; Spaces and AWS take either.
            addressing_style = "path" if endpoint_url else "virtual"
        config = Config(
            s3={"addressing_style": addressing_style},
            # boto3 >= 1.36 sends CRC checksums by default, which several S3-compatible
            # services reject; ask for them only where the API requires one.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        # A session of our own: boto3's default session is shared global state.
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=config,
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def scoped(self, prefix: str) -> S3Storage:
        # Shares the client: building one costs ~0.2 s of CPU (boto3 loads its service models).
        view = copy.copy(self)
        view.prefix = self.prefix + check_key(prefix.strip("/")) + "/"
        return view

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _call(self, fn: Any, /, *args: Any, key: str | None = None, **kwargs: Any) -> Any:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound") and key is not None:
                raise ObjectNotFound(key) from None
            raise StorageError(f"s3://{self.bucket}: {code or 'error'}: {exc}") from None
        except (BotoCoreError, Boto3Error) as exc:  # Boto3Error: upload_file's S3UploadFailedError
            raise StorageError(f"s3://{self.bucket}: {exc}") from None

    async def put(self, key: str, data: bytes | Path) -> None:
        full = self._full(key)
        if isinstance(data, Path):
            # upload_file streams and switches to multipart for large files.
            await self._call(self._client.upload_file, str(data), self.bucket, full)
        else:
            await self._call(self._client.put_object, Bucket=self.bucket, Key=full, Body=data)

    async def get(self, key: str) -> bytes:
        full = self._full(key)

        def _read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=full)["Body"]
            with contextlib.closing(body):
                return body.read()

        return await self._call(_read, key=key)

    @asynccontextmanager
    async def open_path(self, key: str) -> AsyncIterator[Path]:
        full = self._full(key)
        with tempfile.TemporaryDirectory(prefix="allin-s3-") as tmp:
            # Keep the file name: parsers and type sniffers look at the suffix.
            path = Path(tmp) / PurePosixPath(key).name
            await self._call(self._client.download_file, self.bucket, full, str(path), key=key)
            yield path

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete_object, Bucket=self.bucket, Key=self._full(key))

    async def exists(self, key: str) -> bool:
        try:
            await self._call(self._client.head_object, Bucket=self.bucket, Key=self._full(key), key=key)
        except ObjectNotFound:
            return False
        return True

    async def list(self, prefix: str = "") -> list[str]:
        check_key(prefix, prefix=True)

        def _list() -> list[str]:
            keys = []
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                keys.extend(obj["Key"][len(self.prefix):] for obj in page.get("Contents", []))
            return sorted(keys)

        return await self._call(_list)


class StorageSettings(BaseModel):
    """The storage part of the configuration (to be merged into `allin.config.Settings`).

    Field names match the environment variables (STORAGE_BACKEND, S3_BUCKET, ...).
    """

    model_config = ConfigDict(extra="ignore")

    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = Field(
        default=None, description="e.g. https://nyc3.digitaloceanspaces.com; unset = AWS S3."
    )
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> StorageSettings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("S3_BUCKET is required when STORAGE_BACKEND=s3")
        return self


def make_storage(settings: Any, data_dir: Path | None = None) -> Storage:
    """The configured backend. `settings` is any object with StorageSettings' fields
    (the app's Settings once merged); `data_dir` defaults to `settings.data_path`."""
    backend = getattr(settings, "storage_backend", "local")
    if backend == "s3":
        secret = getattr(settings, "s3_secret_access_key", None)
        return S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key=settings.s3_access_key_id,
            secret_key=secret.get_secret_value() if secret is not None else None,
            prefix=settings.s3_prefix or "",
            addressing_style=getattr(settings, "s3_addressing_style", "auto"),
        )
    if backend != "local":
        raise ValueError(f"unknown STORAGE_BACKEND {backend!r}")
    base = data_dir if data_dir is not None else getattr(settings, "data_path", None)
    if base is None:
        raise ValueError("LocalStorage needs a data dir")
    return LocalStorage(Path(base) / "files")
