"""Dask: a `distributed.Client` to an existing scheduler, to a Dask cluster on Kubernetes, or to a
LocalCluster owned by the caller.

`dagster-dask` is outdated, hence this small resource. Starting a LocalCluster costs seconds, so
deployments (and `annobase demo`) point `ANNOBASE_DASK_ADDRESS` at one long-lived scheduler that
every run shares; without it each step starts and closes its own cluster. On Kubernetes the resource
can instead name a `DaskCluster` of the dask-kubernetes operator (`ANNOBASE_DASK_KUBERNETES_CLUSTER`),
created from `deploy/helm/dask-cluster.yaml` on first use and shared by every later run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from assets import worker_kernels


class DaskResource(dg.ConfigurableResource):
    """Where the heavy transforms run."""

    scheduler_address: str | None = None
    # a DaskCluster (dask-kubernetes operator) by name, and the manifest it is created from if missing
    kubernetes_cluster: str | None = None
    kubernetes_cluster_spec: str | None = None
    local_workers: int = 2
    local_worker_memory_limit: str = "2GiB"

    @contextmanager
    def client(self) -> Iterator:
        from distributed import Client, LocalCluster

        if self.scheduler_address:
            with Client(self.scheduler_address) as client:
                yield client
            return
        if self.kubernetes_cluster:
            with Client(self.kubernetes()) as client:
                yield client
            return
        with (
            LocalCluster(
                n_workers=self.local_workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=self.local_worker_memory_limit,
                dashboard_address=None,
                preload=[worker_kernels.__name__],
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client

    def kubernetes(self):
        """The named DaskCluster, created from its manifest when it does not exist yet; it outlives the
        run (`shutdown_on_close=False`), as a long-lived scheduler does. Needs `annobase[kubernetes]`."""
        try:
            from dask_kubernetes.operator import CreateMode, KubeCluster
        except ImportError as error:
            raise RuntimeError(
                "ANNOBASE_DASK_KUBERNETES_CLUSTER is set but dask-kubernetes is not installed: "
                "pip install 'annobase[kubernetes]'"
            ) from error
        return KubeCluster(
            name=self.kubernetes_cluster,
            custom_cluster_spec=self.kubernetes_cluster_spec,
            create_mode=CreateMode.CREATE_OR_CONNECT,
            shutdown_on_close=False,
        )
