"""Object storage: S3-compatible buckets (boto3), or a local directory per bucket (embedded mode).

Both speak the same small interface, :class:`ObjectStore`, addressed by ``(bucket, key)``:
segment audio (:mod:`api.audio_store`), job documents and job outputs (:mod:`api.jobs`) go
through it. The S3 flavour is tested against a real S3 server process on loopback
(``tests/integration/test_jobs_s3.py``); OCI Object Storage's Amazon S3 Compatibility API is the
production target, which needs path-style addressing and SigV4 (both set here).

Writes are atomic in both: an S3 object appears only when its PUT (or multipart upload)
completes, and a local object is written to a temporary file and renamed into place, so a reader
never sees half an object.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from contract.settings import Settings

CHUNK_BYTES = 1024 * 1024


class ObjectError(Exception):
    """The store refused or failed an operation; the message names the object."""


class NoSuchObject(ObjectError):
    """The object (or its bucket) does not exist."""


class ObjectTooLarge(ObjectError):
    """The object is larger than the caller's limit."""


class ObjectChanged(ObjectError):
    """The object is not the version the caller expected (its ETag differs)."""


class InvalidKey(ObjectError):
    """A bucket name or object key no store accepts (a caller's mistake, not a store failure)."""


# S3 and OCI Object Storage cap keys at 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024


def check_key(key: str) -> None:
    """Refuse a key that is empty, too long, or has an empty, ``.`` or ``..`` part.

    The same rule holds for every store, so a key that one store refuses is refused up front,
    where a client gave it, and never reaches a store (the local directory would otherwise
    resolve ``..`` out of its bucket; S3 clients normalize such paths differently).

    Raises:
        InvalidKey: The message says what is wrong with ``key``.
    """
    if not key:
        raise InvalidKey("the object key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"the object key is over {MAX_KEY_BYTES} bytes")
    if any(p in {"", ".", ".."} for p in key.split("/")):
        raise InvalidKey(
            f"invalid object key {key!r}: it must not start or end with '/', contain '//', "
            "or have '.' or '..' parts"
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidKey(f"invalid object key {key!r}: it has control characters")


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object.

    Attributes:
        key: The object's key.
        etag: Its entity tag, quotes removed (an MD5 for single-part S3 objects; opaque).
        size: Bytes.
        last_modified: When it was last written (UTC).
    """

    key: str
    etag: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class ObjectStream:
    """An object being read: ``info`` describes exactly the bytes ``chunks`` yields.

    Attributes:
        info: The metadata of the version being streamed (not of a later one).
        chunks: Its bytes, in chunks of about :data:`CHUNK_BYTES`; closes the source when done.
    """

    info: ObjectInfo
    chunks: Generator[bytes, None, None]


class ObjectStore(Protocol):
    """Buckets of objects: what Voxmill needs of S3 and of the local directory."""

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "") -> None:
        """Write an object whole (atomically)."""

    def put_file(self, bucket: str, key: str, source: IO[bytes], content_type: str = "") -> None:
        """Write an object from an open file, streamed (multipart on S3), atomically."""

    def get_bytes(self, bucket: str, key: str, limit: int | None = None) -> bytes:
        """Read an object whole.

        Raises:
            NoSuchObject: It does not exist.
            ObjectTooLarge: It has more than ``limit`` bytes (checked before reading).
        """

    def stream(self, bucket: str, key: str, if_match: str | None = None) -> ObjectStream:
        """Open an object for streaming, with the metadata of the very version streamed.

        Args:
            bucket: The bucket.
            key: The key.
            if_match: Read only if the object's ETag is this one.

        Raises:
            NoSuchObject: It does not exist.
            ObjectChanged: Its ETag is not ``if_match``.
        """

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's metadata, or ``None`` when it does not exist."""

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, in key order."""

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object (no error when it is already gone)."""

    def presign(self, bucket: str, key: str, ttl_s: int) -> str | None:
        """A URL that downloads the object without credentials, or ``None`` (local store)."""

    def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket if it does not exist (tests and the embedded mode)."""


def _local_path(root: Path, bucket: str, key: str) -> Path:
    if not bucket or "/" in bucket or bucket in {".", ".."}:
        raise InvalidKey(f"invalid bucket name {bucket!r}")
    check_key(key)
    return root / bucket / Path(*key.split("/"))


class LocalObjectStore:
    """Buckets as directories under ``root``: ``root/<bucket>/<key>``.

    The ETag is the MD5 of the content, as S3 gives for single-part uploads.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return _local_path(self.root, bucket, key)

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "") -> None:
        """See :class:`ObjectStore`."""
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, bucket: str, key: str, source: IO[bytes], content_type: str = "") -> None:
        """See :class:`ObjectStore`."""
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK_BYTES):
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, bucket: str, key: str, limit: int | None = None) -> bytes:
        """See :class:`ObjectStore`."""
        path = self._path(bucket, key)
        try:
            size = path.stat().st_size
        except FileNotFoundError as e:
            raise NoSuchObject(f"no object {key!r} in bucket {bucket!r}") from e
        if limit is not None and size > limit:
            raise ObjectTooLarge(f"object {key!r} has {size} bytes, over the limit of {limit}")
        return path.read_bytes()

    def stream(self, bucket: str, key: str, if_match: str | None = None) -> ObjectStream:
        """See :class:`ObjectStore`.

        The open file keeps the version it opened: a rename over the key (how objects are
        written) does not change what is streamed, so ``info`` stays true to the bytes.
        """
        path = self._path(bucket, key)
        try:
            f = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise NoSuchObject(f"no object {key!r} in bucket {bucket!r}") from e
        try:
            stat = os.fstat(f.fileno())
            digest = hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False))
            f.seek(0)
        except BaseException:
            f.close()
            raise
        info = ObjectInfo(
            key=key,
            etag=digest.hexdigest(),
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
        )
        if if_match is not None and info.etag != if_match:
            f.close()
            raise ObjectChanged(f"object {key!r} in bucket {bucket!r} has changed")

        def chunks() -> Generator[bytes, None, None]:
            with f:
                while chunk := f.read(CHUNK_BYTES):
                    yield chunk

        return ObjectStream(info, chunks())

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """See :class:`ObjectStore`."""
        path = self._path(bucket, key)
        if not path.is_file():
            return None
        return self._info(path, key)

    @staticmethod
    def _info(path: Path, key: str) -> ObjectInfo:
        stat = path.stat()
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        return ObjectInfo(key=key, etag=digest, size=stat.st_size, last_modified=modified)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """See :class:`ObjectStore`."""
        base = self.root / bucket
        if not base.is_dir():
            return iter(())
        found = sorted(
            p.relative_to(base).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return (self._info(base / k, k) for k in found if k.startswith(prefix))

    def delete(self, bucket: str, key: str) -> None:
        """See :class:`ObjectStore`."""
        self._path(bucket, key).unlink(missing_ok=True)

    def presign(self, bucket: str, key: str, ttl_s: int) -> str | None:
        """See :class:`ObjectStore`: a local directory has no URLs."""
        return None

    def ensure_bucket(self, bucket: str) -> None:
        """See :class:`ObjectStore`."""
        _local_path(self.root, bucket, "x").parent.mkdir(parents=True, exist_ok=True)


class S3ObjectStore:
    """An S3-compatible endpoint through boto3.

    Args:
        client: A boto3 S3 client (see :func:`s3_client`).
        presign_client: The client presigned URLs are made with (an endpoint clients can reach);
            default ``client``.
    """

    def __init__(self, client: Any, presign_client: Any = None) -> None:
        self.client = client
        self.presign_client = presign_client or client

    def _error(self, e: Exception, bucket: str, key: str) -> ObjectError:
        from botocore.exceptions import ClientError

        if isinstance(e, ClientError):
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NoSuchBucket", "NotFound"}:
                return NoSuchObject(f"no object {key!r} in bucket {bucket!r}")
            if code in {"PreconditionFailed", "412"}:
                return ObjectChanged(f"object {key!r} in bucket {bucket!r} has changed")
        return ObjectError(f"object storage failed on {bucket}/{key}: {e}")

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "") -> None:
        """See :class:`ObjectStore`."""
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
        except Exception as e:
            raise self._error(e, bucket, key) from e

    def put_file(self, bucket: str, key: str, source: IO[bytes], content_type: str = "") -> None:
        """See :class:`ObjectStore` (s3transfer: multipart above 8 MiB, parts in parallel)."""
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.upload_fileobj(source, bucket, key, ExtraArgs=extra or None)
        except Exception as e:
            raise self._error(e, bucket, key) from e

    def get_bytes(self, bucket: str, key: str, limit: int | None = None) -> bytes:
        """See :class:`ObjectStore`."""
        try:
            answer = self.client.get_object(Bucket=bucket, Key=key)
        except Exception as e:
            raise self._error(e, bucket, key) from e
        size = int(answer.get("ContentLength") or 0)
        body = answer["Body"]
        if limit is not None and size > limit:
            body.close()
            raise ObjectTooLarge(f"object {key!r} has {size} bytes, over the limit of {limit}")
        data: bytes = body.read()
        return data

    def stream(self, bucket: str, key: str, if_match: str | None = None) -> ObjectStream:
        """See :class:`ObjectStore` (one GET: its headers describe the body it returns)."""
        extra = {"IfMatch": f'"{if_match}"'} if if_match is not None else {}
        try:
            answer = self.client.get_object(Bucket=bucket, Key=key, **extra)
        except Exception as e:
            raise self._error(e, bucket, key) from e
        body = answer["Body"]
        info = ObjectInfo(
            key=key,
            etag=str(answer.get("ETag", "")).strip('"'),
            size=int(answer.get("ContentLength") or 0),
            last_modified=answer["LastModified"],
        )

        def chunks() -> Generator[bytes, None, None]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()

        return ObjectStream(info, chunks())

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """See :class:`ObjectStore`."""
        try:
            answer = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as e:
            error = self._error(e, bucket, key)
            if isinstance(error, NoSuchObject):
                return None
            raise error from e
        return ObjectInfo(
            key=key,
            etag=str(answer.get("ETag", "")).strip('"'),
            size=int(answer.get("ContentLength") or 0),
            last_modified=answer["LastModified"],
        )

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """See :class:`ObjectStore` (ListObjectsV2, paginated)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"],
                        etag=str(item.get("ETag", "")).strip('"'),
                        size=int(item.get("Size") or 0),
                        last_modified=item["LastModified"],
                    )
        except ObjectError:
            raise
        except Exception as e:
            raise self._error(e, bucket, prefix) from e

    def delete(self, bucket: str, key: str) -> None:
        """See :class:`ObjectStore`."""
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except Exception as e:
            error = self._error(e, bucket, key)
            if not isinstance(error, NoSuchObject):
                raise error from e

    def presign(self, bucket: str, key: str, ttl_s: int) -> str | None:
        """See :class:`ObjectStore`."""
        url: str = self.presign_client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl_s
        )
        return url

    def ensure_bucket(self, bucket: str) -> None:
        """See :class:`ObjectStore`."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            self.client.create_bucket(Bucket=bucket)


def s3_client(settings: Settings, *, endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client for the settings' endpoint.

    Path-style addressing and SigV4: OCI's S3 Compatibility API serves buckets only as
    ``https://<namespace>.compat.objectstorage.<region>.oraclecloud.com/<bucket>/<key>``.
    """
    import boto3
    from botocore.config import Config

    credentials: dict[str, str] = {}
    if settings.s3_access_key_id:
        credentials = {
            "aws_access_key_id": settings.s3_access_key_id,
            "aws_secret_access_key": settings.s3_secret_access_key,
        }
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=(endpoint_url if endpoint_url is not None else settings.s3_endpoint_url)
        or None,
        region_name=settings.s3_region,
        config=config,
        **credentials,
    )


def build_object_store(settings: Settings) -> ObjectStore:
    """The object store the settings choose (``VOXMILL_OBJECT_STORE``)."""
    if settings.object_store == "s3":
        client = s3_client(settings)
        public = None
        if settings.s3_public_endpoint_url:
            public = s3_client(settings, endpoint_url=settings.s3_public_endpoint_url)
        return S3ObjectStore(client, public)
    return LocalObjectStore(settings.effective_object_store_dir())
