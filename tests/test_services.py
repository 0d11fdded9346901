"""The test services behave like the real thing the project relies on.

The module-scoped fixtures below are also the pattern for conftest.py: a context manager (or
try/finally around `stop()`) so the processes go away even when a test fails.
"""

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import psycopg2
import pytest
import s3fs
from botocore.exceptions import ClientError
from services import GRPC_OFFSET, SeaweedFS, ensure_postgres, free_port, postgres_bindir

N_KEYS = 2500


@pytest.fixture(scope="module")
def seaweed():
    with SeaweedFS() as server:
        yield server


@pytest.fixture(scope="module")
def s3(seaweed):
    return seaweed.client()


@pytest.fixture(scope="module")
def many_keys(seaweed, s3):
    """2,500 small objects: more than one 1,000-key listing page, and more than the filer's dir limit."""
    keys = [f"many/{i:05d}.txt" for i in range(N_KEYS)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=seaweed.bucket, Key=key, Body=key.encode()), keys))
    return keys


@pytest.fixture(scope="module")
def postgres():
    with ensure_postgres() as server:
        yield server


def test_free_port_has_free_grpc_twin():
    port = free_port()
    assert 10000 <= port < 65536 - GRPC_OFFSET
    assert free_port(avoid_grpc_twin=False) > 0


def test_seaweedfs_serves_its_bucket(seaweed, s3):
    assert seaweed.startup_seconds < 30
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [seaweed.bucket]
    s3.head_bucket(Bucket=seaweed.bucket)
    assert seaweed.env() == {
        "ANNOBASE_S3_ENDPOINT_URL": seaweed.endpoint_url,
        "ANNOBASE_BUCKET": seaweed.bucket,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "AWS_REGION": "us-east-1",
    }
    assert seaweed.endpoint_url.startswith("http://127.0.0.1:")


def test_seaweedfs_checks_signatures(seaweed):
    forged = SeaweedFS(access_key=seaweed.access_key, secret_key="not-the-secret")
    forged.endpoint_url = seaweed.endpoint_url
    with pytest.raises(ClientError) as raised:
        forged.client(retries=1).list_objects_v2(Bucket=seaweed.bucket)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_put_get_roundtrip(seaweed, s3):
    s3.put_object(Bucket=seaweed.bucket, Key="roundtrip/a b+c.json", Body=b'{"ok": true}')
    body = s3.get_object(Bucket=seaweed.bucket, Key="roundtrip/a b+c.json")["Body"].read()
    assert body == b'{"ok": true}'


def test_list_paginates_over_thousands_of_keys(seaweed, s3, many_keys):
    paginator = s3.get_paginator("list_objects_v2")
    pages = list(
        paginator.paginate(Bucket=seaweed.bucket, Prefix="many/", PaginationConfig={"PageSize": 1000})
    )
    assert [page["KeyCount"] for page in pages] == [1000, 1000, 500]
    assert [obj["Key"] for page in pages for obj in page["Contents"]] == many_keys


def test_list_start_after_with_max_keys(seaweed, s3, many_keys):
    page = s3.list_objects_v2(Bucket=seaweed.bucket, Prefix="many/", StartAfter=many_keys[1998], MaxKeys=5)
    assert [obj["Key"] for obj in page["Contents"]] == many_keys[1999:2004]
    assert page["IsTruncated"]

    rest = s3.list_objects_v2(Bucket=seaweed.bucket, Prefix="many/", StartAfter=many_keys[-3])
    assert [obj["Key"] for obj in rest["Contents"]] == many_keys[-2:]
    assert not rest["IsTruncated"]


def test_etag_is_content_md5(seaweed, s3):
    """Change detection compares ETags: identical re-uploads must keep it, new content must change it."""
    first = s3.put_object(Bucket=seaweed.bucket, Key="etag/x.bin", Body=b"same bytes")["ETag"]
    again = s3.put_object(Bucket=seaweed.bucket, Key="etag/x.bin", Body=b"same bytes")["ETag"]
    changed = s3.put_object(Bucket=seaweed.bucket, Key="etag/x.bin", Body=b"other bytes")["ETag"]
    assert first == again == f'"{hashlib.md5(b"same bytes").hexdigest()}"'
    assert changed != first
    assert s3.head_object(Bucket=seaweed.bucket, Key="etag/x.bin")["ETag"] == changed


def test_s3fs_reads_a_key(seaweed, s3):
    s3.put_object(Bucket=seaweed.bucket, Key="fs/hello.txt", Body=b"hello s3fs")
    fs = s3fs.S3FileSystem(
        key=seaweed.access_key,
        secret=seaweed.secret_key,
        client_kwargs={"endpoint_url": seaweed.endpoint_url},
        skip_instance_cache=True,
    )
    assert fs.cat(f"{seaweed.bucket}/fs/hello.txt") == b"hello s3fs"
    assert s3fs.S3FileSystem(**seaweed.storage_options()).ls(f"{seaweed.bucket}/fs") == [
        f"{seaweed.bucket}/fs/hello.txt"
    ]


def _roundtrip(server):
    """Create a database, use it, and drop it while a session is still open."""
    db = server.create_database()
    assert db["db_name"].startswith("annobase_test_")
    try:
        conn = psycopg2.connect(
            host=db["hostname"],
            port=db["port"],
            user=db["username"],
            password=db["password"],
            dbname=db["db_name"],
        )
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE item (id int PRIMARY KEY, label text)")
            cur.execute("INSERT INTO item VALUES (1, 'cat'), (2, 'dog')")
        with conn, conn.cursor() as cur:
            cur.execute("SELECT id, label FROM item ORDER BY id")
            assert cur.fetchall() == [(1, "cat"), (2, "dog")]
    finally:
        server.drop_database(db["db_name"])
    with pytest.raises(psycopg2.OperationalError):
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    conn.close()
    with closing(server.connect()) as admin, admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (db["db_name"],))
        assert cur.fetchone() == (0,)


def test_postgres_database_lifecycle(postgres):
    names = [postgres.create_database()["db_name"] for _ in range(2)]
    for name in names:
        postgres.drop_database(name)
    assert names[0] != names[1]
    _roundtrip(postgres)


@pytest.mark.skipif(
    postgres_bindir() is None and not os.environ.get("CI"),
    reason="initdb/postgres not installed (in CI this test always runs)",
)
def test_throwaway_cluster_starts_answers_and_stops():
    """The fallback for machines without a running PostgreSQL, forced even where one runs."""
    began = time.monotonic()
    server = ensure_postgres(prefer_existing=False)
    try:
        assert server.owned and server.port != 5432
        _roundtrip(server)
    finally:
        server.stop()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host=server.host, port=server.port, user="postgres", connect_timeout=2)
    assert time.monotonic() - began < 30
