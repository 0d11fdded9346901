"""The object store: one interface, two implementations with the identical key layout.

`S3ObjectStore` talks to S3 or any S3-compatible server through boto3; `LocalObjectStore` keeps the
same keys as files under a directory, for the zero-setup demo. Both list keys in S3's order (UTF-8
byte order) and honour `start_after`, which is what the sensors' cursors rely on.

Kept free of dagster (the resource that opens a store is `resources.object_store`): every Dask task
that carries a store unpickles it, and a worker importing dagster for that paid ~0.4 s of CPU.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import count
from pathlib import Path
from typing import BinaryIO

from annobase.no_follow import open_no_follow


@dataclass(frozen=True)
class StoredObject:
    """A listed key. `etag` may be None from `list` on stores where it costs a read; `head` fills it."""

    key: str
    size: int
    last_modified: datetime
    etag: str | None


class PreconditionFailed(Exception):
    """A conditional read or write found the object other than the caller assumed: it exists when
    it should not, or it is not the version (ETag) the caller named."""


class SymbolicLink(KeyError):
    """The key's path in the local store holds a symbolic link: no object there (a KeyError to
    callers that only ask whether one exists), and a link is never followed."""

    def __str__(self) -> str:
        return str(self.args[0])


class ObjectStore(ABC):
    """What annobase needs from an object store, and nothing more."""

    bucket: str
    remote: bool  # whether readers (DuckDB, Dask) need the fsspec filesystem registered to reach it

    @abstractmethod
    def put(self, key: str, data: bytes) -> str:
        """Write `data` at `key` and return its ETag."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; KeyError when the key does not exist."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write `data` at `key` only if nothing is there yet (S3 `If-None-Match: *`): True if this
        call created it, False if the key already existed. What locks and append-only chains stand on:
        of two writers racing for one key, exactly one wins."""

    @abstractmethod
    def get_version(self, key: str, etag: str) -> bytes:
        """The object's bytes only if its ETag is still `etag` (S3 `If-Match`); PreconditionFailed
        when it was replaced, KeyError when it is gone: a reader never takes a newer version for the
        one it was asked to read."""

    @abstractmethod
    def get_within(self, key: str, limit: int) -> tuple[int, bytes | None]:
        """The object's size, and its bytes only if it has at most `limit` of them (one request, where
        a HEAD then a GET took two); KeyError when the key does not exist."""

    @abstractmethod
    def head(self, key: str) -> StoredObject | None:
        """The object's size and ETag, or None when the key does not exist."""

    @abstractmethod
    def list(
        self, prefix: str = "", start_after: str | None = None, page_size: int = 1000
    ) -> Iterator[StoredObject]:
        """Keys under `prefix`, strictly after `start_after`, in UTF-8 byte order, fetched page by page."""

    @abstractmethod
    def list_prefixes(self, prefix: str) -> list[str]:
        """The 'directories' one level below `prefix` (which ends in '/'), each ending in '/', sorted."""

    @abstractmethod
    def copy(self, source_key: str, target_key: str) -> None:
        """Copy inside the store (server-side on S3), so quarantine never moves or alters an upload;
        KeyError when the source does not exist."""

    @abstractmethod
    def discard_unpublished(self, prefix: str) -> None:
        """Remove every object under `prefix` (ending in '/'): what an interrupted attempt left of a
        release version that was never signed. The only removal annobase makes: uploads, quarantine,
        published releases and the release pool are never removed."""

    @abstractmethod
    def url(self, key: str = "") -> str:
        """The key's address for fsspec-based readers (DuckDB, Dask, pandas)."""

    @abstractmethod
    def filesystem(self):
        """An fsspec filesystem that resolves `url()` addresses."""


_TEMPORARY_NAMES = count()  # with the process and thread ids, a name no other writer uses


def _check_key(key: str) -> str:
    """Keys are relative, '/'-separated and never step outside the bucket."""
    if not key or key.startswith("/") or "\\" in key or any(seg in ("", ".", "..") for seg in key.split("/")):
        raise ValueError(f"unsafe object key {key!r}")
    return key


def _check_prefix(prefix: str) -> str:
    """A 'directory' of keys: a safe key ending in '/'."""
    if not prefix.endswith("/"):
        raise ValueError(f"prefix {prefix!r} must end in '/'")
    _check_key(prefix[:-1])
    return prefix


_CLIENT_LOCK = threading.Lock()


@cache
def _s3_client(endpoint_url: str | None, region: str | None):
    """One boto3 client per process and endpoint (clients are thread-safe): a store unpickled for
    every Dask task would otherwise build a session and load botocore's models each time, which
    cost more CPU than the task's own reads."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=32),
    )


class S3ObjectStore(ObjectStore):
    """boto3 against AWS or any S3-compatible endpoint; credentials come from boto3's own environment."""

    remote = True

    def __init__(self, bucket: str, endpoint_url: str | None = None):
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self._client = None

    def __getstate__(self):
        # boto3 clients do not pickle; Dask workers build their own.
        return {"bucket": self.bucket, "endpoint_url": self.endpoint_url, "_client": None}

    @property
    def client(self):
        if self._client is None:
            # one client even when threads first use a store at once: exceptions are classes of their
            # client, so a `NoSuchKey` raised by one is not caught as another's
            with _CLIENT_LOCK:
                self._client = _s3_client(self.endpoint_url, os.environ.get("AWS_REGION") or None)
        return self._client

    def put(self, key: str, data: bytes) -> str:
        response = self.client.put_object(Bucket=self.bucket, Key=_check_key(key), Body=data)
        return response["ETag"].strip('"')

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=_check_key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey as error:
            raise KeyError(key) from error

    def put_if_absent(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=_check_key(key), Body=data, IfNoneMatch="*")
        except ClientError as error:
            if _error_code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def get_version(self, key: str, etag: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=_check_key(key), IfMatch=f'"{etag}"')
        except ClientError as error:
            code = _error_code(error)
            if code in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(key) from error
            if code in ("PreconditionFailed", "412"):
                raise PreconditionFailed(f"{key} is no longer version {etag}") from error
            raise
        return response["Body"].read()

    def get_within(self, key: str, limit: int) -> tuple[int, bytes | None]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=_check_key(key))
        except self.client.exceptions.NoSuchKey as error:
            raise KeyError(key) from error
        size, body = response["ContentLength"], response["Body"]
        if size > limit:
            body.close()  # the headers said enough: the body is never downloaded
            return size, None
        return size, body.read()

    def head(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=_check_key(key))
        except ClientError as error:
            if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(
            key, response["ContentLength"], response["LastModified"], response["ETag"].strip('"')
        )

    def list(
        self, prefix: str = "", start_after: str | None = None, page_size: int = 1000
    ) -> Iterator[StoredObject]:
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": page_size}}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            for entry in page.get("Contents", ()):
                yield StoredObject(
                    entry["Key"], entry["Size"], entry["LastModified"], entry["ETag"].strip('"')
                )

    def list_prefixes(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        )
        return sorted(entry["Prefix"] for page in pages for entry in page.get("CommonPrefixes", ()))

    def copy(self, source_key: str, target_key: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.copy(
                {"Bucket": self.bucket, "Key": _check_key(source_key)}, self.bucket, _check_key(target_key)
            )
        except ClientError as error:
            if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(source_key) from error
            raise

    def discard_unpublished(self, prefix: str) -> None:
        keys = [obj.key for obj in self.list(_check_prefix(prefix))]
        for start in range(0, len(keys), 1000):  # S3 takes up to 1,000 keys per request
            objects = [{"Key": _check_key(key)} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(
            client_kwargs={
                "endpoint_url": self.endpoint_url,
                "region_name": os.environ.get("AWS_REGION") or None,
            },
            use_listings_cache=False,
        )


class LocalObjectStore(ObjectStore):
    """The same key layout as files under `{root}/{bucket}/`; writes are atomic renames.

    A symbolic link is never followed, on any component of a key's path: S3 has no links, and one
    planted in `uploads/` could reach outside the root or into another client's delivery (a link
    inside the root is no safer). Lists report a link as a key of its own (never entered, so a
    looping link costs nothing); `head`, reads and copies of it raise `SymbolicLink`.
    """

    remote = False

    def __init__(self, root: str, bucket: str):
        self.bucket = bucket
        # resolved once: the links on the way to the store are the operator's, those inside it are not
        self.root = Path(os.path.realpath(Path(root).absolute() / bucket))

    def _path(self, key: str) -> str:
        # plain strings: pathlib's joins and parsing were a third of a release's per-file cost
        return f"{self.root}/{_check_key(key)}"

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        directory = os.path.dirname(path)
        # a unique temporary name in the target's directory, then an atomic rename: readers see the
        # whole object or none (cheaper than tempfile's random names, which retry on collisions)
        temporary = f"{directory}/.tmp-{os.getpid()}-{threading.get_ident()}-{next(_TEMPORARY_NAMES)}"
        _in_directory(key, directory, lambda: _write_new(temporary, data))
        os.replace(temporary, path)
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def get(self, key: str) -> bytes:
        with _reading(key, self._path(key)) as handle:
            return handle.read()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Written whole under a temporary name, then hard-linked into place: the link fails if the
        name exists, so readers never see a partial object and only one writer wins."""
        path = self._path(key)
        directory = os.path.dirname(path)
        temporary = f"{directory}/.tmp-{os.getpid()}-{threading.get_ident()}-{next(_TEMPORARY_NAMES)}"
        _in_directory(key, directory, lambda: _write_new(temporary, data))
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(temporary)
        return True

    def get_version(self, key: str, etag: str) -> bytes:
        data = self.get(key)
        if hashlib.md5(data, usedforsecurity=False).hexdigest() != etag:
            raise PreconditionFailed(f"{key} is no longer version {etag}")
        return data

    def get_within(self, key: str, limit: int) -> tuple[int, bytes | None]:
        with _reading(key, self._path(key)) as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise KeyError(key)
            return status.st_size, (handle.read() if status.st_size <= limit else None)

    def head(self, key: str) -> StoredObject | None:
        try:
            with _reading(key, self._path(key)) as handle:
                digest = hashlib.md5(usedforsecurity=False)
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                status = os.fstat(handle.fileno())
        except SymbolicLink:
            raise
        except KeyError:
            return None
        modified = datetime.fromtimestamp(status.st_mtime, UTC)
        return StoredObject(key, status.st_size, modified, digest.hexdigest())

    def list(
        self, prefix: str = "", start_after: str | None = None, page_size: int = 1000
    ) -> Iterator[StoredObject]:
        yield from self._walk(str(self.root), "", prefix, start_after or "")

    def _walk(self, directory: str, dir_key: str, prefix: str, start_after: str) -> Iterator[StoredObject]:
        """Depth-first in S3 key order: a directory sorts as its name plus '/', as its keys do.

        Subtrees that lie wholly at or before `start_after`, or outside `prefix`, are never entered;
        nor is a symbolic link, listed as a key of its own.
        """
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        named = sorted(
            ((entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name), entry)
            for entry in entries
            if not entry.name.startswith(".tmp-")
        )
        for name, entry in named:
            key = dir_key + name
            if name.endswith("/"):
                if not (key.startswith(prefix) or prefix.startswith(key)):
                    continue
                if key < start_after and not start_after.startswith(key):
                    continue
                yield from self._walk(entry.path, key, prefix, start_after)
            elif key.startswith(prefix) and key > start_after:
                status = entry.stat(follow_symlinks=False)
                yield StoredObject(key, status.st_size, datetime.fromtimestamp(status.st_mtime, UTC), None)

    def list_prefixes(self, prefix: str) -> list[str]:
        try:
            fd = open_no_follow(f"{self.root}/{prefix}", os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as error:
            raise _refused(prefix, error) from error
        try:
            with os.scandir(fd) as entries:
                return sorted(prefix + e.name + "/" for e in entries if e.is_dir(follow_symlinks=False))
        finally:
            os.close(fd)

    def copy(self, source_key: str, target_key: str) -> None:
        target = self._path(target_key)
        with _reading(source_key, self._path(source_key)) as source:

            def copy_into() -> None:
                with open(open_no_follow(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as handle:
                    shutil.copyfileobj(source, handle, 1 << 20)

            _in_directory(target_key, os.path.dirname(target), copy_into)

    def discard_unpublished(self, prefix: str) -> None:
        parent, _, name = f"{self.root}/{_check_prefix(prefix)}".rstrip("/").rpartition("/")
        try:
            parent_fd = open_no_follow(parent, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            return
        except OSError as error:
            raise _refused(prefix, error) from error
        try:  # relative to the opened parent: a link on the way is refused above, never followed
            if stat.S_ISLNK(os.lstat(name, dir_fd=parent_fd).st_mode):
                raise SymbolicLink(f"{prefix} is a symbolic link in the local store: never followed")
            shutil.rmtree(name, dir_fd=parent_fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(parent_fd)

    def url(self, key: str = "") -> str:
        return f"{self.root}/{key}"

    def filesystem(self):
        import fsspec

        return fsspec.filesystem("file")


def _refused(key: str, error: OSError) -> Exception:
    """ELOOP is how the kernel says a path holds a symbolic link; anything else stays as it was."""
    if error.errno == errno.ELOOP:
        return SymbolicLink(f"{key}: its path in the local store holds a symbolic link, never followed")
    return error


@contextmanager
def _reading(key: str, path: str) -> Iterator[BinaryIO]:
    """The file at `path` open for reading, refusing links; KeyError when no object is there."""
    try:
        fd = open_no_follow(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError) as error:
        raise KeyError(key) from error
    except OSError as error:
        raise _refused(key, error) from error
    with open(fd, "rb") as handle:
        try:
            yield handle
        except IsADirectoryError as error:  # a directory is no object, as on S3
            raise KeyError(key) from error


def _error_code(error) -> str:
    return str(error.response.get("Error", {}).get("Code"))


def _write_new(path: str, data: bytes) -> None:
    """Write `data` to a file created at `path`, a name nobody else uses, refusing a symbolic link on
    the way."""
    with open(open_no_follow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as handle:
        handle.write(data)


def _in_directory(key: str, directory: str, create_file: Callable[[], object]) -> None:
    """`create_file()`, making `directory` first only if it is missing: most files of a release or
    delivery land in a directory that exists, and `makedirs` per file was a tenth of a copy's cost.
    A symbolic link on the way raises SymbolicLink before anything is made."""
    try:
        create_file()
    except FileNotFoundError:
        # made and tried again whatever was missing: asking first would race with another process
        # making the same directory; a missing source fails again here. The first try found no link
        # on the part of the path that exists, so `makedirs` only makes what is missing below it.
        os.makedirs(directory, exist_ok=True)
        _refusing_links(key, create_file)
    except OSError as error:
        raise _refused(key, error) from error


def _refusing_links(key: str, call: Callable[[], object]) -> None:
    try:
        call()
    except OSError as error:
        raise _refused(key, error) from error
