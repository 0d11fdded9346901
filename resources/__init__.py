"""Resources: object store, catalog, Dask cluster and Label Studio, configured from the environment.

Values that differ per environment are `EnvVar`s, so the UI shows the variable's name, never its
value; credentials are not configured at all (boto3 reads them from the environment itself).
"""

import os

import dagster as dg

from annobase.object_store import ObjectStore
from resources.catalog import Catalog, CatalogResource
from resources.dask_cluster import DaskResource
from resources.label_studio import LabelStudioResource
from resources.object_store import ObjectStoreResource
from resources.signing import SigningKeyResource


def _env_or(name: str, default):
    """An EnvVar when the variable is set (resolved at run time), the default when it is not."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def object_store_from_env() -> ObjectStoreResource:
    return ObjectStoreResource(
        bucket=_env_or("ANNOBASE_BUCKET", "annobase"),
        endpoint_url=_env_or("ANNOBASE_S3_ENDPOINT_URL", None),
        local_root=_env_or("ANNOBASE_LOCAL_STORE", None),
    )


def build_resources() -> dict[str, dg.ConfigurableResource]:
    object_store = object_store_from_env()
    return {
        "object_store": object_store,
        "catalog": CatalogResource(object_store=object_store),
        "dask": DaskResource(
            scheduler_address=_env_or("ANNOBASE_DASK_ADDRESS", None),
            kubernetes_cluster=_env_or("ANNOBASE_DASK_KUBERNETES_CLUSTER", None),
            kubernetes_cluster_spec=_env_or("ANNOBASE_DASK_KUBERNETES_SPEC", None),
        ),
        "signing_key": SigningKeyResource(key_path=_env_or("ANNOBASE_SIGNING_KEY", None)),
        "label_studio": LabelStudioResource(
            url=_env_or("ANNOBASE_LABEL_STUDIO_URL", None),
            api_key=_env_or("ANNOBASE_LABEL_STUDIO_API_KEY", None),
            media_endpoint_url=_env_or("ANNOBASE_LABEL_STUDIO_S3_ENDPOINT_URL", None),
            media_region=_env_or("AWS_REGION", None),
        ),
    }


defs = dg.Definitions(resources=build_resources())

__all__ = [
    "Catalog",
    "CatalogResource",
    "DaskResource",
    "LabelStudioResource",
    "ObjectStore",
    "ObjectStoreResource",
    "SigningKeyResource",
    "defs",
]
