"""Both storage backends pass the same tests: a folder, and S3 (a local moto server, loopback only)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from allin.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageSettings,
    make_storage,
)
from tests.conftest import short_tmpdir
from tests.support.pg import free_port

BUCKET = "allin-test"
CREDS = {"s3_access_key_id": "testing", "s3_secret_access_key": "testing", "s3_region": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    raw_client(url).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


def raw_client(endpoint: str):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


@pytest.fixture
def tmp() -> Iterator[Path]:
    d = short_tmpdir("alst")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def s3_storage(s3_endpoint: str) -> Storage:
    """Built through make_storage, as the app does."""
    settings = StorageSettings(storage_backend="s3", s3_bucket=BUCKET, s3_endpoint_url=s3_endpoint,
                               s3_prefix="t", **CREDS)
    return make_storage(settings)


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp: Path) -> Storage:
    """Each test sees an empty store: a fresh folder, or its own prefix in the bucket."""
    if request.param == "local":
        return make_storage(StorageSettings(storage_backend="local"), data_dir=tmp / "data")
    return request.getfixturevalue("s3_storage").scoped(tmp.name)


def test_factory_picks_the_backend(storage: Storage, tmp: Path):
    assert isinstance(storage, Storage)
    if isinstance(storage, LocalStorage):
        assert storage.root == (tmp / "data" / "files").resolve()
    else:
        assert isinstance(storage, S3Storage) and storage.prefix == f"t/{tmp.name}/"


async def test_scoped_views_share_the_store(storage: Storage):
    inner = storage.scoped("chats/42")
    await inner.put("a.txt", b"inside")
    assert await storage.get("chats/42/a.txt") == b"inside"
    assert await inner.list() == ["a.txt"]
    with pytest.raises(InvalidKey):
        storage.scoped("../elsewhere")


async def test_put_get_exists_delete(storage: Storage):
    key = "attachments/42/notes.txt"
    assert not await storage.exists(key)
    await storage.put(key, b"first")
    assert await storage.exists(key)
    assert await storage.get(key) == b"first"
    await storage.put(key, b"second version")  # overwrite
    assert await storage.get(key) == b"second version"
    await storage.delete(key)
    assert not await storage.exists(key)
    with pytest.raises(ObjectNotFound):
        await storage.get(key)
    await storage.delete(key)  # already gone: no error


async def test_binary_content_round_trips_exactly(storage: Storage):
    data = bytes(range(256)) * 1000 + b"\x00\r\n"
    await storage.put("audio/turn.pcm", data)
    assert await storage.get("audio/turn.pcm") == data


async def test_put_from_a_file_and_open_path(storage: Storage, tmp: Path):
    # 9 MB: above boto3's 8 MB multipart threshold, so S3 uploads it in parts.
    src = tmp / "big.pdf"
    payload = b"%PDF-1.7\n" + bytes(range(256)) * (9 * 1024 * 4)
    src.write_bytes(payload)
    await storage.put("knowledge/guide.pdf", src)
    async with storage.open_path("knowledge/guide.pdf") as path:
        assert path.is_file()
        assert path.suffix == ".pdf"  # parsers and sniffers look at the name
        assert path.read_bytes() == payload
        seen = path
    if isinstance(storage, S3Storage):
        assert not seen.exists(), "the temporary download is removed afterwards"
    else:
        assert seen.exists(), "a local key is the stored file itself"
    with pytest.raises(ObjectNotFound):
        async with storage.open_path("knowledge/missing.pdf"):
            pass


async def test_list_by_prefix(storage: Storage):
    keys = ["a/1.txt", "a/2.txt", "a/sub/3.txt", "ab/4.txt", "b/5.txt"]
    await asyncio.gather(*(storage.put(k, k.encode()) for k in keys))
    assert await storage.list("a/") == ["a/1.txt", "a/2.txt", "a/sub/3.txt"]
    assert await storage.list("a") == ["a/1.txt", "a/2.txt", "a/sub/3.txt", "ab/4.txt"]
    assert await storage.list() == sorted(keys)
    assert await storage.list("zzz/") == []


async def test_concurrent_writes_all_land(storage: Storage):
    await asyncio.gather(*(storage.put(f"many/{i:03d}", str(i).encode()) for i in range(30)))
    listed = await storage.list("many/")
    assert listed == [f"many/{i:03d}" for i in range(30)]
    assert await storage.get("many/017") == b"17"


@pytest.mark.parametrize("bad", ["", "../x", "a/../../x", "..", "/etc/passwd", "a\x00b", "a//b", "./a", "a/",
                                 "a\\b", ".incoming/x"])
async def test_unsafe_keys_are_refused(storage: Storage, bad: str):
    with pytest.raises(InvalidKey):
        await storage.put(bad, b"x")
    with pytest.raises(InvalidKey):
        await storage.get(bad)
    with pytest.raises(InvalidKey):
        await storage.exists(bad)


async def test_list_refuses_escaping_prefixes(storage: Storage):
    for bad in ("../", "/abs", "a/../.."):
        with pytest.raises(InvalidKey):
            await storage.list(bad)


# --- what only one backend has ---------------------------------------------------------------

async def test_local_writes_are_atomic_and_leave_no_temp_files(tmp: Path):
    store = LocalStorage(tmp / "files")
    await store.put("doc.txt", b"old")
    with pytest.raises(FileNotFoundError):
        await store.put("doc.txt", tmp / "does-not-exist")  # a failed write...
    assert await store.get("doc.txt") == b"old"  # ...leaves the old content whole
    assert list((tmp / "files" / ".incoming").iterdir()) == []
    assert await store.list() == ["doc.txt"]


async def test_local_refuses_a_symlink_out_of_the_root(tmp: Path):
    store = LocalStorage(tmp / "files")
    (tmp / "files").mkdir()
    (tmp / "outside").mkdir()
    (tmp / "outside" / "secret").write_text("no")
    (tmp / "files" / "link").symlink_to(tmp / "outside")
    with pytest.raises(InvalidKey):
        await store.get("link/secret")


async def test_s3_keeps_objects_under_its_prefix(s3_endpoint: str, tmp: Path):
    common = {"endpoint_url": s3_endpoint, "region": "us-east-1", "access_key": "testing", "secret_key": "testing"}
    one = S3Storage(BUCKET, prefix=f"p1-{tmp.name}", **common)
    two = S3Storage(BUCKET, prefix=f"p2-{tmp.name}/", **common)
    await one.put("x.txt", b"one")
    await two.put("x.txt", b"two")
    assert await one.get("x.txt") == b"one" and await two.get("x.txt") == b"two"
    assert await one.list() == ["x.txt"]
    raw = raw_client(s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix=f"p1-{tmp.name}/")
    assert [o["Key"] for o in raw["Contents"]] == [f"p1-{tmp.name}/x.txt"]


async def test_s3_missing_bucket_is_a_clear_error(s3_endpoint: str):
    from allin.storage import StorageError

    store = S3Storage("no-such-bucket", endpoint_url=s3_endpoint, region="us-east-1",
                      access_key="testing", secret_key="testing")
    with pytest.raises(StorageError, match="no-such-bucket"):
        await store.put("x", b"x")
    src = Path(__file__)
    with pytest.raises(StorageError, match="no-such-bucket"):
        await store.put("x", src)  # upload_file fails with boto3's own exception type
    with pytest.raises(StorageError, match="no-such-bucket"):
        await store.list()


def test_settings_require_a_bucket_for_s3():
    with pytest.raises(ValueError, match="S3_BUCKET"):
        StorageSettings(storage_backend="s3")
    secret = StorageSettings(storage_backend="s3", s3_bucket="b", s3_secret_access_key="hunter2")
    assert "hunter2" not in repr(secret)
