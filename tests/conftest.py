"""Fixtures: the real services (SeaweedFS, PostgreSQL, a Dask LocalCluster) and annobase's resources on them.

Services start once per session. Every test that writes gets a store of its own: a fresh bucket on
SeaweedFS or a fresh directory, so tests never see each other's objects.
"""

import os
import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest
from services import SeaweedFS, ensure_postgres

from assets.release.signing import generate_key_pem
from resources import CatalogResource, DaskResource, ObjectStoreResource, SigningKeyResource
from resources.label_studio import LabelStudioResource

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def seaweedfs():
    """A SeaweedFS S3 server; its credentials go into the environment, where boto3 and s3fs read them."""
    with SeaweedFS(bucket="annobase") as server:
        saved = {
            key: os.environ.get(key) for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
        }
        os.environ.update(
            AWS_ACCESS_KEY_ID=server.access_key,
            AWS_SECRET_ACCESS_KEY=server.secret_key,
            AWS_REGION=server.region,
        )
        yield server
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def dask_cluster(seaweedfs):
    """Two process workers, started after the S3 credentials are in the environment they inherit."""
    from distributed import LocalCluster

    from assets import worker_kernels

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit="2GiB",
        preload=[worker_kernels.__name__],
    ) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres():
    with ensure_postgres() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def object_store_resource(request, tmp_path) -> ObjectStoreResource:
    """The same tests run against both store implementations."""
    if request.param == "local":
        return ObjectStoreResource(local_root=str(tmp_path / "store"), bucket="annobase")
    return s3_store_resource(request.getfixturevalue("seaweedfs"))


def s3_store_resource(seaweedfs) -> ObjectStoreResource:
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    seaweedfs.client().create_bucket(Bucket=bucket)
    return ObjectStoreResource(bucket=bucket, endpoint_url=seaweedfs.endpoint_url)


@pytest.fixture
def s3_store(seaweedfs) -> ObjectStoreResource:
    return s3_store_resource(seaweedfs)


@pytest.fixture
def store(object_store_resource):
    return object_store_resource.open()


def annobase_resources(object_store: ObjectStoreResource, dask_cluster) -> dict:
    return {
        "object_store": object_store,
        "catalog": CatalogResource(object_store=object_store),
        "dask": DaskResource(scheduler_address=dask_cluster.scheduler_address),
        "label_studio": LabelStudioResource(),  # not configured: batches and exports stay files
    }


@pytest.fixture
def resources(object_store_resource, dask_cluster) -> dict:
    return annobase_resources(object_store_resource, dask_cluster)


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def postgres_instance(postgres, tmp_path, monkeypatch):
    """A DagsterInstance from the production `deploy/dagster.yaml`, on a fresh PostgreSQL database."""
    database = postgres.create_database()
    monkeypatch.setenv("ANNOBASE_PG_USER", database["username"])
    monkeypatch.setenv("ANNOBASE_PG_PASSWORD", database["password"])
    monkeypatch.setenv("ANNOBASE_PG_HOST", database["hostname"])
    monkeypatch.setenv("ANNOBASE_PG_DB", database["db_name"])
    monkeypatch.setenv("ANNOBASE_PG_PORT", str(database["port"]))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as pg_instance:
        yield pg_instance
    postgres.drop_database(database["db_name"])


@pytest.fixture
def signing(tmp_path):
    path = tmp_path / "release-key.pem"
    path.write_bytes(generate_key_pem())
    return SigningKeyResource(key_path=str(path))


@pytest.fixture
def base(object_store_resource, dask_cluster, instance, signing):
    """The flow on one store: deliveries go in, are annotated by a good crew, gated, then published."""
    from flow_helpers import Base

    resources = {**annobase_resources(object_store_resource, dask_cluster), "signing_key": signing}
    return Base(object_store_resource, resources, instance)
